/**
 * Latency lookup tables (DESIGN 1.7): per layer of a network, the measured latency of the
 * layer at each (Cin, Cout) it can take in the search space. Plain data, no tensor library:
 * the engine measures them, the latency profiler stores them, the controller predicts from
 * them.
 *
 * What a row times (the "unit" of a layer, see {@link latencyUnits}): exactly the ops an
 * inference forward issues for that layer, with batch norm folded into the conv bias —
 * `conv`/`depthwise` + bias + activation; plus, for the layer that ends a residual block,
 * the residual add and the activation after it; plus, for the classifier, the global
 * average pool before it; plus, for ResNet's stem, the 3x3/2 max pool after it. The rest of
 * a forward (input hand-over, reading the result back) is the table's fitted constant.
 */
import { ValidationError } from '../errors.js';
import { resolveSpec, sameSpec } from '../networks/registry.js';
import type {
  Activation,
  Layer,
  LayerKind,
  Network,
  NetworkSpec,
  Width,
} from '../networks/types.js';
import { channelsAt, SCALE_COUNT } from '../scales.js';

/** One measured entry: a layer's latency at one (Cin, Cout). */
export interface LatencyRow {
  /** Core layer name, e.g. `block3.expand`. */
  readonly layer: string;
  /** Shape of the layer, checked against the network on validation. */
  readonly kind: LayerKind;
  readonly kernel: number;
  readonly stride: number;
  readonly inSize: number;
  /** Input channels. */
  readonly cin: number;
  /** Output channels; equal to `cin` for depthwise and other tied layers (one channel dim). */
  readonly cout: number;
  /** Median latency of one run of the layer's unit over one batch, milliseconds. */
  readonly medianMs: number;
  /** Interquartile range of the timed repeats, milliseconds. */
  readonly spreadMs: number;
  /** Timed repeats behind the median. */
  readonly repeats: number;
}

/** A device's latency table for one (network, backend, batch size). */
export interface LatencyTable {
  /** The network the rows belong to (family, preset, width, input, classes, ...). */
  readonly network: NetworkSpec;
  /** {@link networkFingerprint} of that network: a table for another shape is refused. */
  readonly fingerprint: string;
  /** tfjs backend measured: `wasm`, `cpu`, `tensorflow`, `tensorflow-gpu`. */
  readonly backend: string;
  /** Images per measured forward pass. */
  readonly batchSize: number;
  /**
   * Fitted constant added to the sum of layer latencies, milliseconds: the forward's fixed
   * overhead, >= 0 as fitted by `fitLatencyConstant`. Tables fitted before that was enforced
   * may hold a negative value; the predictor reads it as 0.
   */
  readonly constantMs: number;
  /** Untimed runs before the timed repeats, per entry. */
  readonly warmupRuns: number;
  /** True when rows cover a coarse (Cin, Cout) grid and values in between are interpolated. */
  readonly interpolated: boolean;
  readonly rows: readonly LatencyRow[];
  /** ISO time the measurement finished. */
  readonly measuredAt?: string;
  /** Device name or id the table was measured on (informational). */
  readonly device?: string;
  /** Version assigned by the latency profiler (informational). */
  readonly version?: number;
}

/** Grid over which a table is measured: every allowed (Cin, Cout), or K points per axis. */
export type LatencyGrid = 'full' | { readonly points: number };

/** Limits a table must respect (also enforced by the profiler service). */
export const LATENCY_LIMITS = Object.freeze({
  maxRows: 1_000_000,
  maxMs: 1e6,
  maxBatchSize: 4096,
  maxBackendLength: 32,
  minGridPoints: 2,
});

/** What a layer's row times besides the layer itself (see the module comment). */
export interface LatencyUnit {
  /** Index into `net.layers`. */
  readonly index: number;
  readonly layer: Layer;
  /** Residual add after this layer (it ends a block with a shortcut). */
  readonly addAfter: boolean;
  /** Activation after that add. */
  readonly actAfterAdd: Activation;
  /** Global average pool before the layer: the spatial size pooled (0 when none). */
  readonly poolBeforeSize: number;
  /** 3x3/2 max pool after the layer (ResNet's stem on ImageNet). */
  readonly maxPoolAfter: boolean;
  /** Every layer with the same signature times the same ops; measured once, copied. */
  readonly signature: string;
}

/**
 * True when a layer's output width is its input width in every candidate: depthwise
 * layers, and convs whose input and output are the same gene (ResNet's 3x3 bottleneck
 * conv). Their rows form a 1-D grid with `cout = cin`.
 */
export function tiedChannels(l: Layer): boolean {
  return l.kind === 'depthwise' || (l.in.gene !== null && l.in.gene === l.out.gene);
}

/** The distinct channel counts a width can take over the 31 scale choices, ascending. */
export function channelChoices(w: Width): number[] {
  if (w.gene === null) return [w.max];
  const set = new Set<number>();
  for (let s = 0; s < SCALE_COUNT; s++) set.add(channelsAt(w.max, s));
  return [...set].sort((a, b) => a - b);
}

/** K values spread evenly (by rank) over `values`, always including the first and last. */
export function coarseChoices(values: readonly number[], points: number): number[] {
  if (values.length <= points) return [...values];
  const out = new Set<number>();
  for (let i = 0; i < points; i++) {
    out.add(values[Math.round((i * (values.length - 1)) / (points - 1))] as number);
  }
  return [...out].sort((a, b) => a - b);
}

/** The measured units of a network, one per layer, in `net.layers` order. */
export function latencyUnits(net: Network): LatencyUnit[] {
  const index = new Map<Layer, number>();
  for (const [i, l] of net.layers.entries()) index.set(l, i);
  const units: LatencyUnit[] = [];
  let size = net.spec.inputSize;
  for (const block of net.blocks) {
    const own = [...block.layers, ...(typeof block.shortcut === 'object' ? [block.shortcut] : [])];
    const last = own[own.length - 1];
    for (const layer of own) {
      const addAfter = block.shortcut !== 'none' && layer === last;
      const poolBeforeSize =
        block.poolBefore === 'global-avg' && layer === block.layers[0] ? size : 0;
      const maxPoolAfter = block.poolAfter === 'max3x3s2' && layer === last;
      const actAfterAdd = addAfter ? block.actAfterAdd : 'none';
      const signature = [
        layer.kind,
        layer.kernel,
        layer.stride,
        layer.inSize,
        layer.in.max,
        layer.in.gene === null ? 'f' : 'g',
        layer.out.max,
        layer.out.gene === null ? 'f' : 'g',
        layer.act,
        addAfter ? `add-${actAfterAdd}` : '',
        poolBeforeSize,
        maxPoolAfter ? 'maxpool' : '',
      ].join('|');
      units.push({
        index: index.get(layer) as number,
        layer,
        addAfter,
        actAfterAdd,
        poolBeforeSize,
        maxPoolAfter,
        signature,
      });
    }
    const lastMain = block.layers[block.layers.length - 1];
    if (lastMain && lastMain.kind !== 'fc') size = lastMain.outSize;
    if (block.poolAfter === 'max3x3s2') size = Math.ceil(size / 2);
  }
  return units.sort((a, b) => a.index - b.index);
}

/**
 * A short stable hash of everything that determines what a table's rows time: the spec
 * (family, preset, width, input, classes, layout) and every unit's shape. Two networks
 * with the same fingerprint accept the same tables.
 */
export function networkFingerprint(net: Network): string {
  const s = net.spec;
  const text = [
    s.family,
    s.preset,
    s.width,
    s.inputSize,
    s.inputChannels,
    s.numClasses,
    s.layout,
    s.lastStageFull,
    ...latencyUnits(net).map((u) => `${u.layer.name}:${u.signature}`),
  ].join(';');
  // FNV-1a, 64 bits as two 32-bit halves (no BigInt needed).
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
  }
  return h1.toString(16).padStart(8, '0') + h2.toString(16).padStart(8, '0');
}

/** One unit with the channel values measured for it. */
export interface PlannedUnit extends LatencyUnit {
  readonly cins: readonly number[];
  /** Equal to `cins` for tied layers (see `tiedChannels`). */
  readonly couts: readonly number[];
}

export interface LatencyPlan {
  readonly units: readonly PlannedUnit[];
  /** Rows of the table (every unit x its grid). */
  readonly rows: number;
  /** Measurements needed: rows of distinct signatures only. */
  readonly measurements: number;
  readonly interpolated: boolean;
}

function pointsOf(grid: LatencyGrid): number {
  if (grid === 'full') return Number.POSITIVE_INFINITY;
  const k = grid.points;
  if (!Number.isInteger(k) || k < LATENCY_LIMITS.minGridPoints || k > SCALE_COUNT) {
    throw new ValidationError(
      'grid',
      `${k} points per axis is out of range; allowed integers ${LATENCY_LIMITS.minGridPoints}..${SCALE_COUNT} or full`,
    );
  }
  return k;
}

/** The (Cin, Cout) grid of every layer: what a profiler measures for `grid`. */
export function planLatencyTable(net: Network, grid: LatencyGrid = 'full'): LatencyPlan {
  const k = pointsOf(grid);
  let rows = 0;
  let measurements = 0;
  let interpolated = false;
  const seen = new Set<string>();
  const units = latencyUnits(net).map((u): PlannedUnit => {
    const allIn = channelChoices(u.layer.in);
    const tied = tiedChannels(u.layer);
    const allOut = tied ? allIn : channelChoices(u.layer.out);
    const cins = Number.isFinite(k) ? coarseChoices(allIn, k) : allIn;
    const couts = tied ? cins : Number.isFinite(k) ? coarseChoices(allOut, k) : allOut;
    if (cins.length < allIn.length || couts.length < allOut.length) interpolated = true;
    const n = tied ? cins.length : cins.length * couts.length;
    rows += n;
    if (!seen.has(u.signature)) {
      seen.add(u.signature);
      measurements += n;
    }
    return { ...u, cins, couts };
  });
  return { units, rows, measurements, interpolated };
}

function describeNet(s: NetworkSpec): string {
  return `${s.family}/${s.preset} width ${s.width} input ${s.inputSize}x${s.inputSize}x${s.inputChannels} classes ${s.numClasses} layout ${s.layout}`;
}

const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): v is number =>
  typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
const isMs = (v: unknown): v is number =>
  typeof v === 'number' && Number.isFinite(v) && v >= 0 && v <= LATENCY_LIMITS.maxMs;

/**
 * Checks a table against the network it claims to describe; throws a ValidationError whose
 * field names the bad part, e.g. `table.rows[12].cout`, `table.fingerprint` (a table for
 * another network shape) or `table.rows` (a layer or grid point missing). Accepts:
 * - every row's layer exists with the same kind/kernel/stride/inSize; cin/cout are channel
 *   counts the layer can take (tied layers, e.g. depthwise: cout = cin); latencies
 *   finite in [0, 1e6] ms;
 * - per layer, the rows form a full rectangular (Cin, Cout) grid spanning the smallest and
 *   largest allowed channel counts (so prediction never extrapolates); a table not marked
 *   `interpolated` has every allowed (Cin, Cout);
 * - no duplicate (layer, cin, cout).
 */
export function validateLatencyTable(net: Network, table: LatencyTable, field = 'table'): void {
  const f = (name: string) => `${field}.${name}`;
  if (typeof table !== 'object' || table === null) throw new ValidationError(field, 'missing');
  let spec: NetworkSpec;
  try {
    spec = resolveSpec(table.network as NetworkSpec);
  } catch (err) {
    const inner = err instanceof ValidationError ? err : undefined;
    throw new ValidationError(
      f(`network${inner ? `.${inner.field}` : ''}`),
      inner ? inner.message.slice(inner.field.length + 2) : 'missing or malformed',
    );
  }
  if (!sameSpec(spec, net.spec)) {
    throw new ValidationError(
      f('network'),
      `table is for ${describeNet(spec)}, not ${describeNet(net.spec)}`,
    );
  }
  const fp = networkFingerprint(net);
  if (table.fingerprint !== fp) {
    throw new ValidationError(
      f('fingerprint'),
      `"${String(table.fingerprint)}" does not match ${describeNet(net.spec)} (fingerprint ${fp}): the table was measured for another network shape`,
    );
  }
  if (
    typeof table.backend !== 'string' ||
    table.backend.length === 0 ||
    table.backend.length > LATENCY_LIMITS.maxBackendLength
  ) {
    throw new ValidationError(
      f('backend'),
      `must be 1..${LATENCY_LIMITS.maxBackendLength} characters`,
    );
  }
  if (!isInt(table.batchSize, 1, LATENCY_LIMITS.maxBatchSize)) {
    throw new ValidationError(
      f('batchSize'),
      `${String(table.batchSize)} is out of range; allowed integers 1..${LATENCY_LIMITS.maxBatchSize}`,
    );
  }
  if (
    typeof table.constantMs !== 'number' ||
    !Number.isFinite(table.constantMs) ||
    Math.abs(table.constantMs) > LATENCY_LIMITS.maxMs
  ) {
    throw new ValidationError(
      f('constantMs'),
      `${String(table.constantMs)} must be finite within ±${LATENCY_LIMITS.maxMs}`,
    );
  }
  if (typeof table.interpolated !== 'boolean') {
    throw new ValidationError(f('interpolated'), 'must be true or false');
  }
  if (!isInt(table.warmupRuns, 0)) {
    throw new ValidationError(
      f('warmupRuns'),
      `${String(table.warmupRuns)} must be an integer >= 0`,
    );
  }
  if (!Array.isArray(table.rows) || table.rows.length === 0) {
    throw new ValidationError(f('rows'), 'a table needs at least one row per layer');
  }
  if (table.rows.length > LATENCY_LIMITS.maxRows) {
    throw new ValidationError(
      f('rows'),
      `${table.rows.length} rows; at most ${LATENCY_LIMITS.maxRows}`,
    );
  }

  const layers = new Map<string, { layer: Layer; ins: Set<number>; outs: Set<number> }>();
  for (const l of net.layers) {
    const ins = channelChoices(l.in);
    layers.set(l.name, {
      layer: l,
      ins: new Set(ins),
      outs: new Set(tiedChannels(l) ? ins : channelChoices(l.out)),
    });
  }
  const seen = new Map<string, number>();
  const grid = new Map<string, { cins: Set<number>; couts: Set<number>; n: number }>();
  table.rows.forEach((row, i) => {
    const rf = (name: string) => f(`rows[${i}]${name ? `.${name}` : ''}`);
    if (typeof row !== 'object' || row === null) throw new ValidationError(rf(''), 'not a row');
    const entry = typeof row.layer === 'string' ? layers.get(row.layer) : undefined;
    if (!entry) {
      throw new ValidationError(
        rf('layer'),
        `unknown layer ${JSON.stringify(row.layer)} in ${describeNet(net.spec)} (table for another network shape?)`,
      );
    }
    const l = entry.layer;
    const shape: [keyof LatencyRow, unknown][] = [
      ['kind', l.kind],
      ['kernel', l.kernel],
      ['stride', l.stride],
      ['inSize', l.inSize],
    ];
    for (const [key, want] of shape) {
      if (row[key] !== want) {
        throw new ValidationError(
          rf(key),
          `${JSON.stringify(row[key])} but layer ${l.name} has ${key} ${JSON.stringify(want)} (table for another network shape?)`,
        );
      }
    }
    if (!isInt(row.cin, 1) || !entry.ins.has(row.cin)) {
      throw new ValidationError(
        rf('cin'),
        `${String(row.cin)} is not a channel count layer ${l.name} can take (${[...entry.ins].join(', ')})`,
      );
    }
    if (!isInt(row.cout, 1) || !entry.outs.has(row.cout)) {
      throw new ValidationError(
        rf('cout'),
        `${String(row.cout)} is not a channel count layer ${l.name} can take (${[...entry.outs].join(', ')})`,
      );
    }
    if (tiedChannels(l) && row.cout !== row.cin) {
      throw new ValidationError(
        rf('cout'),
        `layer ${l.name} keeps its width (${l.kind === 'depthwise' ? 'depthwise' : 'input and output are one gene'}): cout must equal cin (${row.cin})`,
      );
    }
    if (!isMs(row.medianMs)) {
      throw new ValidationError(
        rf('medianMs'),
        `${String(row.medianMs)} must be a finite number of milliseconds in [0, ${LATENCY_LIMITS.maxMs}]`,
      );
    }
    if (!isMs(row.spreadMs)) {
      throw new ValidationError(
        rf('spreadMs'),
        `${String(row.spreadMs)} must be a finite number of milliseconds in [0, ${LATENCY_LIMITS.maxMs}]`,
      );
    }
    if (!isInt(row.repeats, 1)) {
      throw new ValidationError(rf('repeats'), `${String(row.repeats)} must be an integer >= 1`);
    }
    const key = `${row.layer}|${row.cin}|${row.cout}`;
    const dup = seen.get(key);
    if (dup !== undefined) {
      throw new ValidationError(
        rf(''),
        `duplicate of rows[${dup}] (${row.layer} cin ${row.cin} cout ${row.cout})`,
      );
    }
    seen.set(key, i);
    let g = grid.get(row.layer);
    if (!g) {
      g = { cins: new Set(), couts: new Set(), n: 0 };
      grid.set(row.layer, g);
    }
    g.cins.add(row.cin);
    g.couts.add(row.cout);
    g.n++;
  });

  for (const [name, entry] of layers) {
    const g = grid.get(name);
    if (!g) throw new ValidationError(f('rows'), `no rows for layer ${name}`);
    const dw = tiedChannels(entry.layer);
    const want = dw ? g.cins.size : g.cins.size * g.couts.size;
    if (g.n !== want) {
      const cins = [...g.cins].sort((a, b) => a - b);
      const couts = [...g.couts].sort((a, b) => a - b);
      let missing = '';
      outer: for (const ci of cins) {
        for (const co of couts) {
          if (!seen.has(`${name}|${ci}|${co}`)) {
            missing = `(cin ${ci}, cout ${co})`;
            break outer;
          }
        }
      }
      throw new ValidationError(
        f('rows'),
        `rows of layer ${name} do not form a full (cin, cout) grid: ${missing} is missing`,
      );
    }
    const span = (have: Set<number>, allowed: Set<number>, dim: string) => {
      const all = [...allowed];
      const lo = Math.min(...all);
      const hi = Math.max(...all);
      if (!have.has(lo) || !have.has(hi)) {
        throw new ValidationError(
          f('rows'),
          `rows of layer ${name} must include ${dim} ${lo} and ${hi} (the smallest and largest it can take)`,
        );
      }
      if (!table.interpolated && have.size !== allowed.size) {
        const miss = all.find((c) => !have.has(c));
        throw new ValidationError(
          f('rows'),
          `layer ${name} lacks ${dim} ${miss}; a table not marked interpolated needs every allowed value`,
        );
      }
    };
    span(g.cins, entry.ins, 'cin');
    if (!dw) span(g.couts, entry.outs, 'cout');
  }
}
