import type { z } from "zod";
import type { HistoryQuery, Message, ReadMarker } from "../contract/schemas.js";
import { AppError, notFound } from "../errors.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import type { RateLimiter } from "../cluster/rate-limit.js";
import { KeyedQueue } from "./keyed-queue.js";
import { isUniqueViolation } from "./prisma-errors.js";
import { type MessageRow, messageView } from "./views.js";

export interface SendInput {
  chatId: number;
  senderId: number;
  text: string;
  clientId?: string | undefined;
}

export interface SendResult {
  message: Message;
  /** True when `clientId` was seen before: nothing new was stored. */
  duplicate: boolean;
}

export interface ReadResult extends ReadMarker {
  /** False when the marker was already at or past the asked seq. */
  changed: boolean;
  readAt: Date;
}

interface StoredRow {
  id: number;
  chat_id: number;
  sender_id: number;
  text: string;
  created_at: Date | string;
  seq: number;
  client_id: string | null;
  alone: boolean;
}

/** Sending, history and read markers. */
export class Messages {
  constructor(
    private readonly prisma: PrismaClient,
    private readonly limiter: RateLimiter,
  ) {}

  private readonly perChat = new KeyedQueue<number>();

  /**
   * Stores a message as the chat's next seq and hands the result to
   * `deliver` (acknowledge, broadcast) before the next send to the same
   * chat from this node is stored, so that this node's sockets hear one
   * chat's messages in seq order. A repeated client_id stores nothing and
   * returns the stored message as a duplicate.
   */
  async send(
    input: SendInput,
    deliver: (result: SendResult) => void = () => undefined,
  ): Promise<SendResult> {
    const retryAfterMs = await this.limiter.consume(input.senderId);
    if (retryAfterMs > 0) {
      // A retry of a stored message is answered, not refused.
      const stored = input.clientId && (await this.byClientId(input));
      if (stored) {
        const result = { message: stored, duplicate: true };
        deliver(result);
        return result;
      }
      throw new AppError(
        "RATE_LIMITED",
        "too many messages; slow down",
        undefined,
        Math.ceil(retryAfterMs / 1000),
      );
    }
    // TODO(throughput): one statement per chat at a time per node caps a
    // single hot chat at about one send per database round trip per node;
    // batch queued sends into one multi-row statement if that ever binds.
    return this.perChat.run(input.chatId, async () => {
      const result = await this.store(input);
      deliver(result);
      return result;
    });
  }

  /**
   * One statement: the chat row is locked while its counter moves, so
   * concurrent senders on any node get 1, 2, 3, ... in commit order, and a
   * time that never goes back. A repeated client_id breaks the unique key
   * and rolls the whole statement back, seq included.
   */
  private async store(input: SendInput): Promise<SendResult> {
    try {
      const row = await this.insert(input);
      if (!row) throw notFound("chat");
      return { message: storedView(row), duplicate: false };
    } catch (error) {
      if (input.clientId === undefined || !isUniqueViolation(error)) {
        throw error;
      }
      const stored = await this.byClientId(input);
      if (!stored) throw error;
      return { message: stored, duplicate: true };
    }
  }

  /** History of a chat, oldest first, by offset, after or before a seq. */
  async history(
    chatId: number,
    userId: number,
    query: z.output<typeof HistoryQuery>,
  ): Promise<Message[]> {
    const members = await this.members(chatId);
    if (!members.some((m) => m.userId === userId)) throw notFound("chat");
    const newestFirst = query.before !== undefined;
    const rows = await this.prisma.message.findMany({
      where: {
        chatId,
        seq: newestFirst
          ? { lt: query.before }
          : { gt: query.after ?? query.offset ?? 0 },
      },
      orderBy: { seq: newestFirst ? "desc" : "asc" },
      take: query.limit,
    });
    if (newestFirst) rows.reverse();
    return rows.map((m) => messageView(m, members));
  }

  /**
   * Moves a member's read marker forward to `seq`, or to the last message
   * when `seq` is past it. A lower seq changes nothing.
   */
  async markRead(
    chatId: number,
    userId: number,
    seq: number,
  ): Promise<ReadResult> {
    const moved = await this.prisma.$queryRaw<{ last_read_seq: number }[]>`
      UPDATE members AS m SET last_read_seq = LEAST(${seq}::int, c.last_seq)
      FROM chats AS c
      WHERE m.chat_id = ${chatId} AND m.user_id = ${userId} AND c.id = m.chat_id
        AND m.last_read_seq < LEAST(${seq}::int, c.last_seq)
      RETURNING m.last_read_seq`;
    const readAt = new Date();
    const base = { chat_id: chatId, user_id: userId, readAt };
    if (moved[0]) {
      return { ...base, last_read_seq: moved[0].last_read_seq, changed: true };
    }
    const member = await this.prisma.member.findUnique({
      where: { chatId_userId: { chatId, userId } },
      select: { lastReadSeq: true },
    });
    if (!member) throw notFound("chat");
    return { ...base, last_read_seq: member.lastReadSeq, changed: false };
  }

  private async insert(input: SendInput): Promise<StoredRow | undefined> {
    const { chatId, senderId, text } = input;
    const clientId = input.clientId ?? null;
    const rows = await this.prisma.$queryRaw<StoredRow[]>`
      WITH next AS (
        UPDATE chats
        SET last_seq = last_seq + 1,
            last_activity_at = GREATEST(clock_timestamp(), last_activity_at)
        WHERE id = ${chatId} AND EXISTS (
          SELECT 1 FROM members WHERE chat_id = ${chatId} AND user_id = ${senderId})
        RETURNING last_seq, last_activity_at
      ), stored AS (
        INSERT INTO messages (chat_id, sender_id, text, client_id, seq, created_at)
        SELECT ${chatId}, ${senderId}, ${text}, ${clientId}::varchar,
               last_seq, last_activity_at
        FROM next
        RETURNING id, chat_id, sender_id, text, client_id, seq, created_at
      ), own_marker AS (
        UPDATE members SET last_read_seq = stored.seq FROM stored
        WHERE members.chat_id = ${chatId} AND members.user_id = ${senderId}
      )
      SELECT stored.*, NOT EXISTS (
        SELECT 1 FROM members WHERE chat_id = ${chatId} AND user_id <> ${senderId}
      ) AS alone
      FROM stored`;
    return rows[0];
  }

  private async byClientId(input: SendInput): Promise<Message | undefined> {
    const { chatId, senderId, clientId } = input;
    const [stored, members] = await Promise.all([
      this.prisma.message.findFirst({ where: { chatId, senderId, clientId } }),
      this.members(chatId),
    ]);
    return stored ? messageView(stored, members) : undefined;
  }

  private members(chatId: number) {
    return this.prisma.member.findMany({
      where: { chatId },
      select: { userId: true, lastReadSeq: true },
    });
  }
}

function storedView(row: StoredRow): Message {
  const message: MessageRow = {
    id: row.id,
    chatId: row.chat_id,
    senderId: row.sender_id,
    text: row.text,
    createdAt: new Date(row.created_at),
    seq: row.seq,
    clientId: row.client_id,
  };
  // Just stored: read by the others only if there are none.
  return { ...messageView(message, []), is_read: row.alone };
}
