import { Prisma, type PrismaClient } from "../generated/prisma/client.js";
import type { Message } from "../contract/schemas.js";
import { notFound } from "../errors.js";
import { isUniqueViolation } from "./prisma-errors.js";
import { messageView } from "./views.js";

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

interface Pending {
  input: SendInput;
  deliver: (result: SendResult) => void;
  resolve: (result: SendResult) => void;
  reject: (error: unknown) => void;
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

/** Most sends one statement stores. */
const MAX_BATCH = 100;

/**
 * Writes messages, one chat at a time per node. Sends that arrive for a
 * chat while a statement for it is running wait, and then go together in
 * one statement; each result is delivered (acknowledged, broadcast) in seq
 * order before the next statement starts, so this node's sockets hear a
 * chat's messages in seq order, and a busy chat costs one round trip per
 * batch rather than per message.
 */
export class MessageWriter {
  private readonly waiting = new Map<number, Pending[]>();

  constructor(private readonly prisma: PrismaClient) {}

  write(
    input: SendInput,
    deliver: (result: SendResult) => void,
  ): Promise<SendResult> {
    return new Promise((resolve, reject) => {
      const queue = this.waiting.get(input.chatId);
      const pending = { input, deliver, resolve, reject };
      if (queue) {
        queue.push(pending);
        return;
      }
      this.waiting.set(input.chatId, [pending]);
      void this.drain(input.chatId);
    });
  }

  /** Stores the chat's waiting sends, batch after batch, until none wait. */
  private async drain(chatId: number): Promise<void> {
    const queue = this.waiting.get(chatId)!;
    while (queue.length > 0) {
      const batch = queue.splice(0, MAX_BATCH);
      const inputs = batch.map((p) => p.input);
      const outcomes = await this.storeBatch(inputs).catch((error: unknown) =>
        inputs.map(() => asError(error)),
      );
      batch.forEach((pending, i) => settle(pending, outcomes[i]!));
    }
    this.waiting.delete(chatId);
  }

  /**
   * All sends in one statement. A repeated client_id breaks it: then the
   * repeats are answered with what is stored and the rest go again in one
   * statement. A sender who is not a member leaves each send on its own,
   * in order. Any other failure fails them all.
   */
  private async storeBatch(
    inputs: SendInput[],
  ): Promise<(SendResult | Error)[]> {
    if (inputs.length === 1) {
      return [await this.storeOne(inputs[0]!).catch(asError)];
    }
    return this.storeTogether(inputs, () => this.storeWithoutRepeats(inputs));
  }

  /**
   * One statement for all the sends. A sender who is not a member leaves
   * each send on its own; a repeated client_id is handed to `onRepeat`;
   * any other failure fails them all.
   */
  private async storeTogether(
    inputs: SendInput[],
    onRepeat: () => Promise<(SendResult | Error)[]>,
  ): Promise<(SendResult | Error)[]> {
    if (inputs.length === 0) return [];
    try {
      const rows = await this.insert(inputs);
      if (rows.length === inputs.length) return rows.map(fresh);
    } catch (error) {
      if (!isUniqueViolation(error)) return inputs.map(() => asError(error));
      return onRepeat();
    }
    return this.storeEach(inputs);
  }

  /** Answers repeated client_ids from the store, then writes the rest. */
  private async storeWithoutRepeats(
    inputs: SendInput[],
  ): Promise<(SendResult | Error)[]> {
    const earlier = await this.storedByKey(inputs);
    const first = new Map<string, number>();
    const news: SendInput[] = [];
    inputs.forEach((input, i) => {
      const key = repeatKey(input);
      if (key === undefined || (!earlier.has(key) && !first.has(key))) {
        if (key !== undefined) first.set(key, i);
        news.push(input);
      }
    });
    // A client_id stored by another node meanwhile: one by one.
    const written = await this.storeTogether(news, () => this.storeEach(news));
    const resultOf = new Map(news.map((input, i) => [input, written[i]!]));
    return inputs.map((input) => {
      const own = resultOf.get(input);
      if (own) return own;
      const key = repeatKey(input)!;
      const stored = earlier.get(key);
      if (stored) return { message: stored, duplicate: true };
      const original = resultOf.get(inputs[first.get(key)!]!)!;
      return original instanceof Error
        ? original
        : { message: original.message, duplicate: true };
    });
  }

  private async storeEach(
    inputs: SendInput[],
  ): Promise<(SendResult | Error)[]> {
    const outcomes: (SendResult | Error)[] = [];
    for (const input of inputs) {
      outcomes.push(await this.storeOne(input).catch(asError));
    }
    return outcomes;
  }

  /** Messages stored earlier under the sends' client_ids, by repeatKey. */
  private async storedByKey(
    inputs: SendInput[],
  ): Promise<Map<string, Message>> {
    const keyed = inputs.filter((input) => input.clientId !== undefined);
    if (keyed.length === 0) return new Map();
    const chatId = inputs[0]!.chatId;
    const [messages, members] = await Promise.all([
      this.prisma.message.findMany({
        where: {
          chatId,
          OR: keyed.map(({ senderId, clientId }) => ({ senderId, clientId })),
        },
      }),
      readMarkers(this.prisma, chatId),
    ]);
    return new Map(
      messages.map((m) => [
        `${m.senderId}|${m.clientId}`,
        messageView(m, members),
      ]),
    );
  }

  private async storeOne(input: SendInput): Promise<SendResult> {
    try {
      const [row] = await this.insert([input]);
      if (!row) throw notFound("chat");
      return fresh(row);
    } catch (error) {
      if (!isUniqueViolation(error)) throw error;
      const stored = await this.stored(input);
      if (!stored) throw error;
      return { message: stored, duplicate: true };
    }
  }

  /** The message stored earlier under the send's client_id, if any. */
  async stored(input: SendInput): Promise<Message | undefined> {
    const { chatId, senderId, clientId } = input;
    if (clientId === undefined) return undefined;
    const [message, members] = await Promise.all([
      this.prisma.message.findFirst({ where: { chatId, senderId, clientId } }),
      readMarkers(this.prisma, chatId),
    ]);
    return message ? messageView(message, members) : undefined;
  }

  /**
   * One statement for sends to one chat. The chat row is locked while its
   * counter moves by the batch's size, so concurrent writers on any node
   * get consecutive seqs in commit order, and a time that never goes back.
   * Nothing is stored unless every sender is a member; a repeated
   * client_id breaks a unique key and rolls everything back, seq included.
   * Each sender's read marker moves to their newest message.
   */
  private insert(inputs: SendInput[]): Promise<StoredRow[]> {
    const chatId = inputs[0]!.chatId;
    const count = inputs.length;
    const values = Prisma.join(
      inputs.map(
        (input, i) =>
          Prisma.sql`(${i + 1}::int, ${input.senderId}::int, ${input.text}::text, ${input.clientId ?? null}::varchar)`,
      ),
    );
    return this.prisma.$queryRaw<StoredRow[]>`
      WITH input (n, sender_id, text, client_id) AS (VALUES ${values}),
      next AS (
        UPDATE chats
        SET last_seq = last_seq + ${count}::int,
            last_activity_at = GREATEST(clock_timestamp(), last_activity_at)
        WHERE id = ${chatId} AND ${count}::int = (
          SELECT count(*) FROM input JOIN members AS m
            ON m.chat_id = ${chatId} AND m.user_id = input.sender_id)
        RETURNING last_seq, last_activity_at
      ), stored AS (
        INSERT INTO messages (chat_id, sender_id, text, client_id, seq, created_at)
        SELECT ${chatId}, input.sender_id, input.text, input.client_id,
               next.last_seq - ${count}::int + input.n, next.last_activity_at
        FROM input, next
        RETURNING id, chat_id, sender_id, text, client_id, seq, created_at
      ), own_marker AS (
        UPDATE members SET last_read_seq = newest.seq
        FROM (SELECT sender_id, max(seq) AS seq FROM stored GROUP BY sender_id)
          AS newest
        WHERE members.chat_id = ${chatId}
          AND members.user_id = newest.sender_id
          AND members.last_read_seq < newest.seq
      )
      SELECT stored.*, NOT EXISTS (
        SELECT 1 FROM members
        WHERE chat_id = ${chatId} AND user_id <> stored.sender_id
      ) AS alone
      FROM stored ORDER BY stored.seq`;
  }
}

/** Delivers a stored message, then resolves its send; or rejects it. */
function settle(pending: Pending, outcome: SendResult | Error): void {
  if (outcome instanceof Error) {
    pending.reject(outcome);
    return;
  }
  try {
    pending.deliver(outcome);
    pending.resolve(outcome);
  } catch (error) {
    pending.reject(error);
  }
}

/** Each member's read marker: what `is_read` is computed from. */
export function readMarkers(prisma: PrismaClient, chatId: number) {
  return prisma.member.findMany({
    where: { chatId },
    select: { userId: true, lastReadSeq: true },
  });
}

/** Sender and client_id: what makes two sends the same message. */
function repeatKey(input: SendInput): string | undefined {
  return input.clientId === undefined
    ? undefined
    : `${input.senderId}|${input.clientId}`;
}

function fresh(row: StoredRow): SendResult {
  return { message: view(row), duplicate: false };
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** A message just stored: read by the others only if there are none. */
function view(row: StoredRow): Message {
  const message = messageView(
    {
      id: row.id,
      chatId: row.chat_id,
      senderId: row.sender_id,
      text: row.text,
      createdAt: new Date(row.created_at),
      seq: row.seq,
      clientId: row.client_id,
    },
    [],
  );
  return { ...message, is_read: row.alone };
}
