import jwt from "jsonwebtoken";
import { AppError } from "../errors.js";

/** User ids are PostgreSQL integers. */
const INT_MAX = 2_147_483_647;

export interface Identity {
  userId: number;
  /** Expiry, in milliseconds since the epoch. */
  expiresAt: number;
}

/** Signs and checks the bearer tokens (HS256, subject = user id). */
export class Tokens {
  constructor(
    private readonly secret: string,
    readonly ttlSeconds: number,
  ) {}

  issue(userId: number): string {
    return jwt.sign({}, this.secret, {
      algorithm: "HS256",
      subject: String(userId),
      expiresIn: this.ttlSeconds,
    });
  }

  /** The identity in a valid token; UNAUTHORIZED for anything else. */
  verify(token: string): Identity {
    try {
      const claims = jwt.verify(token, this.secret, { algorithms: ["HS256"] });
      if (typeof claims === "string") throw new Error("bad claims");
      const userId = Number(claims.sub);
      const decimal = /^[1-9][0-9]{0,9}$/.test(claims.sub ?? "");
      if (!decimal || userId > INT_MAX || !claims.exp) {
        throw new Error("bad subject or no expiry");
      }
      return { userId, expiresAt: claims.exp * 1000 };
    } catch {
      throw new AppError("UNAUTHORIZED", "invalid or expired token");
    }
  }
}
