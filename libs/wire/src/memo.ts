import type { KV } from '@nats-io/kv';

/**
 * Evaluation memo: job id (PruningNet id + version, network, encoding, settings, data) →
 * score. Shared by every search on the same PruningNet version (the controller keeps it in
 * the KV bucket NATS_NAMES.memoBucket; pipelines may keep one in memory).
 */

export interface MemoEntry {
  top1: number;
  loss: number;
  macs: number;
  params: number;
  images: number;
  evaluatorId: string;
  time: string;
}

export interface MemoStore {
  get(jobId: string): Promise<MemoEntry | undefined>;
  put(jobId: string, entry: MemoEntry): Promise<void>;
}

export class KvMemoStore implements MemoStore {
  constructor(private readonly kv: KV) {}
  async get(jobId: string): Promise<MemoEntry | undefined> {
    const e = await this.kv.get(jobId);
    if (e?.operation !== 'PUT') return undefined;
    return e.json<MemoEntry>();
  }
  async put(jobId: string, entry: MemoEntry): Promise<void> {
    await this.kv.put(jobId, JSON.stringify(entry));
  }
}

export class MemoryMemoStore implements MemoStore {
  readonly entries = new Map<string, MemoEntry>();
  async get(jobId: string): Promise<MemoEntry | undefined> {
    return this.entries.get(jobId);
  }
  async put(jobId: string, entry: MemoEntry): Promise<void> {
    this.entries.set(jobId, entry);
  }
}
