/**
 * The zod schemas of the wire contract (DESIGN.md sections 5-7). They
 * validate what clients send and describe what the server answers; the
 * OpenAPI document and the event types are generated from them.
 */
import { extendZodWithOpenApi } from "@asteasolutions/zod-to-openapi";
import { z } from "zod";

extendZodWithOpenApi(z);

const INT_MAX = 2_147_483_647;

/** An id in a JSON body or a socket payload: a number, never coerced. */
const id = z.number().int().positive().max(INT_MAX);

/** A whole number in a path or query string: decimal digits only. */
function digits(min: number, max: number) {
  return z
    .string()
    .regex(/^(0|[1-9][0-9]{0,9})$/, "must be a whole number in decimal")
    .transform(Number)
    .pipe(z.number().min(min).max(max));
}
const idParam = digits(1, INT_MAX);

/**
 * What every input string must be: no NUL (PostgreSQL text cannot hold
 * it) and no lone UTF-16 surrogate (it would be stored as U+FFFD, so two
 * different strings would become one).
 */
const wellFormed = (s: string) =>
  !s.includes("\u0000") &&
  !/[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(
    s,
  );
const plain = () =>
  z.string().refine(wellFormed, "must be valid text without NUL");

/** Not only white space or invisible format characters. */
const visible = (s: string) => !/^[\s\p{Cf}]*$/u.test(s);

/** A name: 1 to `max` code points, something visible, trimmed. */
const name = (max: number) =>
  text(1, max)
    .refine(visible, "must not be blank")
    .transform((s) => s.trim());

/** A string of `min` to `max` code points. */
function text(min: number, max: number) {
  return plain()
    .refine((s) => [...s].length >= min, `must be at least ${min} characters`)
    .refine((s) => [...s].length <= max, `must be at most ${max} characters`);
}

// ---- requests ---------------------------------------------------------

export const RegisterBody = z
  .object({
    name: name(64),
    email: z.email().max(254).refine(wellFormed),
    password: plain().min(8).max(128),
  })
  .openapi("RegisterRequest");

export const TokenBody = z
  .object({
    username: plain().min(1).max(254).openapi({
      description: "email or name",
    }),
    password: plain().min(1).max(128),
    grant_type: z.literal("password").optional(),
  })
  .openapi("TokenRequest");

export const UserSearchQuery = z.object({
  q: plain().max(64).default(""),
  limit: digits(1, 100).default(20),
});

export const ChatIdParams = z.object({ chat_id: idParam });
export const MemberParams = z.object({ chat_id: idParam, user_id: idParam });

export const CreateChatBody = z
  .discriminatedUnion("type", [
    z.object({ type: z.literal("private"), user_id: id }),
    z.object({
      type: z.literal("group"),
      name: name(128),
      member_ids: z.array(id).max(500).default([]),
    }),
  ])
  .openapi("CreateChatRequest");

export const AddMemberBody = z
  .object({ user_id: id })
  .openapi("AddMemberRequest");

export const MessageText = text(1, 4000).refine(
  visible,
  "must not be only white space",
);
export const ClientId = plain().min(1).max(64);

export const SendMessageBody = z
  .object({ text: MessageText, client_id: ClientId.optional() })
  .openapi("SendMessageRequest");

export const HistoryQuery = z
  .object({
    limit: digits(1, 100).default(50),
    offset: digits(0, INT_MAX).optional(),
    after: digits(0, INT_MAX).optional(),
    before: digits(1, INT_MAX).optional(),
  })
  .superRefine((q, ctx) => {
    const given = (["offset", "after", "before"] as const).filter(
      (key) => q[key] !== undefined,
    );
    if (given.length > 1) {
      ctx.addIssue({
        code: "custom",
        path: [given[1]!],
        message: `not combined with ${given[0]}`,
      });
    }
  });

export const ReadBody = z
  .object({ seq: z.number().int().min(0).max(INT_MAX) })
  .openapi("ReadRequest");

// ---- socket payloads --------------------------------------------------

export const SendEvent = z.object({
  chat_id: id,
  text: MessageText,
  client_id: ClientId.optional(),
});
export const ReadEvent = z.object({ chat_id: id, seq: ReadBody.shape.seq });
export const TypingEvent = z.object({ chat_id: id, typing: z.boolean() });

// ---- responses --------------------------------------------------------

const time = z.string().openapi({ example: "2026-12-04T15:13:38.123Z" });

export const UserSelf = z
  .object({
    id: z.number(),
    name: z.string(),
    email: z.string(),
    created_at: time,
  })
  .openapi("User");
export const UserPublic = z
  .object({ id: z.number(), name: z.string() })
  .openapi("UserPublic");

export const TokenResponse = z
  .object({
    access_token: z.string(),
    token_type: z.literal("bearer"),
    expires_in: z.number(),
  })
  .openapi("Token");

export const Message = z
  .object({
    id: z.number(),
    chat_id: z.number(),
    sender_id: z.number(),
    text: z.string(),
    timestamp: time,
    seq: z.number(),
    client_id: z.string().nullable(),
    is_read: z.boolean(),
  })
  .openapi("Message");

export const ChatMember = z
  .object({
    user_id: z.number(),
    name: z.string(),
    role: z.enum(["owner", "member"]),
    last_read_seq: z.number(),
    online: z.boolean(),
  })
  .openapi("ChatMember");

export const Chat = z
  .object({
    id: z.number(),
    type: z.enum(["private", "group"]),
    name: z.string().nullable(),
    creator_id: z.number(),
    created_at: time,
    members: z.array(ChatMember),
    last_message: Message.nullable(),
    unread_count: z.number(),
  })
  .openapi("Chat");

export const ReadMarker = z
  .object({
    chat_id: z.number(),
    user_id: z.number(),
    last_read_seq: z.number(),
  })
  .openapi("ReadMarker");

export const ErrorResponse = z
  .object({
    error: z.object({
      code: z.string(),
      message: z.string(),
      details: z.unknown().optional(),
    }),
  })
  .openapi("Error");

export type UserSelf = z.infer<typeof UserSelf>;
export type UserPublic = z.infer<typeof UserPublic>;
export type Message = z.infer<typeof Message>;
export type Chat = z.infer<typeof Chat>;
export type ChatMember = z.infer<typeof ChatMember>;
export type ReadMarker = z.infer<typeof ReadMarker>;
export type TokenResponse = z.infer<typeof TokenResponse>;
