import { AppError } from "./errors.js";

/**
 * Counts the work a node has started, so that on SIGTERM it can refuse
 * new work and wait for what is in flight.
 */
export class Lifecycle {
  private inFlight = 0;
  private idle: (() => void) | undefined;
  draining = false;

  /** Runs `work` unless the node is draining (then UNAVAILABLE). */
  async run<T>(work: () => Promise<T>): Promise<T> {
    if (this.draining) {
      throw new AppError("UNAVAILABLE", "this node is shutting down");
    }
    this.inFlight += 1;
    try {
      return await work();
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) this.idle?.();
    }
  }

  /** Stops new work; resolves when running work ends or after `ms`. */
  drain(ms: number): Promise<void> {
    this.draining = true;
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.idle = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }
}
