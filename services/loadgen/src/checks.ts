/**
 * Correctness, counted rather than asserted: exactly-once delivery of every
 * acknowledged message, gap-free seq per chat for every client (after
 * catching up from history), and, for the product, stored history.
 */
import type { Message } from "@windi/chat/dist/contract/schemas.js";
import type { Api } from "./api.js";
import type { LoadResult, Participant, Received, Sent } from "./load.js";

const PAGE = 100;

export interface Checks {
  /** (acked message, member socket) pairs with no message:new. */
  deliveries_missing: number;
  /** Pairs with more than one message:new. */
  deliveries_duplicated: number;
  /** A seq a socket received twice in one chat. */
  seq_duplicates: number;
  /** A seq received after a higher one of the same chat. */
  seq_out_of_order: number;
  /** Seqs a socket had not received live by the end of the run. */
  seq_gaps_live: number;
  /** Seqs still missing after GET /history?after= (product only). */
  seq_gaps_after_catch_up: number;
  /** Seqs of 1..last missing from a chat's stored history. */
  history_gaps: number | null;
  /** Acked messages not in history under their acked id and seq. */
  acked_not_in_history: number | null;
  /** Stored messages of this run whose send was not acked ok. */
  stored_without_ack: number | null;
  /** History requests that failed (their seqs count as missing). */
  history_read_errors: number;
}

/** The history checks of a target without history (the baseline). */
const NO_HISTORY = {
  history_gaps: null,
  acked_not_in_history: null,
  stored_without_ack: null,
};

/** Reads history pages, counting failures instead of throwing. */
class HistoryReader {
  failures = 0;

  /** Every node's URL: a read whose node died is retried on the others. */
  constructor(private readonly urls: string[]) {}

  /** Every message of a chat after `after`, page by page, bounded. */
  async after(
    api: Api,
    chatId: number,
    after: number,
    maxPages: number,
  ): Promise<Message[]> {
    const others = this.urls.filter((url) => url !== api.url);
    for (const via of [api, ...others.map((url) => api.at(url))]) {
      const rows = await this.read(via, chatId, after, maxPages);
      if (rows) return rows;
    }
    this.failures++;
    return [];
  }

  private async read(
    api: Api,
    chatId: number,
    after: number,
    maxPages: number,
  ): Promise<Message[] | undefined> {
    const all: Message[] = [];
    try {
      for (let page = 0; page < maxPages; page++) {
        const from = all.at(-1)?.seq ?? after;
        const path = `/history/${chatId}?after=${from}&limit=${PAGE}`;
        const rows = await api.get<Message[]>(path);
        all.push(...rows);
        if (rows.length < PAGE) break;
      }
      return all;
    } catch {
      return undefined;
    }
  }
}

function deliveryCounts(received: Received[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const r of received) {
    if (r.clientId) counts.set(r.clientId, (counts.get(r.clientId) ?? 0) + 1);
  }
  return counts;
}

function checkDeliveries(result: LoadResult, participants: Participant[]) {
  let missing = 0;
  let duplicated = 0;
  const counts = result.received.map(deliveryCounts);
  for (const s of result.sent.filter((s) => s.message)) {
    participants.forEach((p, i) => {
      if (p.chatId !== s.chatId) return;
      const n = counts[i]?.get(s.clientId) ?? 0;
      if (n === 0) missing++;
      if (n > 1) duplicated++;
    });
  }
  return { deliveries_missing: missing, deliveries_duplicated: duplicated };
}

function seqOrder(seqs: number[]) {
  let outOfOrder = 0;
  let highest = 0;
  for (const seq of seqs) {
    if (seq < highest) outOfOrder++;
    highest = Math.max(highest, seq);
  }
  return { duplicates: seqs.length - new Set(seqs).size, outOfOrder };
}

function missingUpTo(last: number, seen: Set<number>): number[] {
  const missing: number[] = [];
  for (let seq = 1; seq <= last; seq++) if (!seen.has(seq)) missing.push(seq);
  return missing;
}

/** The highest seq known per chat: acked, received or stored. */
function lastSeqs(result: LoadResult, stored: Map<number, Message[]>) {
  const last = new Map<number, number>();
  const see = (chatId: number, seq: number) =>
    last.set(chatId, Math.max(last.get(chatId) ?? 0, seq));
  for (const s of result.sent) if (s.message) see(s.chatId, s.message.seq);
  for (const r of result.received.flat()) see(r.chatId, r.seq);
  for (const [chatId, rows] of stored) for (const m of rows) see(chatId, m.seq);
  return last;
}

async function checkSeqs(
  result: LoadResult,
  participants: Participant[],
  last: Map<number, number>,
  history: HistoryReader,
) {
  const tally = { dup: 0, order: 0, live: 0, after: 0 };
  for (const [i, p] of participants.entries()) {
    const seqs = (result.received[i] ?? [])
      .filter((r) => r.chatId === p.chatId)
      .map((r) => r.seq);
    const order = seqOrder(seqs);
    tally.dup += order.duplicates;
    tally.order += order.outOfOrder;
    const lastSeq = last.get(p.chatId) ?? 0;
    const seen = new Set(seqs);
    const missing = missingUpTo(lastSeq, seen);
    tally.live += missing.length;
    if (missing.length > 0 && p.api) {
      const pages = Math.ceil(lastSeq / PAGE) + 1;
      const from = (missing[0] ?? 1) - 1;
      const caught = await history.after(p.api, p.chatId, from, pages);
      for (const m of caught) seen.add(m.seq);
    }
    tally.after += missingUpTo(lastSeq, seen).length;
  }
  return {
    seq_duplicates: tally.dup,
    seq_out_of_order: tally.order,
    seq_gaps_live: tally.live,
    seq_gaps_after_catch_up: tally.after,
  };
}

/** Each chat's stored history, read by one of its members. */
async function readHistories(
  participants: Participant[],
  sent: Sent[],
  history: HistoryReader,
) {
  const stored = new Map<number, Message[]>();
  for (const p of participants) {
    if (!p.api || stored.has(p.chatId)) continue;
    const sends = sent.filter((s) => s.chatId === p.chatId).length;
    const pages = Math.ceil(sends / PAGE) + 2;
    stored.set(p.chatId, await history.after(p.api, p.chatId, 0, pages));
  }
  return stored;
}

function checkHistory(sent: Sent[], stored: Map<number, Message[]>) {
  let gaps = 0;
  const byChatSeq = new Map<string, Message>();
  for (const [chatId, rows] of stored) {
    const seqs = new Set(rows.map((m) => m.seq));
    gaps += missingUpTo(rows.at(-1)?.seq ?? 0, seqs).length;
    for (const m of rows) byChatSeq.set(`${chatId}:${m.seq}`, m);
  }
  const acked = sent.filter((s) => s.message);
  const ackedIds = new Set(acked.map((s) => s.clientId));
  const notStored = acked.filter((s) => {
    const row = byChatSeq.get(`${s.chatId}:${s.message?.seq}`);
    return row?.id !== s.message?.id;
  }).length;
  const ours = new Set(sent.map((s) => s.clientId));
  const unacked = [...byChatSeq.values()].filter(
    (m) => m.client_id && ours.has(m.client_id) && !ackedIds.has(m.client_id),
  ).length;
  return {
    history_gaps: gaps,
    acked_not_in_history: notStored,
    stored_without_ack: unacked,
  };
}

/** Runs every check; history ones only where participants have an Api. */
export async function check(
  result: LoadResult,
  participants: Participant[],
): Promise<Checks> {
  const urls = participants.flatMap((p) => (p.api ? [p.api.url] : []));
  const history = new HistoryReader([...new Set(urls)]);
  const stored = await readHistories(participants, result.sent, history);
  const last = lastSeqs(result, stored);
  const seqs = await checkSeqs(result, participants, last, history);
  return {
    ...checkDeliveries(result, participants),
    ...seqs,
    ...(stored.size > 0 ? checkHistory(result.sent, stored) : NO_HISTORY),
    history_read_errors: history.failures,
  };
}
