/** Turns a run into figures, a table on stdout and one JSON line. */
import type { Checks } from "./checks.js";
import type { BenchConfig } from "./config.js";
import type { LoadResult, Participant, Sent } from "./load.js";
import { perSecond, ratio, round, summarize, type Summary } from "./stats.js";

export interface Figures {
  sent: number;
  acked: number;
  ack_ms: Summary;
  /** From send to message:new at the other members. */
  delivery_ms: Summary;
  /** Sends acknowledged with ok, per second of the run. */
  stored_per_s: number;
  /** message:new events received per second, the sender's own included. */
  deliveries_per_s: number;
  /** Failed sends by error code, plus socket incidents. */
  errors: Record<string, number>;
  loadgen_loop_delay_p99_ms: number;
}

function errorsOf(result: LoadResult): Record<string, number> {
  const errors: Record<string, number> = { ...result.incidents };
  for (const s of result.sent) {
    if (s.error) errors[s.error] = (errors[s.error] ?? 0) + 1;
  }
  return errors;
}

function deliveryLatencies(result: LoadResult, participants: Participant[]) {
  const byClientId = new Map<string, Sent>();
  for (const s of result.sent) byClientId.set(s.clientId, s);
  const latencies: number[] = [];
  result.received.forEach((events, i) => {
    const me = participants[i]?.index;
    for (const e of events) {
      const sent = e.clientId ? byClientId.get(e.clientId) : undefined;
      if (sent && sent.sender !== me) latencies.push(e.at - sent.sentAt);
    }
  });
  return latencies;
}

export function figures(
  result: LoadResult,
  participants: Participant[],
): Figures {
  const acked = result.sent.filter((s) => s.message);
  const deliveries = result.received.reduce((n, r) => n + r.length, 0);
  const span = result.endedAt - result.startedAt;
  return {
    sent: result.sent.length,
    acked: acked.length,
    ack_ms: summarize(acked.map((s) => (s.answeredAt ?? 0) - s.sentAt)),
    delivery_ms: summarize(deliveryLatencies(result, participants)),
    stored_per_s: perSecond(acked.length, span),
    deliveries_per_s: perSecond(deliveries, span),
    errors: errorsOf(result),
    loadgen_loop_delay_p99_ms: result.loopDelayP99Ms,
  };
}

export interface Report {
  config: BenchConfig;
  ours: Figures;
  checks: Checks;
  baseline?: { figures: Figures; checks: Checks } | undefined;
}

type Row = [string, number | string, (number | string)?, (number | null)?];

function latencyRows(report: Report): Row[] {
  const rows: Row[] = [];
  const base = report.baseline?.figures;
  for (const kind of ["ack_ms", "delivery_ms"] as const) {
    const label = kind === "ack_ms" ? "send->ack" : "send->delivery";
    for (const q of ["p50", "p95", "p99", "max"] as const) {
      const ours = report.ours[kind][q];
      const theirs = base?.[kind][q];
      rows.push([`${label} ${q} ms`, ours, theirs, ratio(ours, theirs)]);
    }
  }
  return rows;
}

function errorText(errors: Record<string, number>): string {
  const parts = Object.entries(errors).map(([code, n]) => `${code}=${n}`);
  return parts.length ? parts.join(" ") : "none";
}

function rows(report: Report): Row[] {
  const { ours } = report;
  const base = report.baseline?.figures;
  return [
    ...latencyRows(report),
    ["messages stored/s", ours.stored_per_s, base?.stored_per_s],
    ["deliveries/s", ours.deliveries_per_s, base?.deliveries_per_s],
    [
      "sends acked",
      `${ours.acked}/${ours.sent}`,
      base && `${base.acked}/${base.sent}`,
    ],
    [
      "loadgen loop p99 ms",
      ours.loadgen_loop_delay_p99_ms,
      base?.loadgen_loop_delay_p99_ms,
    ],
  ];
}

function cell(value: number | string | null | undefined, width: number) {
  const text =
    value === undefined || value === null
      ? "-"
      : typeof value === "number"
        ? String(round(value))
        : value;
  return text.padStart(width);
}

function checkRows(report: Report): Row[] {
  const base = report.baseline?.checks;
  return (Object.keys(report.checks) as (keyof Checks)[]).map((key) => [
    key,
    report.checks[key] ?? "-",
    base ? (base[key] ?? "n/a") : undefined,
  ]);
}

function printRows(table: Row[]): void {
  for (const [label, ours, base, r] of table) {
    const shown = r === undefined ? "" : r === null ? "-" : `${round(r)}x`;
    const line = label.padEnd(24) + cell(ours, 12) + cell(base, 12);
    console.log(`  ${line}${cell(shown, 9)}`.trimEnd());
  }
}

function ratios(report: Report): Record<string, number | null> {
  const entries = latencyRows(report).map(([label, , , r]) => [
    label.replace(/\W+/g, "_").replace(/_+$/, ""),
    r ?? null,
  ]);
  return Object.fromEntries(entries) as Record<string, number | null>;
}

/** Prints the table, then the JSON line with every figure. */
export function print(report: Report): void {
  const { config } = report;
  console.log(
    `WinDI Chat bench: ${config.users} users in groups of ` +
      `${config.groupSize}, ${config.rate} sends/s per user (at most ` +
      `${config.messagesPerUser} or ${config.durationS} s), ` +
      `targets ${config.urls.join(" ")}`,
  );
  const head = ["ours", "baseline"].map((h) => h.padStart(12)).join("");
  console.log(`  ${"".padEnd(24)}${head}${"ratio".padStart(9)}`);
  printRows(rows(report));
  console.log(`  errors, ours: ${errorText(report.ours.errors)}`);
  if (report.baseline) {
    console.log(
      `  errors, baseline: ${errorText(report.baseline.figures.errors)}`,
    );
  }
  console.log("  checks (counted)");
  printRows(checkRows(report));
  const all = { ...report, ratios: ratios(report) };
  console.log(
    JSON.stringify(all, (_, v: unknown) =>
      typeof v === "number" ? round(v) : v,
    ),
  );
}
