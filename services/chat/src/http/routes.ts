import { z } from "zod";
import {
  AddMemberBody,
  Chat,
  ChatIdParams,
  CreateChatBody,
  HistoryQuery,
  MemberParams,
  Message,
  ReadBody,
  ReadMarker,
  RegisterBody,
  SendMessageBody,
  TokenBody,
  TokenResponse,
  UserPublic,
  UserSearchQuery,
  UserSelf,
} from "../contract/schemas.js";
import type { Chats } from "../domain/chats.js";
import type { Messages } from "../domain/messages.js";
import type { Tokens } from "../domain/tokens.js";
import type { Users } from "../domain/users.js";
import type { Announcer } from "../realtime/announcer.js";
import { route, type RouteContext } from "./route.js";

export interface Domain {
  users: Users;
  chats: Chats;
  messages: Messages;
  tokens: Tokens;
}

/**
 * Every REST endpoint of DESIGN.md section 6. Each parses (by its schemas),
 * calls the domain, announces the change to sockets, then answers.
 */
export function registerRoutes(
  ctx: RouteContext,
  domain: Domain,
  announcer: Announcer,
): void {
  const { users, chats, messages, tokens } = domain;

  route(ctx, {
    method: "post",
    path: "/users",
    summary: "Register",
    tag: "users",
    auth: false,
    body: RegisterBody,
    responses: {
      201: { description: "Registered", schema: UserSelf },
      409: { description: "Name or email taken (CONFLICT)" },
    },
    handle: async ({ body }) => ({
      status: 201,
      body: await users.register(body),
    }),
  });

  route(ctx, {
    method: "post",
    path: "/token",
    summary: "Log in (OAuth2 password form or JSON); username is email or name",
    tag: "users",
    auth: false,
    body: TokenBody,
    form: true,
    responses: {
      200: { description: "Bearer token", schema: TokenResponse },
      401: { description: "Unknown user or wrong password (UNAUTHORIZED)" },
      429: { description: "Too many attempts (RATE_LIMITED)" },
    },
    handle: async ({ body, client }) => {
      const userId = await users.authenticate(
        body.username,
        body.password,
        client,
      );
      return {
        status: 200,
        body: {
          access_token: tokens.issue(userId),
          token_type: "bearer",
          expires_in: tokens.ttlSeconds,
        },
      };
    },
  });

  route(ctx, {
    method: "get",
    path: "/users/me",
    summary: "Who am I",
    tag: "users",
    responses: { 200: { description: "Me", schema: UserSelf } },
    handle: async ({ userId }) => ({
      status: 200,
      body: await users.me(userId),
    }),
  });

  route(ctx, {
    method: "get",
    path: "/users",
    summary: "Find people by name prefix",
    tag: "users",
    query: UserSearchQuery,
    responses: { 200: { description: "People", schema: z.array(UserPublic) } },
    handle: async ({ query }) => ({
      status: 200,
      body: await users.search(query.q, query.limit),
    }),
  });

  route(ctx, {
    method: "post",
    path: "/chats",
    summary: "Open a private chat or create a group",
    tag: "chats",
    body: CreateChatBody,
    responses: {
      200: { description: "The existing private chat", schema: Chat },
      201: { description: "Created", schema: Chat },
    },
    handle: async ({ userId, body }) => {
      const opened = await chats.create(userId, body);
      return {
        status: opened.created ? 201 : 200,
        body: opened.chat,
        announce: opened.created
          ? () => announcer.membership(opened.change)
          : undefined,
      };
    },
  });

  route(ctx, {
    method: "get",
    path: "/chats",
    summary: "My chats, most recent activity first",
    tag: "chats",
    responses: { 200: { description: "Chats", schema: z.array(Chat) } },
    handle: async ({ userId }) => ({
      status: 200,
      body: await chats.list(userId),
    }),
  });

  route(ctx, {
    method: "get",
    path: "/chats/{chat_id}",
    summary: "One chat",
    tag: "chats",
    params: ChatIdParams,
    responses: { 200: { description: "The chat", schema: Chat } },
    handle: async ({ userId, params }) => ({
      status: 200,
      body: await chats.get(params.chat_id, userId),
    }),
  });

  route(ctx, {
    method: "post",
    path: "/chats/{chat_id}/members",
    summary: "Add a member to a group (owner only)",
    tag: "chats",
    params: ChatIdParams,
    body: AddMemberBody,
    responses: {
      200: { description: "The chat", schema: Chat },
      403: { description: "Not the owner (FORBIDDEN)" },
    },
    handle: async ({ userId, params, body }) => {
      const { chat, change } = await chats.addMember(
        params.chat_id,
        userId,
        body.user_id,
      );
      return {
        status: 200,
        body: chat,
        announce: change ? () => announcer.membership(change) : undefined,
      };
    },
  });

  route(ctx, {
    method: "delete",
    path: "/chats/{chat_id}/members/{user_id}",
    summary: "Remove a member (owner), or leave (self)",
    tag: "chats",
    params: MemberParams,
    responses: {
      204: { description: "Removed" },
      403: { description: "Not the owner (FORBIDDEN)" },
    },
    handle: async ({ userId, params }) => {
      const change = await chats.removeMember(
        params.chat_id,
        userId,
        params.user_id,
      );
      return { status: 204, announce: () => announcer.membership(change) };
    },
  });

  route(ctx, {
    method: "post",
    path: "/chats/{chat_id}/messages",
    summary: "Send a message",
    tag: "messages",
    params: ChatIdParams,
    body: SendMessageBody,
    responses: {
      200: {
        description: "Already stored under this client_id",
        schema: Message,
      },
      201: { description: "Stored", schema: Message },
      429: { description: "Too many messages (RATE_LIMITED)" },
    },
    handle: async ({ userId, params, body, log }) => {
      // Broadcast as the writer stores it, in seq order with the chat's
      // other sends from this node.
      const sent = await messages.send(
        {
          chatId: params.chat_id,
          senderId: userId,
          text: body.text,
          clientId: body.client_id,
        },
        (result) => result.duplicate || announcer.message(result.message),
      );
      log.debug("message sent", {
        chat: params.chat_id,
        seq: sent.message.seq,
      });
      return { status: sent.duplicate ? 200 : 201, body: sent.message };
    },
  });

  route(ctx, {
    method: "get",
    path: "/history/{chat_id}",
    summary: "History, oldest first: by offset, after a seq, or before a seq",
    tag: "messages",
    params: ChatIdParams,
    query: HistoryQuery,
    responses: { 200: { description: "Messages", schema: z.array(Message) } },
    handle: async ({ userId, params, query }) => ({
      status: 200,
      body: await messages.history(params.chat_id, userId, query),
    }),
  });

  route(ctx, {
    method: "post",
    path: "/chats/{chat_id}/read",
    summary: "Mark everything up to seq as read",
    tag: "messages",
    params: ChatIdParams,
    body: ReadBody,
    responses: { 200: { description: "My read marker", schema: ReadMarker } },
    handle: async ({ userId, params, body }) => {
      const read = await messages.markRead(params.chat_id, userId, body.seq);
      const { chat_id, user_id, last_read_seq } = read;
      return {
        status: 200,
        body: { chat_id, user_id, last_read_seq },
        announce: () => announcer.read(read),
      };
    },
  });
}
