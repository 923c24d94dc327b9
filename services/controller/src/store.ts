/**
 * Where searches and the evaluation memo live: JetStream KV in production, memory in unit
 * tests. Search records are gzip-compressed JSON (a search's memo of tested candidates can
 * grow to hundreds of KB), written with optimistic concurrency (expected revision).
 */
import { EventEmitter } from 'node:events';
import { gunzipSync, gzipSync } from 'node:zlib';
import type { EvolutionState } from '@metaprune/core';
import type { ResolvedDataSplit, ResolvedEvaluationSettings } from '@metaprune/wire';
import type { KV } from '@nats-io/kv';
import type { LatencyTableRef } from './latency.js';
import type { SearchStatus } from './lifecycle.js';

export { type SearchStatus, TERMINAL } from './lifecycle.js';

/** What a search is scored against (resolved at start, fixed for the search). */
export interface SearchContext {
  pruningnetId: string;
  pruningnetVersion: number;
  /** Proto JSON of the resolved common.NetworkSpec. */
  network: unknown;
  settings: ResolvedEvaluationSettings;
  data: ResolvedDataSplit;
  maxFailures: number;
  /** The latency table of the search's latency budgets (absent without such budgets). */
  latency?: LatencyTableRef;
}

/** Everything about one search: plain JSON. */
export interface SearchRecord {
  v: 1;
  searchId: string;
  displayName: string;
  /** Proto JSON of the StartSearchRequest with defaults resolved. */
  request: unknown;
  status: SearchStatus;
  error: string;
  createTime: string;
  endTime?: string;
  ctx: SearchContext;
  state: EvolutionState;
  /** Generation (0-based) that evaluated each tested encoding, by encoding key. */
  generationOf: Record<string, number>;
  failed: number;
  rejected: number;
  memoHits: number;
  /** Wall time spent in finished generations (for the ETA). */
  activeMs: number;
}

export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

export interface StoredSearch {
  record: SearchRecord;
  revision: number;
}

export interface SearchStore {
  create(record: SearchRecord): Promise<number>;
  get(id: string): Promise<StoredSearch | undefined>;
  /** Writes if the stored revision is `revision`; throws ConflictError otherwise. */
  update(record: SearchRecord, revision: number): Promise<number>;
  list(): Promise<SearchRecord[]>;
  /** The current record, then every update, until `signal` aborts. */
  watch(id: string, signal: AbortSignal): AsyncIterable<SearchRecord>;
}

export function encodeRecord(r: SearchRecord): Uint8Array {
  return gzipSync(Buffer.from(JSON.stringify(r)));
}

export function decodeRecord(data: Uint8Array): SearchRecord {
  return JSON.parse(gunzipSync(data).toString('utf8')) as SearchRecord;
}

/** A one-consumer async queue fed by callbacks. */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  private error: unknown;

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake?.();
  }
  end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.ended) {
        if (this.error !== undefined) throw this.error;
        return;
      }
      await new Promise<void>((r) => {
        this.wake = r;
      });
      this.wake = undefined;
    }
  }
}

// ---------------------------------------------------------------------------------------

const REVISION_MISMATCH = /wrong last sequence|10071/i;

export class KvSearchStore implements SearchStore {
  constructor(private readonly kv: KV) {}

  async create(record: SearchRecord): Promise<number> {
    return this.kv.create(record.searchId, encodeRecord(record));
  }

  async get(id: string): Promise<StoredSearch | undefined> {
    if (!isKvKey(id)) return undefined;
    const e = await this.kv.get(id);
    if (e?.operation !== 'PUT') return undefined;
    return { record: decodeRecord(e.value), revision: e.revision };
  }

  async update(record: SearchRecord, revision: number): Promise<number> {
    try {
      return await this.kv.update(record.searchId, encodeRecord(record), revision);
    } catch (err) {
      if (
        err instanceof Error &&
        REVISION_MISMATCH.test(`${err.message} ${String((err as { code?: unknown }).code)}`)
      ) {
        throw new ConflictError(`search ${record.searchId} was changed concurrently`, {
          cause: err,
        });
      }
      throw err;
    }
  }

  async list(): Promise<SearchRecord[]> {
    const keys: string[] = [];
    for await (const k of await this.kv.keys()) keys.push(k);
    const out: SearchRecord[] = [];
    for (const k of keys) {
      const s = await this.get(k);
      if (s) out.push(s.record);
    }
    return out;
  }

  async *watch(id: string, signal: AbortSignal): AsyncIterable<SearchRecord> {
    if (!isKvKey(id)) return;
    const it = await this.kv.watch({ key: id });
    const stop = (): void => it.stop();
    signal.addEventListener('abort', stop, { once: true });
    try {
      for await (const e of it) {
        if (e.operation !== 'PUT') continue;
        yield decodeRecord(e.value);
      }
    } finally {
      signal.removeEventListener('abort', stop);
      it.stop();
    }
  }
}

export function isKvKey(id: string): boolean {
  return /^[-/_=.a-zA-Z0-9]+$/.test(id) && !id.startsWith('.') && !id.endsWith('.');
}

/** In-memory store for unit tests and single-process use (same semantics as KV). */
export class MemorySearchStore implements SearchStore {
  private readonly data = new Map<string, StoredSearch>();
  private readonly events = new EventEmitter();
  private seq = 0;

  constructor() {
    this.events.setMaxListeners(0);
  }

  async create(record: SearchRecord): Promise<number> {
    if (this.data.has(record.searchId)) throw new ConflictError(`${record.searchId} exists`);
    return this.put(record);
  }
  async get(id: string): Promise<StoredSearch | undefined> {
    const s = this.data.get(id);
    return s ? { record: structuredClone(s.record), revision: s.revision } : undefined;
  }
  async update(record: SearchRecord, revision: number): Promise<number> {
    const cur = this.data.get(record.searchId);
    if (!cur || cur.revision !== revision) {
      throw new ConflictError(`search ${record.searchId} was changed concurrently`);
    }
    return this.put(record);
  }
  async list(): Promise<SearchRecord[]> {
    return [...this.data.values()].map((s) => structuredClone(s.record));
  }
  async *watch(id: string, signal: AbortSignal): AsyncIterable<SearchRecord> {
    const q = new AsyncQueue<SearchRecord>();
    const on = (r: SearchRecord): void => q.push(structuredClone(r));
    this.events.on(id, on);
    const stop = (): void => q.end();
    signal.addEventListener('abort', stop, { once: true });
    const cur = this.data.get(id);
    if (cur) q.push(structuredClone(cur.record));
    try {
      yield* q;
    } finally {
      this.events.off(id, on);
      signal.removeEventListener('abort', stop);
    }
  }
  private put(record: SearchRecord): number {
    const revision = ++this.seq;
    const copy = structuredClone(record);
    this.data.set(record.searchId, { record: copy, revision });
    this.events.emit(record.searchId, copy);
    return revision;
  }
}
