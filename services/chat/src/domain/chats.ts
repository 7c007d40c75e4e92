import type { z } from "zod";
import type { Chat, CreateChatBody } from "../contract/schemas.js";
import { AppError, forbidden, invalid, notFound } from "../errors.js";
import type { Prisma, PrismaClient } from "../generated/prisma/client.js";
import { isUniqueViolation } from "./prisma-errors.js";
import type { Users } from "./users.js";
import {
  byStanding,
  type ChatRow,
  chatView,
  type MessageRow,
} from "./views.js";

/** Who is online, for the `online` flag of chat members. */
export interface OnlineLookup {
  onlineAmong(userIds: readonly number[]): Promise<Set<number>>;
}

/** A change of membership, for the edges to announce. */
export interface MembershipChange {
  chatId: number;
  /** Users now members, whose sockets must join the chat's room. */
  joined: number[];
  /** Users no longer members, whose sockets must leave it. */
  left: number[];
  /** Everyone to send `chat:updated`: members and the removed. */
  notify: number[];
}

const withMembers = {
  members: { include: { user: { select: { name: true } } } },
} as const;

/** Chats and their members: creation, listing, joining and leaving. */
export class Chats {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly users: Users,
    private readonly presence: OnlineLookup,
  ) {}

  /**
   * Opens a chat. For a private pair that already has one, returns it with
   * `created: false`.
   */
  async create(
    userId: number,
    input: z.output<typeof CreateChatBody>,
  ): Promise<{ chat: Chat; created: boolean; change: MembershipChange }> {
    await this.users.assertActive(userId);
    const { chatId, created } =
      input.type === "private"
        ? await this.openPrivate(userId, input.user_id)
        : await this.createGroup(userId, input.name, input.member_ids);
    const chat = await this.view(chatId, userId);
    const members = chat.members.map((m) => m.user_id);
    const change = { chatId, joined: members, left: [], notify: members };
    return { chat, created, change };
  }

  /** My chats, most recent activity first. */
  async list(userId: number): Promise<Chat[]> {
    const rows = await this.prisma.chat.findMany({
      where: { members: { some: { userId } } },
      include: withMembers,
      orderBy: [{ lastActivityAt: "desc" }, { id: "desc" }],
    });
    return this.views(rows, userId);
  }

  /** One chat as `userId` sees it; NOT_FOUND unless they are a member. */
  async get(chatId: number, userId: number): Promise<Chat> {
    await this.assertMember(chatId, userId);
    return this.view(chatId, userId);
  }

  /** The chat as each of `userIds` sees it (for `chat:updated`). */
  async viewsFor(
    chatId: number,
    userIds: readonly number[],
  ): Promise<Map<number, Chat>> {
    const row = await this.prisma.chat.findUnique({
      where: { id: chatId },
      include: withMembers,
    });
    if (!row) return new Map();
    const [lastMessage, online, unread] = await Promise.all([
      this.lastMessages([row]),
      this.presence.onlineAmong(row.members.map((m) => m.userId)),
      this.unreadByMember(chatId),
    ]);
    const last = lastMessage.get(chatId) ?? null;
    return new Map(
      userIds.map((id) => [
        id,
        chatView(row, last, unread.get(id) ?? 0, online),
      ]),
    );
  }

  async addMember(
    chatId: number,
    actorId: number,
    userId: number,
  ): Promise<{ chat: Chat; change: MembershipChange | null }> {
    await this.users.assertExist([userId]);
    const added = await this.changeMembers(
      chatId,
      actorId,
      async (tx) => {
        // A newcomer's unread count starts at their arrival, not at the
        // first message the group ever had.
        const { lastSeq } = await tx.chat.findUniqueOrThrow({
          where: { id: chatId },
          select: { lastSeq: true },
        });
        const { count } = await tx.member.createMany({
          data: [{ chatId, userId, role: "member", lastReadSeq: lastSeq }],
          skipDuplicates: true,
        });
        return count > 0;
      },
      "adds members",
    );
    const chat = await this.view(chatId, actorId);
    if (!added) return { chat, change: null };
    const members = chat.members.map((m) => m.user_id);
    return {
      chat,
      change: { chatId, joined: [userId], left: [], notify: members },
    };
  }

  /**
   * Removes a member (owner only) or lets one leave. When the owner leaves,
   * the longest-standing member becomes the owner.
   */
  async removeMember(
    chatId: number,
    actorId: number,
    userId: number,
  ): Promise<MembershipChange> {
    const ownerNeeded = actorId !== userId;
    await this.changeMembers(
      chatId,
      actorId,
      async (tx) => {
        const removed = await tx.member.deleteMany({
          where: { chatId, userId },
        });
        if (removed.count === 0) throw notFound(`member ${userId}`);
        const rest = await tx.member.findMany({
          where: { chatId },
          include: { user: { select: { name: true } } },
        });
        const successor = rest.sort(byStanding)[0];
        if (successor && successor.role !== "owner") {
          await tx.member.update({
            where: { chatId_userId: { chatId, userId: successor.userId } },
            data: { role: "owner" },
          });
        }
      },
      ownerNeeded ? "removes other members" : undefined,
    );
    const members = await this.memberIds(chatId);
    return { chatId, joined: [], left: [userId], notify: [...members, userId] };
  }

  /**
   * Runs a change of a group's members with the chat row locked, so that
   * changes to one chat happen one at a time and each sees the last: the
   * actor must be a member, and the owner when `ownerOnly` names the act.
   * `change` must use `tx` alone: embedded PGlite has one connection, and a
   * query outside the transaction would wait for it to end.
   */
  private changeMembers<T>(
    chatId: number,
    actorId: number,
    change: (tx: Prisma.TransactionClient) => Promise<T>,
    ownerOnly: string | undefined,
  ): Promise<T> {
    return this.prisma.$transaction(async (tx) => {
      await tx.$queryRaw`SELECT id FROM chats WHERE id = ${chatId} FOR UPDATE`;
      const actor = await tx.member.findUnique({
        where: { chatId_userId: { chatId, userId: actorId } },
        select: { role: true, chat: { select: { type: true } } },
      });
      if (!actor) throw notFound("chat");
      if (actor.chat.type === "private") {
        throw new AppError("VALIDATION", "members of a private chat are fixed");
      }
      if (ownerOnly && actor.role !== "owner") {
        throw forbidden(`only the owner ${ownerOnly}`);
      }
      return change(tx);
    });
  }

  /** NOT_FOUND unless `userId` is a member of the chat. */
  async assertMember(chatId: number, userId: number): Promise<void> {
    const member = await this.prisma.member.findUnique({
      where: { chatId_userId: { chatId, userId } },
      select: { userId: true },
    });
    if (!member) throw notFound("chat");
  }

  /** Ids of the chats a user is in (the rooms of a new socket). */
  async chatIdsOf(userId: number): Promise<number[]> {
    return (await this.chatIdsOfUsers([userId])).get(userId) ?? [];
  }

  /** Ids of the chats each user is in. */
  async chatIdsOfUsers(
    userIds: readonly number[],
  ): Promise<Map<number, number[]>> {
    const rows = await this.prisma.member.findMany({
      where: { userId: { in: [...userIds] } },
      select: { chatId: true, userId: true },
    });
    const chats = new Map<number, number[]>();
    for (const { userId, chatId } of rows) {
      chats.set(userId, [...(chats.get(userId) ?? []), chatId]);
    }
    return chats;
  }

  private async openPrivate(
    userId: number,
    otherId: number,
  ): Promise<{ chatId: number; created: boolean }> {
    if (otherId === userId) {
      throw invalid("user_id", "a private chat needs another user");
    }
    await this.users.assertExist([otherId]);
    const privateKey = `${Math.min(userId, otherId)}:${Math.max(userId, otherId)}`;
    const existing = await this.prisma.chat.findUnique({
      where: { privateKey },
      select: { id: true },
    });
    if (existing) return { chatId: existing.id, created: false };
    try {
      const chat = await this.prisma.chat.create({
        data: {
          type: "private",
          creatorId: userId,
          privateKey,
          members: { create: [{ userId }, { userId: otherId }] },
        },
        select: { id: true },
      });
      return { chatId: chat.id, created: true };
    } catch (error) {
      // Both people opened the chat at once: the other request made it.
      if (!isUniqueViolation(error)) throw error;
      const raced = await this.prisma.chat.findUniqueOrThrow({
        where: { privateKey },
        select: { id: true },
      });
      return { chatId: raced.id, created: false };
    }
  }

  private async createGroup(
    userId: number,
    name: string,
    memberIds: readonly number[],
  ): Promise<{ chatId: number; created: boolean }> {
    const others = [...new Set(memberIds)].filter((id) => id !== userId);
    await this.users.assertExist(others);
    const chat = await this.prisma.chat.create({
      data: {
        type: "group",
        name,
        creatorId: userId,
        members: {
          create: [
            { userId, role: "owner" },
            ...others.map((id) => ({ userId: id })),
          ],
        },
      },
      select: { id: true },
    });
    return { chatId: chat.id, created: true };
  }

  private async memberIds(chatId: number): Promise<number[]> {
    const rows = await this.prisma.member.findMany({
      where: { chatId },
      select: { userId: true },
    });
    return rows.map((r) => r.userId);
  }

  private async view(chatId: number, userId: number): Promise<Chat> {
    const views = await this.viewsFor(chatId, [userId]);
    const chat = views.get(userId);
    if (!chat) throw notFound("chat");
    return chat;
  }

  private async views(rows: ChatRow[], userId: number): Promise<Chat[]> {
    const memberIds = rows.flatMap((r) => r.members.map((m) => m.userId));
    const [lastMessages, online, unread] = await Promise.all([
      this.lastMessages(rows),
      this.presence.onlineAmong([...new Set(memberIds)]),
      this.unreadOf(userId),
    ]);
    return rows.map((row) =>
      chatView(
        row,
        lastMessages.get(row.id) ?? null,
        unread.get(row.id) ?? 0,
        online,
      ),
    );
  }

  private async lastMessages(
    rows: readonly ChatRow[],
  ): Promise<Map<number, MessageRow>> {
    const wanted = rows.filter((r) => r.lastSeq > 0);
    if (wanted.length === 0) return new Map();
    const messages = await this.prisma.message.findMany({
      where: { OR: wanted.map((r) => ({ chatId: r.id, seq: r.lastSeq })) },
    });
    return new Map(messages.map((m) => [m.chatId, m]));
  }

  /** Unread messages of one user, per chat. */
  private async unreadOf(userId: number): Promise<Map<number, number>> {
    const rows = await this.prisma.$queryRaw<{ id: number; n: number }[]>`
      SELECT m.chat_id AS id, count(*)::int AS n
      FROM members me
      JOIN messages m ON m.chat_id = me.chat_id AND m.seq > me.last_read_seq
      WHERE me.user_id = ${userId} AND m.sender_id <> ${userId}
      GROUP BY m.chat_id`;
    return new Map(rows.map((r) => [r.id, r.n]));
  }

  /** Unread messages of one chat, per member. */
  private async unreadByMember(chatId: number): Promise<Map<number, number>> {
    const rows = await this.prisma.$queryRaw<{ id: number; n: number }[]>`
      SELECT me.user_id AS id, count(*)::int AS n
      FROM members me
      JOIN messages m ON m.chat_id = me.chat_id AND m.seq > me.last_read_seq
      WHERE me.chat_id = ${chatId} AND m.sender_id <> me.user_id
      GROUP BY me.user_id`;
    return new Map(rows.map((r) => [r.id, r.n]));
  }
}
