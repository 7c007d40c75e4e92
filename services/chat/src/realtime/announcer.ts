import type { Server } from "socket.io";
import {
  chatRoom,
  type ClientToServerEvents,
  type ServerToClientEvents,
  userRoom,
} from "../contract/events.js";
import type { Message } from "../contract/schemas.js";
import type { Chats, MembershipChange } from "../domain/chats.js";
import type { ReadResult } from "../domain/messages.js";

export interface SocketData {
  userId: number;
  /** Token expiry, in milliseconds since the epoch. */
  expiresAt: number;
  /** This socket made its user online: announce it once connected. */
  cameOnline: boolean;
  /** The handshake completed (`connect` fired). */
  entered: boolean;
}

export type ChatServer = Server<
  ClientToServerEvents,
  ServerToClientEvents,
  Record<string, never>,
  SocketData
>;

/**
 * Tells the sockets of the people concerned what has changed. Both edges,
 * REST and Socket.IO, call it after the domain has stored the change, so
 * every event has one source. Rooms go through the adapter: with Redis,
 * they reach sockets on every node.
 */
export class Announcer {
  constructor(
    private readonly io: ChatServer,
    private readonly chats: Chats,
  ) {}

  message(message: Message): void {
    this.io.to(chatRoom(message.chat_id)).emit("message:new", message);
  }

  read(result: ReadResult): void {
    if (!result.changed) return;
    this.io.to(chatRoom(result.chat_id)).emit("message:read", {
      chat_id: result.chat_id,
      user_id: result.user_id,
      last_read_seq: result.last_read_seq,
      read_at: result.readAt.toISOString(),
    });
  }

  typing(chatId: number, userId: number, typing: boolean): void {
    this.io
      .to(chatRoom(chatId))
      .except(userRoom(userId))
      .emit("typing", { chat_id: chatId, user_id: userId, typing });
  }

  /** Moves sockets in or out of the chat's room, then sends `chat:updated`. */
  async membership(change: MembershipChange): Promise<void> {
    const room = chatRoom(change.chatId);
    for (const userId of change.joined) {
      this.io.in(userRoom(userId)).socketsJoin(room);
    }
    for (const userId of change.left) {
      this.io.in(userRoom(userId)).socketsLeave(room);
    }
    const views = await this.chats.viewsFor(change.chatId, change.notify);
    for (const [userId, chat] of views) {
      this.io.to(userRoom(userId)).emit("chat:updated", chat);
    }
  }

  /** Tells everyone who shares a chat with the user. */
  async presence(userId: number, online: boolean): Promise<void> {
    const chatIds = await this.chats.chatIdsOf(userId);
    if (chatIds.length === 0) return;
    this.io
      .to(chatIds.map(chatRoom))
      .except(userRoom(userId))
      .emit("presence", { user_id: userId, online });
  }
}
