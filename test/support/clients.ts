import { randomBytes } from "node:crypto";
import {
  io,
  type Socket,
  type SocketOptions,
  type ManagerOptions,
} from "socket.io-client";
import type {
  ClientToServerEvents,
  ServerToClientEvents,
} from "../../services/chat/src/contract/events.js";

export type ChatClient = Socket<ServerToClientEvents, ClientToServerEvents>;
type EventName = keyof ServerToClientEvents;
type Payload<E extends EventName> = Parameters<ServerToClientEvents[E]>[0];

/** How long a test waits for something that should happen. */
export const WAIT_MS = 5_000;

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
}

/** A REST client for one base URL, with an optional bearer token. */
export class Api {
  constructor(
    readonly url: string,
    readonly token?: string,
  ) {}

  as(token: string): Api {
    return new Api(this.url, token);
  }

  get<T = any>(path: string): Promise<Reply<T>> {
    return this.request("GET", path);
  }

  post<T = any>(path: string, body?: unknown): Promise<Reply<T>> {
    return this.request("POST", path, body);
  }

  delete<T = any>(path: string): Promise<Reply<T>> {
    return this.request("DELETE", path);
  }

  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<Reply<T>> {
    const init: RequestInit = {
      method,
      headers: {
        ...(this.token && { authorization: `Bearer ${this.token}` }),
        ...(body !== undefined && { "content-type": "application/json" }),
        ...headers,
      },
      signal: AbortSignal.timeout(WAIT_MS * 2),
    };
    if (body !== undefined) {
      init.body = typeof body === "string" ? body : JSON.stringify(body);
    }
    const res = await fetch(this.url + path, init);
    const text = await res.text();
    return {
      status: res.status,
      body: (text ? JSON.parse(text) : undefined) as T,
      headers: res.headers,
    };
  }
}

export interface TestUser {
  id: number;
  name: string;
  email: string;
  token: string;
  api: Api;
}

/** Registers a user with a unique name and logs them in. */
export async function newUser(url: string, prefix = "user"): Promise<TestUser> {
  const name = `${prefix}_${randomBytes(4).toString("hex")}`;
  const email = `${name}@example.test`;
  const password = "correct horse battery";
  const api = new Api(url);
  const created = await api.post("/users", { name, email, password });
  if (created.status !== 201) {
    throw new Error(`register failed: ${JSON.stringify(created.body)}`);
  }
  const login = await api.post("/token", { username: email, password });
  if (login.status !== 200) {
    throw new Error(`login failed: ${JSON.stringify(login.body)}`);
  }
  const token = login.body.access_token as string;
  return { id: created.body.id, name, email, token, api: api.as(token) };
}

/** Several users at once. */
export function newUsers(url: string, count: number, prefix = "user") {
  return Promise.all(Array.from({ length: count }, () => newUser(url, prefix)));
}

/**
 * A socket that records every event it receives, so a test can wait for
 * one and check that no other arrived.
 */
export class Device {
  readonly events: { event: EventName; payload: any }[] = [];
  private waiters: (() => void)[] = [];

  constructor(readonly socket: ChatClient) {
    socket.onAny((event: EventName, payload: unknown) => {
      this.events.push({ event, payload });
      for (const wake of [...this.waiters]) wake();
    });
  }

  /** Payloads of one event received so far, optionally filtered. */
  received<E extends EventName>(
    event: E,
    match: (payload: Payload<E>) => boolean = () => true,
  ): Payload<E>[] {
    return this.events
      .filter((e) => e.event === event && match(e.payload))
      .map((e) => e.payload as Payload<E>);
  }

  /** Waits until `count` matching events have arrived, or fails. */
  async waitFor<E extends EventName>(
    event: E,
    match: (payload: Payload<E>) => boolean = () => true,
    count = 1,
    timeoutMs = WAIT_MS,
  ): Promise<Payload<E>[]> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const seen = this.received(event, match);
      if (seen.length >= count) return seen;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `waited ${timeoutMs} ms for ${count} "${event}", got ${seen.length}`,
        );
      }
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.waiters = this.waiters.filter((w) => w !== done);
          resolve();
        };
        const timer = setTimeout(done, left);
        this.waiters.push(done);
      });
    }
  }

  /** Sends an event and resolves with its acknowledgement. */
  ask<E extends keyof ClientToServerEvents>(
    event: E,
    payload: Parameters<ClientToServerEvents[E]>[0],
  ): Promise<any> {
    const socket = this.socket.timeout(WAIT_MS) as any;
    return socket.emitWithAck(event, payload);
  }

  close(): void {
    this.socket.disconnect();
  }
}

/** Connects a device; rejects with the server's reason on connect_error. */
export function connect(
  url: string,
  token: string | undefined,
  options: Partial<ManagerOptions & SocketOptions> = {},
): Promise<Device> {
  const socket: ChatClient = io(url, {
    auth: token === undefined ? {} : { token },
    transports: ["websocket"],
    reconnection: false,
    forceNew: true,
    timeout: WAIT_MS,
    ...options,
  });
  const device = new Device(socket);
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve(device));
    socket.once("connect_error", (error) => {
      socket.disconnect();
      reject(error);
    });
  });
}

/** Closes every device a test opened. */
export class Devices {
  private readonly open: Device[] = [];

  async connect(
    url: string,
    token: string | undefined,
    options: Partial<ManagerOptions & SocketOptions> = {},
  ): Promise<Device> {
    const device = await connect(url, token, options);
    this.open.push(device);
    return device;
  }

  closeAll(): void {
    for (const device of this.open.splice(0)) device.close();
  }
}

/** Waits a moment, for checks that something did not happen. */
export const settle = (ms = 300) =>
  new Promise((resolve) => setTimeout(resolve, ms));
