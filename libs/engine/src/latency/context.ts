/**
 * In-context layer measurement: every layer is timed inside whole-network forwards, so
 * its row includes what it costs *in a network* — weights that other layers pushed out of
 * the caches since the last forward, an input freshly written by the previous layer, the
 * JIT's view of a mixed op stream. Timed alone (hot caches, one op in a loop), several
 * layers came out 5-10% faster than inside forwards, and whole-network latency grew
 * faster than the sum of isolated rows (slope 1.2-1.4), which a constant cannot absorb
 * (docs/latency.md).
 *
 * One forward times every layer at one (Cin, Cout) each; which widths the forwards take
 * is an orthogonal array over the genes: with L levels (a prime at least the number of
 * grid values of any gene), forward k = (a, b) sets gene g to level (a + c_g * b) mod L,
 * where c_g is a colour that differs between the two genes of any layer. For two genes of
 * different colours the level pairs run over all L^2 combinations exactly once, so every
 * layer meets every (Cin, Cout) of its grid in L^2 forwards (961 for the full 31-value
 * grid, 121 for an 11-point grid); levels map onto a gene's grid values surjectively.
 */
import {
  channelChoices,
  channelsAt,
  coarseChoices,
  type Encoding,
  iqr,
  type LatencyGrid,
  type LatencyPlan,
  type LatencyRow,
  median,
  type Network,
  SCALE_COUNT,
  tiedChannels,
} from '@metaprune/core';
import { NetworkRunner } from './ops.js';
import type { TimingOptions } from './timing.js';

/**
 * Per forward configuration: 1 untimed forward (it creates the backend's operators, i.e.
 * packs the weights) and 5 timed ones; the second forward of a configuration was already
 * as fast as the tenth here.
 */
export const DEFAULT_CONTEXT_TIMING = Object.freeze({ warmup: 1, repeats: 5 });

export interface ContextDesign {
  /** Levels per gene (a prime). */
  readonly levels: number;
  /** Forwards needed: levels^2. */
  readonly configs: number;
  /** Colour of each gene. */
  readonly colours: readonly number[];
  /** Grid values (channel counts) of each gene, ascending. */
  readonly values: readonly (readonly number[])[];
}

function isPrime(n: number): boolean {
  if (n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** The orthogonal-array design that covers `grid` for every layer of `net`. */
export function contextDesign(net: Network, grid: LatencyGrid): ContextDesign {
  const values = net.genes.map((g) => {
    const all = channelChoices({ max: g.max, gene: g.index });
    return grid === 'full' ? all : coarseChoices(all, grid.points);
  });
  const neighbours = net.genes.map(() => new Set<number>());
  for (const l of net.layers) {
    if (tiedChannels(l) || l.in.gene === null || l.out.gene === null) continue;
    neighbours[l.in.gene]?.add(l.out.gene);
    neighbours[l.out.gene]?.add(l.in.gene);
  }
  const colours: number[] = [];
  for (const [g, near] of neighbours.entries()) {
    const used = new Set([...near].filter((h) => h < g).map((h) => colours[h] as number));
    let c = 0;
    while (used.has(c)) c++;
    colours.push(c);
  }
  let levels = Math.max(2, Math.max(...colours) + 1, ...values.map((v) => v.length));
  while (!isPrime(levels)) levels++;
  return { levels, configs: levels * levels, colours, values };
}

/** Scale id giving `channels` for a width of maximum `max` (the smallest such id). */
function scaleIdOf(max: number, channels: number): number {
  for (let s = 0; s < SCALE_COUNT; s++) if (channelsAt(max, s) === channels) return s;
  throw new Error(`no scale choice gives ${channels} channels of ${max}`);
}

/** The encoding of forward `k` of the design. */
export function designEncoding(net: Network, d: ContextDesign, k: number): Encoding {
  const a = k % d.levels;
  const b = Math.floor(k / d.levels);
  return net.genes.map((g) => {
    const vals = d.values[g.index] as readonly number[];
    const level = (a + (d.colours[g.index] as number) * b) % d.levels;
    const v = vals[Math.floor((level * vals.length) / d.levels)] as number;
    return scaleIdOf(g.max, v);
  });
}

/** One layer's timing in one forward configuration. */
export interface ContextSample {
  /** Index into `net.layers`. */
  readonly layer: number;
  readonly cin: number;
  readonly cout: number;
  /** Median over the timed forwards of that configuration. */
  readonly medianMs: number;
  readonly spreadMs: number;
  readonly repeats: number;
}

export interface MeasureInContextOptions extends TimingOptions {
  batchSize?: number;
  /** Only configurations with `k % count === index`. */
  shard?: { readonly index: number; readonly count: number };
  onProgress?: (p: { done: number; total: number; layer: string }) => void;
  signal?: AbortSignal;
}

const cpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const yieldToLoop = () => new Promise<void>((r) => setImmediate(r));

/** Configurations alive at once whose timed forwards are interleaved. */
export const CONTEXT_GROUP = 8;
/**
 * A configuration is re-measured when the spread (IQR / median) of its whole forwards is
 * above both this and 3x the median spread of all configurations.
 */
export const OUTLIER_SPREAD = 0.1;

interface ConfigTiming {
  readonly k: number;
  readonly enc: Encoding;
  /** Per timed forward, per layer, ms. */
  readonly runs: Float64Array[];
  /** Relative spread of the whole forwards. */
  readonly spread: number;
}

/**
 * Times `ks` in groups of CONTEXT_GROUP: per configuration fresh weights and `warmup`
 * untimed forwards, then `repeats` rounds over the group with one timed forward per
 * configuration each, so a swing of the machine's load spreads over all of them instead
 * of hitting whichever configuration was being measured. A forward the scheduler
 * disturbed (see `timeRuns`) is redone, up to 4 times.
 */
async function timeConfigs(
  net: Network,
  design: ContextDesign,
  ks: readonly number[],
  opts: MeasureInContextOptions,
  onConfig: () => void,
): Promise<ConfigTiming[]> {
  const warmup = opts.warmup ?? DEFAULT_CONTEXT_TIMING.warmup;
  const repeats = Math.max(1, opts.repeats ?? DEFAULT_CONTEXT_TIMING.repeats);
  const n = net.layers.length;
  const out: ConfigTiming[] = [];
  for (let g = 0; g < ks.length; g += CONTEXT_GROUP) {
    opts.signal?.throwIfAborted();
    const group = ks.slice(g, g + CONTEXT_GROUP).map((k) => {
      const enc = designEncoding(net, design, k);
      const runner = new NetworkRunner(net, enc, opts.batchSize ?? 1);
      return {
        k,
        enc,
        runner,
        x: runner.input(),
        runs: [] as Float64Array[],
        totals: [] as number[],
      };
    });
    try {
      for (const c of group) for (let i = 0; i < warmup; i++) c.runner.run(c.x);
      for (let r = 0; r < repeats; r++) {
        for (const c of group) {
          for (let attempt = 0; attempt < 4; attempt++) {
            const times = new Float64Array(n);
            const c0 = cpuMs();
            const t0 = performance.now();
            c.runner.run(c.x, times);
            const wall = performance.now() - t0;
            const clean = cpuMs() - c0 >= 0.9 * wall - 0.02;
            if (clean || attempt === 3) {
              c.runs.push(times);
              c.totals.push(wall);
              break;
            }
          }
        }
      }
    } finally {
      for (const c of group) {
        c.x.dispose();
        c.runner.dispose();
      }
    }
    for (const c of group) {
      out.push({ k: c.k, enc: c.enc, runs: c.runs, spread: iqr(c.totals) / median(c.totals) });
      onConfig();
    }
    await yieldToLoop();
  }
  return out;
}

/**
 * Times every layer inside the design's forwards on the active backend (interleaved, see
 * `timeConfigs`), then re-measures once the configurations whose forwards spread far more
 * than the others' (OUTLIER_SPREAD): on a shared machine those are the ones another
 * process disturbed.
 */
export async function measureInContext(
  net: Network,
  grid: LatencyGrid,
  opts: MeasureInContextOptions = {},
): Promise<ContextSample[]> {
  const design = contextDesign(net, grid);
  const shard = opts.shard ?? { index: 0, count: 1 };
  const ks: number[] = [];
  for (let k = shard.index; k < design.configs; k += shard.count) ks.push(k);
  let done = 0;
  const total = ks.length;
  const progress = () => {
    done++;
    opts.onProgress?.({ done, total, layer: `forward ${done}/${total}` });
  };
  const timed = await timeConfigs(net, design, ks, opts, progress);
  const typical = median(timed.map((t) => t.spread));
  const limit = Math.max(OUTLIER_SPREAD, 3 * typical);
  const outliers = timed.filter((t) => t.spread > limit).map((t) => t.k);
  if (outliers.length > 0 && outliers.length < timed.length / 2) {
    const again = await timeConfigs(net, design, outliers, opts, () => {});
    const byK = new Map(again.map((t) => [t.k, t]));
    for (const [i, t] of timed.entries()) {
      const r = byK.get(t.k);
      // keep whichever measurement is tighter
      if (r && r.spread < t.spread) timed[i] = r;
    }
  }
  const out: ContextSample[] = [];
  for (const t of timed) {
    for (const [i, l] of net.layers.entries()) {
      const s = t.runs.map((x) => x[i] as number);
      const cin = l.in.gene === null ? l.in.max : channelsAt(l.in.max, t.enc[l.in.gene] as number);
      const cout = tiedChannels(l)
        ? cin
        : l.out.gene === null
          ? l.out.max
          : channelsAt(l.out.max, t.enc[l.out.gene] as number);
      out.push({ layer: i, cin, cout, medianMs: median(s), spreadMs: iqr(s), repeats: s.length });
    }
  }
  return out;
}

/**
 * The table rows of `plan` from in-context samples: per (layer, Cin, Cout) the median of
 * the configurations that met it (usually one; several where scale choices share a
 * channel count), the spread of those, the timed forwards behind them.
 */
export function rowsFromContext(plan: LatencyPlan, samples: Iterable<ContextSample>): LatencyRow[] {
  const byKey = new Map<string, ContextSample[]>();
  for (const s of samples) {
    const key = `${s.layer}|${s.cin}|${s.cout}`;
    let list = byKey.get(key);
    if (!list) {
      list = [];
      byKey.set(key, list);
    }
    list.push(s);
  }
  const rows: LatencyRow[] = [];
  for (const u of plan.units) {
    const l = u.layer;
    for (const cin of u.cins) {
      for (const cout of tiedChannels(l) ? [cin] : u.couts) {
        const list = byKey.get(`${u.index}|${cin}|${cout}`);
        if (!list?.length) {
          throw new Error(
            `no in-context measurement of layer ${l.name} at cin ${cin} cout ${cout}`,
          );
        }
        const medians = list.map((s) => s.medianMs);
        rows.push({
          layer: l.name,
          kind: l.kind,
          kernel: l.kernel,
          stride: l.stride,
          inSize: l.inSize,
          cin,
          cout,
          medianMs: median(medians),
          spreadMs: list.length > 1 ? iqr(medians) : (list[0] as ContextSample).spreadMs,
          repeats: list.reduce((a, s) => a + s.repeats, 0),
        });
      }
    }
  }
  return rows;
}

/** For tests and docs: does the design meet every grid point of every layer? */
export function designCovers(net: Network, plan: LatencyPlan, d: ContextDesign): boolean {
  const seen = new Set<string>();
  for (let k = 0; k < d.configs; k++) {
    const enc = designEncoding(net, d, k);
    for (const [i, l] of net.layers.entries()) {
      const cin = l.in.gene === null ? l.in.max : channelsAt(l.in.max, enc[l.in.gene] as number);
      const cout = tiedChannels(l)
        ? cin
        : l.out.gene === null
          ? l.out.max
          : channelsAt(l.out.max, enc[l.out.gene] as number);
      seen.add(`${i}|${cin}|${cout}`);
    }
  }
  return plan.units.every((u) =>
    u.cins.every((cin) =>
      (tiedChannels(u.layer) ? [cin] : u.couts).every((cout) =>
        seen.has(`${u.index}|${cin}|${cout}`),
      ),
    ),
  );
}
