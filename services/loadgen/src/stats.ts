/** Latency summaries and ratios. */

export interface Summary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** Nearest-rank percentile of ascending `sorted`; 0 when empty. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.ceil((q / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1] ?? 0;
}

export function summarize(values: readonly number[]): Summary {
  const sorted = [...values].sort((a, b) => a - b);
  return {
    count: sorted.length,
    p50: percentile(sorted, 50),
    p95: percentile(sorted, 95),
    p99: percentile(sorted, 99),
    max: sorted[sorted.length - 1] ?? 0,
  };
}

/** ours / baseline, or null when the baseline is zero or missing. */
export function ratio(ours: number, baseline: number | undefined) {
  return baseline ? ours / baseline : null;
}

/** Events per second over a span given in milliseconds. */
export function perSecond(events: number, spanMs: number): number {
  return spanMs > 0 ? (events * 1000) / spanMs : 0;
}

/** Rounds for printing: 2 decimals below 10, 1 below 1000, else none. */
export function round(value: number): number {
  const digits = Math.abs(value) < 10 ? 100 : Math.abs(value) < 1000 ? 10 : 1;
  return Math.round(value * digits) / digits;
}
