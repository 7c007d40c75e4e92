/**
 * `npm run bench`: loads the chat over Socket.IO, then a bare Socket.IO
 * echo server with the same clients and rate, and prints both side by side.
 * Exits 0 when the run completed (errors are counted, not fatal), 1 when it
 * could not run.
 */
import { randomBytes } from "node:crypto";
import { baselineParticipants, startBaseline } from "./baseline.js";
import { check } from "./checks.js";
import { type BenchConfig, loadConfig } from "./config.js";
import { runLoad, type Participant } from "./load.js";
import { figures, print } from "./report.js";
import { prepare } from "./scenario.js";

const PROBE_TIMEOUT_MS = 3_000;
/** Margin for setup and checks on top of the measured phases. */
const SETUP_ALLOWANCE_MS = 180_000;

const progress = (line: string) => console.error(`bench: ${line}`);

async function probe(url: string): Promise<void> {
  try {
    const res = await fetch(`${url}/healthz`, {
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    if (!res.ok) throw new Error(`GET /healthz answered ${res.status}`);
  } catch (error) {
    const code = (error as { cause?: { code?: string } }).cause?.code;
    const reason = code ?? (error instanceof Error ? error.message : error);
    throw new Error(`cannot reach ${url}: ${String(reason)}`, {
      cause: error,
    });
  }
}

async function measure(
  participants: Participant[],
  config: BenchConfig,
  runId: string,
) {
  const result = await runLoad(participants, config, runId);
  progress(`${result.sent.length} sends done; checking`);
  return {
    figures: figures(result, participants),
    checks: await check(result, participants),
  };
}

async function baseline(config: BenchConfig, runId: string) {
  const server = await startBaseline();
  progress(`baseline: echo server on ${server.url}`);
  try {
    return await measure(
      baselineParticipants(config, server.url),
      config,
      runId,
    );
  } finally {
    await server.close();
  }
}

/** Stops a run that hangs despite every timeout below it. */
function watchdog(config: BenchConfig): void {
  const phaseMs =
    config.durationS * 1000 + config.ackTimeoutMs + config.drainMs;
  const limitMs = 2 * phaseMs + SETUP_ALLOWANCE_MS;
  setTimeout(() => {
    console.error(`bench could not finish within ${limitMs / 1000} s`);
    process.exit(1);
  }, limitMs).unref();
}

async function main(): Promise<void> {
  const config = loadConfig();
  watchdog(config);
  await Promise.all(config.urls.map(probe));
  const runId = `${Date.now().toString(36)}${randomBytes(2).toString("hex")}`;
  progress(`run ${runId}: registering ${config.users} users`);
  const participants = await prepare(config, runId);
  progress(`sending for up to ${config.durationS} s`);
  const ours = await measure(participants, config, runId);
  const base = config.baseline ? await baseline(config, runId) : undefined;
  print({ config, ours: ours.figures, checks: ours.checks, baseline: base });
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    console.error(`bench could not run: ${reason}`);
    process.exit(1);
  },
);
