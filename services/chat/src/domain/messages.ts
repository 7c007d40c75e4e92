import type { z } from "zod";
import type { HistoryQuery, Message, ReadMarker } from "../contract/schemas.js";
import { AppError, notFound } from "../errors.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import type { RateLimiter } from "../cluster/rate-limit.js";
import {
  MessageWriter,
  readMarkers,
  type SendInput,
  type SendResult,
} from "./message-writer.js";
import { messageView } from "./views.js";

export type { SendInput, SendResult };

export interface ReadResult extends ReadMarker {
  /** False when the marker was already at or past the asked seq. */
  changed: boolean;
  readAt: Date;
}

/** Sending, history and read markers. */
export class Messages {
  private readonly writer: MessageWriter;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly limiter: RateLimiter,
  ) {
    this.writer = new MessageWriter(prisma);
  }

  /**
   * Stores a message as the chat's next seq and hands the result to
   * `deliver` (acknowledge, broadcast) in seq order with the chat's other
   * sends through this node (see MessageWriter). A repeated client_id
   * stores nothing and returns the stored message as a duplicate.
   */
  async send(
    input: SendInput,
    deliver: (result: SendResult) => void = () => undefined,
  ): Promise<SendResult> {
    const retryAfterMs = await this.limiter.consume(String(input.senderId));
    if (retryAfterMs > 0) {
      // A retry of a stored message is answered, not refused.
      const stored = await this.writer.stored(input);
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
    return this.writer.write(input, deliver);
  }

  /** History of a chat, oldest first, by offset, after or before a seq. */
  async history(
    chatId: number,
    userId: number,
    query: z.output<typeof HistoryQuery>,
  ): Promise<Message[]> {
    const members = await readMarkers(this.prisma, chatId);
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
}
