/**
 * The retraining jobs of an experiment, de-duplicated: a (network, encoding) asked for by
 * several roles (a winner that is also a fidelity candidate, one uniform baseline for two
 * budgets) is retrained once; every role finds its outcome by the same key.
 */
import { join } from 'node:path';
import { type Encoding, encodingKey, type Network } from '@metaprune/core';
import { networkTag } from './compare-jobs.js';
import type { RetrainRecipe } from './config.js';
import type { RetrainJob, RetrainOutcome } from './retrain-job.js';

export class RetrainBook {
  private readonly jobs = new Map<string, RetrainJob>();
  private readonly outcomes = new Map<string, RetrainOutcome>();

  constructor(
    private readonly o: {
      recipe: RetrainRecipe;
      dataset: 'fashion-mnist';
      outDir: string;
      metadata: Record<string, unknown>;
    },
  ) {}

  /** A job's key: network and encoding, and the seed when it is not the recipe's. */
  key(net: Network, enc: Encoding, seed = this.o.recipe.seed): string {
    const base = `${networkTag(net)}|${encodingKey(enc)}`;
    return seed === this.o.recipe.seed ? base : `${base}|seed ${seed}`;
  }

  /**
   * Asks for `enc` of `net` to be retrained (with `seed` instead of the recipe's, when
   * given); returns its key. The first asker names the job.
   */
  want(
    net: Network,
    enc: Encoding,
    name: string,
    label: string,
    metadata: Record<string, unknown>,
    seed = this.o.recipe.seed,
  ): string {
    const key = this.key(net, enc, seed);
    const existing = this.jobs.get(key);
    if (existing) {
      const roles = (existing.metadata['roles'] as string[] | undefined) ?? [];
      if (typeof metadata['role'] === 'string') roles.push(metadata['role']);
      existing.metadata['roles'] = roles;
      return key;
    }
    const id = `${networkTag(net)}/${name}`;
    this.jobs.set(key, {
      id,
      label,
      spec: net.spec,
      encoding: [...enc],
      dataset: this.o.dataset,
      recipe: { ...this.o.recipe, seed },
      outDir: join(this.o.outDir, id),
      metadata: {
        ...this.o.metadata,
        ...metadata,
        seed,
        roles: typeof metadata['role'] === 'string' ? [metadata['role']] : [],
      },
    });
    return key;
  }

  pending(): RetrainJob[] {
    return [...this.jobs.entries()].filter(([k]) => !this.outcomes.has(k)).map(([, j]) => j);
  }

  record(job: RetrainJob, outcome: RetrainOutcome): void {
    const key = [...this.jobs.entries()].find(([, j]) => j.id === job.id)?.[0];
    if (key) this.outcomes.set(key, outcome);
  }

  outcome(key: string): RetrainOutcome {
    const r = this.outcomes.get(key);
    if (!r) throw new Error(`no retraining result for ${key}`);
    return r;
  }

  get size(): number {
    return this.jobs.size;
  }
}
