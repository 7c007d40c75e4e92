import jwt from "jsonwebtoken";
import { AppError } from "../errors.js";

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
      if (!Number.isSafeInteger(userId) || userId <= 0 || !claims.exp) {
        throw new Error("bad subject");
      }
      return { userId, expiresAt: claims.exp * 1000 };
    } catch {
      throw new AppError("UNAUTHORIZED", "invalid or expired token");
    }
  }
}
