import type { z } from "zod";
import type { RegisterBody } from "../contract/schemas.js";
import type { UserPublic, UserSelf } from "../contract/schemas.js";
import { AppError, notFound } from "../errors.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import type { RateLimiter } from "../cluster/rate-limit.js";
import { hashPassword, verifyPassword } from "./passwords.js";
import { isUniqueViolation } from "./prisma-errors.js";
import { userPublic, userSelf } from "./views.js";

const BAD_LOGIN = "invalid username or password";
const gone = () => new AppError("UNAUTHORIZED", "user no longer exists");

/** Makes LIKE's wildcards literal: Prisma passes them through. */
const escapeLike = (s: string) => s.replace(/[\\%_]/g, "\\$&");

/** Registration, log-in and look-ups of people. */
export class Users {
  /** Hash of a random password, checked when the user is unknown. */
  private decoy: Promise<string> | undefined;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly hashCost: number,
    /** Log-in attempts, per name and client address. */
    private readonly logins: RateLimiter,
  ) {}

  async register(input: z.output<typeof RegisterBody>): Promise<UserSelf> {
    const email = input.email.toLowerCase();
    await this.assertFree(input.name, email);
    const passwordHash = await hashPassword(input.password, this.hashCost);
    try {
      const user = await this.prisma.user.create({
        data: { name: input.name, email, passwordHash },
      });
      return userSelf(user);
    } catch (error) {
      if (isUniqueViolation(error)) {
        throw new AppError("CONFLICT", "name or email is already taken");
      }
      throw error;
    }
  }

  /**
   * The user whose email or name and password match. The answer and its
   * cost are the same whether the user exists or not. Attempts are counted
   * per name and client address, so that guessing is slow from anywhere
   * and one address cannot lock a person out everywhere.
   */
  async authenticate(
    username: string,
    password: string,
    from: string,
  ): Promise<number> {
    const candidates = await this.prisma.user.findMany({
      where: { OR: [{ email: username.toLowerCase() }, { name: username }] },
      select: { id: true, email: true, passwordHash: true },
    });
    // A name may look like someone else's email: the email wins.
    const user =
      candidates.find((u) => u.email === username.toLowerCase()) ??
      candidates[0];
    // By account, so that its name and its email share one allowance.
    const who = user ? `user:${user.id}` : `name:${username.toLowerCase()}`;
    const wait = await this.logins.consume(`${who}|${from}`);
    if (wait > 0) {
      throw new AppError(
        "RATE_LIMITED",
        "too many log-in attempts; try again later",
        undefined,
        Math.ceil(wait / 1000),
      );
    }
    this.decoy ??= hashPassword("decoy-password", this.hashCost);
    const stored = user?.passwordHash ?? (await this.decoy);
    const matches = await verifyPassword(password, stored);
    if (!user || !matches) throw new AppError("UNAUTHORIZED", BAD_LOGIN);
    return user.id;
  }

  async me(userId: number): Promise<UserSelf> {
    const user = await this.prisma.user.findUnique({ where: { id: userId } });
    if (!user) throw gone();
    return userSelf(user);
  }

  /** UNAUTHORIZED when a valid token names a user that is gone. */
  async assertActive(userId: number): Promise<void> {
    const user = await this.prisma.user.findUnique({
      where: { id: userId },
      select: { id: true },
    });
    if (!user) throw gone();
  }

  /** People whose name starts with `prefix`, ignoring case, by name. */
  async search(prefix: string, limit: number): Promise<UserPublic[]> {
    const users = await this.prisma.user.findMany({
      where: {
        name: { startsWith: escapeLike(prefix), mode: "insensitive" },
      },
      select: { id: true, name: true },
      orderBy: [{ name: "asc" }, { id: "asc" }],
      take: limit,
    });
    return users.map(userPublic);
  }

  /** Throws NOT_FOUND naming the first id that is not a user. */
  async assertExist(ids: readonly number[]): Promise<void> {
    const unique = [...new Set(ids)];
    const found = await this.prisma.user.findMany({
      where: { id: { in: unique } },
      select: { id: true },
    });
    const known = new Set(found.map((u) => u.id));
    const missing = unique.find((id) => !known.has(id));
    if (missing !== undefined) throw notFound(`user ${missing}`);
  }

  private async assertFree(name: string, email: string): Promise<void> {
    const taken = await this.prisma.user.findFirst({
      where: { OR: [{ name }, { email }] },
      select: { name: true, email: true },
    });
    if (!taken) return;
    const field = taken.name === name ? "name" : "email";
    throw new AppError("CONFLICT", `${field} is already taken`, [
      { field, message: "already taken" },
    ]);
  }
}
