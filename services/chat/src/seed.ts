import { runTool } from "./cli.js";
import { MemoryPresence } from "./cluster/presence.js";
import { MemoryRateLimiter } from "./cluster/rate-limit.js";
import { migrate } from "./db/migrate.js";
import { Chats } from "./domain/chats.js";
import { Messages } from "./domain/messages.js";
import { Users } from "./domain/users.js";

/**
 * `npm run seed`: demo people and chats, through the same domain rules as
 * the API. Running it again adds nothing.
 */
const PASSWORD = "windi-demo-1";
const PEOPLE = ["ada", "grace", "alan"] as const;
const GREETINGS = [
  "Welcome to WinDI Chat!",
  "Messages here are stored before anyone hears of them.",
  "Open this chat on two devices and watch both update.",
];

runTool(async (db, config) => {
  await migrate(db);
  const limiter = new MemoryRateLimiter({ limit: 1_000, windowMs: 1_000 });
  const users = new Users(db.prisma, config.PASSWORD_HASH_COST, limiter);
  const chats = new Chats(db.prisma, users, new MemoryPresence());
  const messages = new Messages(db.prisma, limiter);

  const ids: number[] = [];
  for (const name of PEOPLE) {
    const email = `${name}@windi.example`;
    const existing = await db.prisma.user.findUnique({ where: { email } });
    const user =
      existing ?? (await users.register({ name, email, password: PASSWORD }));
    ids.push(user.id);
  }
  const [ada, grace, alan] = ids as [number, number, number];

  const pair = await chats.create(ada, { type: "private", user_id: grace });
  const group =
    (await chats.list(ada)).find((c) => c.name === "WinDI demo") ??
    (
      await chats.create(ada, {
        type: "group",
        name: "WinDI demo",
        member_ids: [grace, alan],
      })
    ).chat;
  for (const [i, text] of GREETINGS.entries()) {
    const sender = ids[i % ids.length]!;
    await messages.send({
      chatId: group.id,
      senderId: sender,
      text,
      clientId: `seed-${i}`,
    });
  }
  await messages.send({
    chatId: pair.chat.id,
    senderId: ada,
    text: "Hi Grace, this is a private chat.",
    clientId: "seed-private",
  });

  console.log("Demo logins (POST /token with username and password):");
  for (const name of PEOPLE) {
    console.log(`  ${name} / ${name}@windi.example  password: ${PASSWORD}`);
  }
  console.log(`Chats: private ada-grace #${pair.chat.id}, group #${group.id}`);
});
