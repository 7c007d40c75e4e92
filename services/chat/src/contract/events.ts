/**
 * The Socket.IO event contract (DESIGN.md section 7), shared by the server,
 * the tests and the load generator.
 */
import type { z } from "zod";
import type { ErrorBody } from "../errors.js";
import type {
  Chat,
  Message,
  ReadEvent,
  SendEvent,
  TypingEvent,
} from "./schemas.js";

export type Ack<T extends object = object> =
  ({ ok: true } & T) | { ok: false; error: ErrorBody };

export interface ClientToServerEvents {
  "message:send": (
    payload: z.input<typeof SendEvent>,
    ack: (reply: Ack<{ message: Message; duplicate: boolean }>) => void,
  ) => void;
  "message:read": (
    payload: z.input<typeof ReadEvent>,
    ack: (reply: Ack<{ last_read_seq: number }>) => void,
  ) => void;
  typing: (
    payload: z.input<typeof TypingEvent>,
    ack: (reply: Ack) => void,
  ) => void;
}

export interface ReadNotice {
  chat_id: number;
  user_id: number;
  last_read_seq: number;
  read_at: string;
}

export interface ServerToClientEvents {
  "message:new": (message: Message) => void;
  "message:read": (notice: ReadNotice) => void;
  "chat:updated": (chat: Chat) => void;
  typing: (notice: {
    chat_id: number;
    user_id: number;
    typing: boolean;
  }) => void;
  presence: (notice: { user_id: number; online: boolean }) => void;
}

/** Room of every socket of one user. */
export const userRoom = (userId: number): string => `user:${userId}`;
/** Room of every socket of every member of one chat. */
export const chatRoom = (chatId: number): string => `chat:${chatId}`;
export const isChatRoom = (room: string): boolean => room.startsWith("chat:");
