/** Turns stored rows into the wire format of DESIGN.md section 5. */
import type {
  Chat,
  ChatMember,
  Message,
  UserPublic,
  UserSelf,
} from "../contract/schemas.js";

export interface UserRow {
  id: number;
  name: string;
  email: string;
  createdAt: Date;
}

export interface MessageRow {
  id: number;
  chatId: number;
  senderId: number;
  text: string;
  createdAt: Date;
  seq: number;
  clientId: string | null;
}

export interface MemberRow {
  userId: number;
  role: "owner" | "member";
  lastReadSeq: number;
  joinedAt: Date;
  user: { name: string };
}

export interface ChatRow {
  id: number;
  type: "private" | "group";
  name: string | null;
  creatorId: number;
  createdAt: Date;
  lastSeq: number;
  members: MemberRow[];
}

export const userSelf = (u: UserRow): UserSelf => ({
  id: u.id,
  name: u.name,
  email: u.email,
  created_at: u.createdAt.toISOString(),
});

export const userPublic = (u: { id: number; name: string }): UserPublic => ({
  id: u.id,
  name: u.name,
});

/**
 * Read by everyone but its sender: every other current member's marker has
 * reached the message.
 */
export function isRead(
  message: { senderId: number; seq: number },
  members: readonly { userId: number; lastReadSeq: number }[],
): boolean {
  return members.every(
    (m) => m.userId === message.senderId || m.lastReadSeq >= message.seq,
  );
}

export function messageView(
  m: MessageRow,
  members: readonly { userId: number; lastReadSeq: number }[],
): Message {
  return {
    id: m.id,
    chat_id: m.chatId,
    sender_id: m.senderId,
    text: m.text,
    timestamp: m.createdAt.toISOString(),
    seq: m.seq,
    client_id: m.clientId,
    is_read: isRead(m, members),
  };
}

/** Owners first, then by joining time: the order members are listed in. */
export function byStanding(a: MemberRow, b: MemberRow): number {
  if (a.role !== b.role) return a.role === "owner" ? -1 : 1;
  return a.joinedAt.getTime() - b.joinedAt.getTime() || a.userId - b.userId;
}

export function chatView(
  chat: ChatRow,
  lastMessage: MessageRow | null,
  unreadCount: number,
  online: ReadonlySet<number>,
): Chat {
  const members: ChatMember[] = [...chat.members].sort(byStanding).map((m) => ({
    user_id: m.userId,
    name: m.user.name,
    role: m.role,
    last_read_seq: m.lastReadSeq,
    online: online.has(m.userId),
  }));
  return {
    id: chat.id,
    type: chat.type,
    name: chat.name,
    creator_id: chat.creatorId,
    created_at: chat.createdAt.toISOString(),
    members,
    last_message: lastMessage && messageView(lastMessage, chat.members),
    unread_count: unreadCount,
  };
}
