/**
 * Loaded PruningNets per checkpoint version, least recently used evicted first. A version
 * is loaded once even under concurrent requests, and disposed only when no request uses it.
 */
import { type Logger, nullLogger } from '@metaprune/runtime';
import type { StoredVersion } from './store.js';
import type { LoadedPruningNet, WeightEngine } from './types.js';

interface Entry {
  key: string;
  loading: Promise<LoadedPruningNet>;
  refs: number;
  evicted: boolean;
}

export class PruningNetCache {
  private readonly entries = new Map<string, Entry>();
  private readonly logger: Logger;

  constructor(
    private readonly engine: WeightEngine,
    private readonly capacity: number,
    logger: Logger = nullLogger,
  ) {
    this.logger = logger;
  }

  /** Runs `fn` with the loaded PruningNet of a (verified) version. */
  async use<T>(v: StoredVersion, fn: (pn: LoadedPruningNet) => Promise<T>): Promise<T> {
    // the manifest digest is part of the key: a rewritten version is never served stale
    const key = `${v.dir}#${v.manifest.digest}`;
    let entry = this.entries.get(key);
    if (entry) {
      this.entries.delete(key); // move to the most recently used end
      this.entries.set(key, entry);
    } else {
      const started = Date.now();
      entry = {
        key,
        loading: this.engine.load(v.dir, v.manifest.meta.config).then((pn) => {
          this.logger.info('PruningNet loaded', {
            pruningnet: v.pruningnetId,
            version: v.version,
            ms: Date.now() - started,
          });
          return pn;
        }),
        refs: 0,
        evicted: false,
      };
      this.entries.set(key, entry);
      entry.loading.catch(() => {
        if (this.entries.get(key) === entry) this.entries.delete(key);
      });
      this.evict();
    }
    entry.refs++;
    try {
      return await fn(await entry.loading);
    } finally {
      entry.refs--;
      if (entry.evicted && entry.refs === 0) this.dispose(entry);
    }
  }

  private evict(): void {
    while (this.entries.size > this.capacity) {
      const oldest = this.entries.values().next().value as Entry;
      this.entries.delete(oldest.key);
      oldest.evicted = true;
      if (oldest.refs === 0) this.dispose(oldest);
    }
  }

  private dispose(entry: Entry): void {
    entry.loading.then(
      (pn) => pn.dispose(),
      () => {},
    );
  }

  /** Disposes everything not in use (on shutdown). */
  clear(): void {
    for (const entry of this.entries.values()) {
      entry.evicted = true;
      if (entry.refs === 0) this.dispose(entry);
    }
    this.entries.clear();
  }
}
