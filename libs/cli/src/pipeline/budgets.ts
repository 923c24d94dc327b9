/**
 * Budgets as fractions of the full network's MACs, and the uniform baseline of a searched
 * winner: every gene at the same scale, the smallest such network with at least the
 * winner's MACs (so the baseline never gets fewer MACs than the network it is compared to).
 */
import {
  type Cost,
  costModel,
  type Encoding,
  fullEncoding,
  MAX_SCALE_ID,
  type Network,
  SCALES,
} from '@metaprune/core';
import { common } from '@metaprune/proto';

export interface MacsBudget {
  /** e.g. "30% (13.2M)". */
  name: string;
  fraction: number;
  maxMacs: number;
  /**
   * Lower bound (`band` below the bound): the search looks for the best network *at* the
   * budget, so rows of different budgets compare different networks.
   */
  minMacs: number;
}

/** Default width of a budget's MACs band, as a fraction of its bound. */
export const BUDGET_BAND = 0.15;

export function fullCost(net: Network): Cost {
  return costModel(net).cost(fullEncoding(net));
}

/** One MACs budget per fraction of the full network, each a band [1 - band, 1] x bound. */
export function macsBudgets(
  net: Network,
  fractions: readonly number[],
  band = BUDGET_BAND,
): MacsBudget[] {
  const full = fullCost(net).macs;
  return fractions.map((f) => {
    if (!(f > 0 && f <= 1)) throw new RangeError(`budget fraction ${f} is not in (0, 1]`);
    const maxMacs = Math.round(full * f);
    return {
      name: `${Math.round(f * 100)}% (${(maxMacs / 1e6).toFixed(2)}M)`,
      fraction: f,
      maxMacs,
      minMacs: Math.floor(maxMacs * (1 - band)),
    };
  });
}

export function budgetProto(b: MacsBudget): common.Budget {
  return common.Budget.fromPartial({
    name: b.name,
    maxMacs: b.maxMacs,
    ...(b.minMacs > 0 ? { minMacs: b.minMacs } : {}),
  });
}

export interface UniformBaseline {
  /** Scale every gene takes. */
  scale: number;
  scaleId: number;
  encoding: Encoding;
  cost: Cost;
}

/** The uniform encoding with scale id `id` for every gene. */
export function uniformAt(net: Network, id: number): UniformBaseline {
  const encoding = net.genes.map(() => id);
  return {
    scale: SCALES[id] as number,
    scaleId: id,
    encoding,
    cost: costModel(net).cost(encoding),
  };
}

/** The smallest uniform network with MACs >= `macs` (the full network if none is smaller). */
export function uniformAtLeast(net: Network, macs: number): UniformBaseline {
  for (let id = 0; id <= MAX_SCALE_ID; id++) {
    const u = uniformAt(net, id);
    if (u.cost.macs >= macs) return u;
  }
  return uniformAt(net, MAX_SCALE_ID);
}
