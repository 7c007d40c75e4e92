/**
 * The product side of a run: registers users with names unique to the run,
 * logs them in and puts them into group chats over REST.
 */
import type { Chat, UserSelf } from "@windi/chat/dist/contract/schemas.js";
import { Api } from "./api.js";
import type { BenchConfig } from "./config.js";
import { mapLimit } from "./limit.js";
import type { Participant } from "./load.js";

/** Registrations in flight at once: each costs the server a slow hash. */
const SETUP_CONCURRENCY = 8;
const PASSWORD = "bench-password-1234";

interface Account {
  index: number;
  id: number;
  token: string;
  api: Api;
}

async function register(
  url: string,
  name: string,
  index: number,
): Promise<Account> {
  const api = new Api(url);
  const email = `${name}@bench.example`;
  const user = await api.post<UserSelf>("/users", {
    name,
    email,
    password: PASSWORD,
  });
  const login = await api.post<{ access_token: string }>("/token", {
    username: email,
    password: PASSWORD,
  });
  const token = login.access_token;
  return { index, id: user.id, token, api: api.as(token) };
}

/**
 * The group of user `index`: users are dealt round-robin into as many
 * groups as keep each at most `groupSize`, so sizes differ by one at most.
 */
export function groupOf(index: number, config: BenchConfig): number {
  return index % groupCount(config);
}

export function groupCount(config: BenchConfig): number {
  return Math.ceil(config.users / config.groupSize);
}

function splitIntoGroups(accounts: Account[], config: BenchConfig) {
  const groups: Account[][] = Array.from(
    { length: groupCount(config) },
    () => [],
  );
  for (const account of accounts) {
    groups[groupOf(account.index, config)]?.push(account);
  }
  return groups;
}

async function createGroup(members: Account[], name: string) {
  const [owner, ...others] = members;
  if (!owner) throw new Error("empty group");
  const chat = await owner.api.post<Chat>("/chats", {
    type: "group",
    name,
    member_ids: others.map((m) => m.id),
  });
  return chat.id;
}

/** Users, logged in and in their group chats, spread over the targets. */
export async function prepare(
  config: BenchConfig,
  runId: string,
): Promise<Participant[]> {
  const indexes = Array.from({ length: config.users }, (_, i) => i);
  const accounts = await mapLimit(indexes, SETUP_CONCURRENCY, (i) =>
    register(
      config.urls[i % config.urls.length] as string,
      `b${runId}_${i}`,
      i,
    ),
  );
  const groups = splitIntoGroups(accounts, config);
  const chatIds = await mapLimit(groups, SETUP_CONCURRENCY, (members) =>
    createGroup(members, `bench ${runId} ${members[0]?.index ?? 0}`),
  );
  return groups.flatMap((members, g) =>
    members.map((account) => ({
      index: account.index,
      url: account.api.url,
      auth: { token: account.token },
      chatId: chatIds[g] as number,
      api: account.api,
    })),
  );
}
