import { describe, expect, it } from 'vitest';
import {
  buildNetwork,
  channelChoices,
  checkBudgetFeasible,
  costModel,
  fitLatencyConstant,
  fullEncoding,
  type LatencyGrid,
  LatencyPredictor,
  type LatencyRow,
  type LatencyTable,
  latencyCostOf,
  latencyErrorStats,
  latencyPredictor,
  latencyUnits,
  type Network,
  networkFingerprint,
  percentile,
  planLatencyTable,
  predictLatency,
  Rng,
  randomEncoding,
  tiedChannels,
  ValidationError,
  validateLatencyTable,
  widthOf,
  withinBudget,
} from '../src/index.js';

const NET = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5 });

/** A synthetic table: each row's latency a known function of (layer index, cin, cout). */
function syntheticTable(
  net: Network,
  grid: LatencyGrid,
  f: (i: number, cin: number, cout: number, depthwise: boolean) => number,
  constantMs = 0.25,
): LatencyTable {
  const plan = planLatencyTable(net, grid);
  const rows: LatencyRow[] = [];
  for (const u of plan.units) {
    const l = u.layer;
    for (const cin of u.cins) {
      for (const cout of tiedChannels(l) ? [cin] : u.couts) {
        rows.push({
          layer: l.name,
          kind: l.kind,
          kernel: l.kernel,
          stride: l.stride,
          inSize: l.inSize,
          cin,
          cout,
          medianMs: f(u.index, cin, cout, tiedChannels(l)),
          spreadMs: 0.001,
          repeats: 5,
        });
      }
    }
  }
  return {
    network: net.spec,
    fingerprint: networkFingerprint(net),
    backend: 'wasm',
    batchSize: 1,
    constantMs,
    warmupRuns: 2,
    interpolated: plan.interpolated,
    rows,
  };
}

// Irregular values (not a smooth function), so exactness cannot come from interpolation.
const bumpy = (i: number, cin: number, cout: number) =>
  0.001 * (((i * 7919 + cin * 104729 + cout * 1299709) % 1000) + 1);

function encodings(net: Network, n: number, seed = 3): number[][] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => randomEncoding(net.genes.length, rng));
}

function expectInvalid(fn: () => unknown, field: string | RegExp, message?: RegExp): void {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ValidationError);
    const v = err as ValidationError;
    if (typeof field === 'string') expect(v.field).toBe(field);
    else expect(v.field).toMatch(field);
    if (message) expect(v.message).toMatch(message);
    return;
  }
  throw new Error('expected a ValidationError');
}

describe('latency units and plans', () => {
  it('one unit per layer; residual adds, pools attributed to the right layers', () => {
    const units = latencyUnits(NET);
    expect(units.map((u) => u.layer.name)).toEqual(NET.layers.map((l) => l.name));
    const byName = new Map(units.map((u) => [u.layer.name, u]));
    // block5 (stage 3, second block) has an identity shortcut: its projection adds
    expect(byName.get('block5.project')?.addAfter).toBe(true);
    expect(byName.get('block4.project')?.addAfter).toBe(false);
    expect(byName.get('classifier.fc')?.poolBeforeSize).toBe(4);
    const resnet = latencyUnits(buildNetwork({ family: 'resnet50', preset: 'imagenet' }));
    const stem = resnet.find((u) => u.layer.name === 'stem.conv');
    expect(stem?.maxPoolAfter).toBe(true);
    // a projection shortcut is the last layer of its block: it carries the add + relu
    const proj = resnet.filter((u) => u.addAfter && u.actAfterAdd === 'relu');
    expect(proj.length).toBe(16);
  });

  it('full plan = every allowed (cin, cout); distinct signatures measured once', () => {
    const plan = planLatencyTable(NET, 'full');
    let rows = 0;
    for (const l of NET.layers) {
      const ins = channelChoices(l.in).length;
      rows += tiedChannels(l) ? ins : ins * channelChoices(l.out).length;
    }
    expect(plan.rows).toBe(rows);
    expect(plan.interpolated).toBe(false);
    expect(plan.measurements).toBeLessThan(plan.rows);
    const coarse = planLatencyTable(NET, { points: 4 });
    expect(coarse.interpolated).toBe(true);
    for (const u of coarse.units) {
      expect(u.cins.length).toBeLessThanOrEqual(4);
      const all = channelChoices(u.layer.in);
      expect(u.cins[0]).toBe(all[0]);
      expect(u.cins[u.cins.length - 1]).toBe(all[all.length - 1]);
    }
    expectInvalid(() => planLatencyTable(NET, { points: 1 }), 'grid');
  });

  it("tied layers (depthwise, ResNet's mid->mid 3x3 conv) have a 1-D grid", () => {
    const resnet = buildNetwork({ family: 'resnet50', preset: 'small', width: 0.25 });
    const conv2 = resnet.layers.find((l) => l.name.endsWith('conv2'))!;
    expect(conv2.kind).toBe('conv');
    expect(tiedChannels(conv2)).toBe(true);
    const unit = planLatencyTable(resnet).units.find((u) => u.layer === conv2)!;
    expect(unit.couts).toEqual(unit.cins);
    const table = syntheticTable(resnet, { points: 4 }, bumpy);
    validateLatencyTable(resnet, table);
    const p = new LatencyPredictor(resnet, table);
    for (const enc of encodings(resnet, 20)) {
      const term = p.explain(enc).layers.find((x) => x.layer === conv2.name)!;
      expect(term.cout).toBe(term.cin);
    }
    const i = table.rows.findIndex((r) => r.layer === conv2.name);
    const bad = {
      ...table,
      rows: table.rows.map((r, k) => (k === i ? { ...r, cout: table.rows[i + 1]!.cin } : r)),
    };
    expectInvalid(
      () => validateLatencyTable(resnet, bad),
      `table.rows[${i}].cout`,
      /cout must equal cin/,
    );
  });

  it('fingerprints tell network shapes apart', () => {
    expect(networkFingerprint(NET)).toBe(
      networkFingerprint(buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5 })),
    );
    const others = [
      buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.75 }),
      buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5, inputSize: 28 }),
      buildNetwork({ family: 'mobilenetv1', preset: 'small', width: 0.5 }),
    ].map(networkFingerprint);
    expect(new Set([networkFingerprint(NET), ...others]).size).toBe(4);
  });
});

describe('prediction', () => {
  const table = syntheticTable(NET, 'full', bumpy);

  it('equals the sum of the table rows of the candidate, in layer order, plus the constant — exactly', () => {
    const rowOf = new Map(table.rows.map((r) => [`${r.layer}|${r.cin}|${r.cout}`, r.medianMs]));
    const p = new LatencyPredictor(NET, table);
    for (const enc of [...encodings(NET, 50), fullEncoding(NET), NET.genes.map(() => 0)]) {
      let sum = 0;
      for (const l of NET.layers) {
        const cin = widthOf(l.in, enc);
        const cout = tiedChannels(l) ? cin : widthOf(l.out, enc);
        const v = rowOf.get(`${l.name}|${cin}|${cout}`);
        expect(v).toBeDefined();
        sum += v as number;
      }
      expect(p.predict(enc)).toBe(sum + table.constantMs);
      expect(p.layerSumMs(enc)).toBe(sum);
      const explained = predictLatency(NET, table, enc);
      expect(explained.predictedMs).toBe(sum + table.constantMs);
      expect(explained.layers.map((x) => x.layer)).toEqual(NET.layers.map((l) => l.name));
    }
  });

  it('interpolates bilinearly on a coarse grid (exact for a bilinear cost)', () => {
    const bilinear = (i: number, cin: number, cout: number, dw: boolean) =>
      0.002 + 1e-5 * (i + 1) * cin * (dw ? 1 : cout) + 1e-4 * cin;
    const coarse = syntheticTable(NET, { points: 5 }, bilinear);
    const full = syntheticTable(NET, 'full', bilinear);
    const pc = new LatencyPredictor(NET, coarse);
    const pf = new LatencyPredictor(NET, full);
    for (const enc of encodings(NET, 30)) {
      expect(pc.predict(enc)).toBeCloseTo(pf.predict(enc), 9);
    }
    // depthwise rows are 1-D: linear in cin between grid points
    const dw = NET.layers.find((l) => l.kind === 'depthwise' && l.in.gene !== null)!;
    const e = encodings(NET, 1, 9)[0]!;
    const term = pc.explain(e).layers.find((x) => x.layer === dw.name)!;
    expect(term.cout).toBe(term.cin);
  });

  it('bounds every candidate; compiled predictor and cache', () => {
    const p = latencyPredictor(NET, table);
    expect(latencyPredictor(NET, table)).toBe(p);
    const lo = p.lowerBoundMs();
    const hi = p.upperBoundMs();
    for (const enc of encodings(NET, 200)) {
      const v = p.predict(enc);
      expect(v).toBeGreaterThanOrEqual(lo);
      expect(v).toBeLessThanOrEqual(hi);
    }
    expect(p.withConstant(1).predict(fullEncoding(NET)) - 1).toBeCloseTo(
      p.layerSumMs(fullEncoding(NET)),
      12,
    );
    expectInvalid(() => p.predictChecked([1, 2, 3]), 'encoding');
  });

  it('gives the search a costOf with latency, rejected at generation time like MACs', () => {
    const p = new LatencyPredictor(NET, table);
    const costOf = latencyCostOf(p);
    const enc = encodings(NET, 1)[0]!;
    const c = costOf(enc);
    expect(c.macs).toBe(costModel(NET).macs(enc));
    expect(c.latencyMs).toBe(p.predict(enc));
    expect(withinBudget(c, { maxLatencyMs: c.latencyMs! })).toBe(true);
    expect(withinBudget(c, { maxLatencyMs: c.latencyMs! - 1e-9 })).toBe(false);
    expect(withinBudget(c, { maxLatencyMs: c.latencyMs!, maxMacs: c.macs - 1 })).toBe(false);
    const lo = { ...costModel(NET).cost(NET.genes.map(() => 0)), latencyMs: p.lowerBoundMs() };
    const hi = { ...costModel(NET).cost(fullEncoding(NET)), latencyMs: p.upperBoundMs() };
    expect(() => checkBudgetFeasible({ maxLatencyMs: p.lowerBoundMs() / 2 }, lo, hi)).toThrow(
      /cannot be met/,
    );
    checkBudgetFeasible({ maxLatencyMs: p.predict(enc) }, lo, hi);
  });
});

describe('table validation', () => {
  const good = syntheticTable(NET, 'full', bumpy);
  const withRow = (i: number, patch: Partial<LatencyRow>): LatencyTable => ({
    ...good,
    rows: good.rows.map((r, k) => (k === i ? { ...r, ...patch } : r)),
  });

  it('accepts a well-formed full table and a coarse one', () => {
    validateLatencyTable(NET, good);
    validateLatencyTable(NET, syntheticTable(NET, { points: 3 }, bumpy));
  });

  it('names the bad row and field', () => {
    expectInvalid(
      () => validateLatencyTable(NET, withRow(7, { medianMs: -1 })),
      'table.rows[7].medianMs',
    );
    expectInvalid(
      () => validateLatencyTable(NET, withRow(8, { medianMs: Number.NaN })),
      'table.rows[8].medianMs',
    );
    expectInvalid(
      () => validateLatencyTable(NET, withRow(9, { spreadMs: Number.POSITIVE_INFINITY })),
      'table.rows[9].spreadMs',
    );
    expectInvalid(
      () => validateLatencyTable(NET, withRow(3, { repeats: 0 })),
      'table.rows[3].repeats',
    );
    expectInvalid(
      () => validateLatencyTable(NET, withRow(4, { cin: 10_000 })),
      'table.rows[4].cin',
    );
    expectInvalid(
      () => validateLatencyTable(NET, withRow(5, { layer: 'nope' })),
      'table.rows[5].layer',
    );
    expectInvalid(
      () => validateLatencyTable(NET, withRow(6, { kind: 'depthwise' })),
      'table.rows[6].kind',
      /another network shape/,
    );
    expectInvalid(
      () => validateLatencyTable(NET, withRow(2, { stride: 2 })),
      'table.rows[2].stride',
    );
    const dup = { ...good, rows: [...good.rows, good.rows[10]!] };
    expectInvalid(
      () => validateLatencyTable(NET, dup),
      `table.rows[${good.rows.length}]`,
      /duplicate of rows\[10\]/,
    );
  });

  it('requires a full grid per layer and every layer', () => {
    const missingPoint = { ...good, rows: good.rows.filter((_, i) => i !== 40) };
    expectInvalid(() => validateLatencyTable(NET, missingPoint), 'table.rows', /is missing|lacks/);
    const noHead = { ...good, rows: good.rows.filter((r) => r.layer !== 'head.conv') };
    expectInvalid(
      () => validateLatencyTable(NET, noHead),
      'table.rows',
      /no rows for layer head.conv/,
    );
    // a coarse grid not marked interpolated is refused
    const coarse = syntheticTable(NET, { points: 3 }, bumpy);
    expectInvalid(
      () => validateLatencyTable(NET, { ...coarse, interpolated: false }),
      'table.rows',
      /not marked interpolated/,
    );
  });

  it('refuses a table for another network shape', () => {
    const other = buildNetwork({ family: 'mobilenetv1', preset: 'small', width: 0.5 });
    const foreign = syntheticTable(other, 'full', bumpy);
    expectInvalid(() => validateLatencyTable(NET, foreign), 'table.network', /mobilenetv1/);
    // same spec claimed, rows of the other network: the fingerprint gives it away
    expectInvalid(
      () => validateLatencyTable(NET, { ...foreign, network: NET.spec }),
      'table.fingerprint',
      /another network shape/,
    );
    // right fingerprint, rows of another network: the first foreign row is named
    const bad = { ...foreign, network: NET.spec, fingerprint: networkFingerprint(NET) };
    expectInvalid(() => validateLatencyTable(NET, bad), /^table\.rows\[0\]\./);
  });

  it('checks table-level fields', () => {
    expectInvalid(() => validateLatencyTable(NET, { ...good, batchSize: 0 }), 'table.batchSize');
    expectInvalid(() => validateLatencyTable(NET, { ...good, backend: '' }), 'table.backend');
    expectInvalid(
      () => validateLatencyTable(NET, { ...good, constantMs: Number.NaN }),
      'table.constantMs',
    );
    expectInvalid(() => validateLatencyTable(NET, { ...good, rows: [] }), 'table.rows');
  });
});

describe('fitting and error statistics', () => {
  it('constant = median of (measured - layer sum)', () => {
    expect(
      fitLatencyConstant([
        { measuredMs: 2, layerSumMs: 1.5 },
        { measuredMs: 3, layerSumMs: 2.8 },
        { measuredMs: 10, layerSumMs: 1 },
      ]),
    ).toBe(0.5);
    expect(() => fitLatencyConstant([])).toThrow();
  });

  // Hand-worked: the constant is the c >= 0 minimising sum |measured - layerSum - c|.
  it('never fits a negative constant: the constrained fit clips the median residual at 0', () => {
    // residuals -0.25, -0.125, +0.0625 (dyadic, exact): median -0.125 -> constrained 0
    expect(
      fitLatencyConstant([
        { measuredMs: 1, layerSumMs: 1.25 },
        { measuredMs: 2, layerSumMs: 2.125 },
        { measuredMs: 1.5625, layerSumMs: 1.5 },
      ]),
    ).toBe(0);
    // every residual negative (rows sum to more than the forward): still 0
    expect(
      fitLatencyConstant([
        { measuredMs: 1, layerSumMs: 4 },
        { measuredMs: 2, layerSumMs: 3 },
      ]),
    ).toBe(0);
    // a true constant of exactly 0.25 ms (measured = sum + 0.25) is recovered exactly
    expect(
      fitLatencyConstant(
        [0.5, 1.75, 3, 2.25].map((sum) => ({ measuredMs: sum + 0.25, layerSumMs: sum })),
      ),
    ).toBe(0.25);
    // an even count: the midpoint of the middle residuals, 0.0625 and 0.1875 -> 0.125
    expect(
      fitLatencyConstant([
        { measuredMs: 1.0625, layerSumMs: 1 },
        { measuredMs: 2.1875, layerSumMs: 2 },
        { measuredMs: 3.5, layerSumMs: 3 },
        { measuredMs: 4, layerSumMs: 4.5 },
      ]),
    ).toBe(0.125);
  });

  it('the fitted constant minimises the absolute deviations over c >= 0 (brute force)', () => {
    const rng = new Rng(17);
    for (let trial = 0; trial < 40; trial++) {
      // residuals centred anywhere from clearly negative to clearly positive
      const centre = -3 + 6 * rng.next();
      const n = 1 + Math.floor(rng.next() * 12);
      const samples = Array.from({ length: n }, () => {
        const layerSumMs = 1 + 3 * rng.next();
        return { layerSumMs, measuredMs: layerSumMs + centre + 0.5 * (rng.next() - 0.5) };
      });
      const loss = (c: number) =>
        samples.reduce((s, x) => s + Math.abs(x.measuredMs - x.layerSumMs - c), 0);
      const c = fitLatencyConstant(samples);
      expect(c).toBeGreaterThanOrEqual(0);
      let best = Number.POSITIVE_INFINITY;
      for (let k = 0; k <= 4000; k++) best = Math.min(best, loss(k * 0.001));
      // no feasible c on a 1 µs grid does better (up to the grid step times n)
      expect(loss(c)).toBeLessThanOrEqual(best + 1e-12);
      expect(loss(c)).toBeGreaterThanOrEqual(best - 0.001 * n);
    }
  });

  it('a table whose rows overstate the layers predicts >= 0 with a positive lower bound', () => {
    // every row 0.05 ms: any candidate's layer sum is 0.05 x (number of layers), by hand
    const L = NET.layers.length;
    expect(L).toBe(53);
    const flat = syntheticTable(NET, 'full', () => 0.05, 0);
    // the forwards really take 0.04 ms per layer + 0.3 ms overhead: residual 0.3 - 0.01 L < 0
    const measured = 0.04 * L + 0.3;
    const fit = encodings(NET, 5).map(() => ({ measuredMs: measured, layerSumMs: 0.05 * L }));
    expect(measured - 0.05 * L).toBeCloseTo(-0.23, 12);
    const c = fitLatencyConstant(fit);
    expect(c).toBe(0);
    const p = new LatencyPredictor(NET, { ...flat, constantMs: c });
    for (const enc of encodings(NET, 20)) expect(p.predict(enc)).toBeCloseTo(0.05 * L, 12);
    expect(p.lowerBoundMs()).toBeCloseTo(2.65, 12);
    // a table fitted before the constraint (constant -2 ms, more than some candidates' sum):
    // read as 0, so predictions and the lower bound stay the non-negative layer sums
    const old = new LatencyPredictor(NET, { ...flat, constantMs: -2 });
    expect(old.constantMs).toBe(0);
    expect(old.lowerBoundMs()).toBeCloseTo(2.65, 12);
    const tiny = syntheticTable(NET, 'full', bumpy, -3);
    const pt = new LatencyPredictor(NET, tiny);
    expect(pt.lowerBoundMs()).toBeGreaterThan(0);
    for (const enc of encodings(NET, 50)) {
      expect(pt.predict(enc)).toBe(pt.layerSumMs(enc));
      expect(pt.predict(enc)).toBeGreaterThan(0);
      expect(pt.explain(enc).predictedMs).toBeGreaterThan(0);
    }
  });

  it('reports median / p95 / max absolute relative error', () => {
    const s = latencyErrorStats([
      { predictedMs: 1.1, measuredMs: 1 },
      { predictedMs: 0.9, measuredMs: 1 },
      { predictedMs: 2, measuredMs: 2 },
      { predictedMs: 1.5, measuredMs: 1 },
    ]);
    expect(s.encodings).toBe(4);
    expect(s.medianAbsErrorPct).toBeCloseTo(10, 9);
    expect(s.maxAbsErrorPct).toBeCloseTo(50, 9);
    expect(s.p95AbsErrorPct).toBeCloseTo(percentile([10, 10, 0, 50], 95), 9);
    expect(percentile([1, 2, 3, 4, 5], 50)).toBe(3);
    expect(percentile([1, 2], 95)).toBeCloseTo(1.95, 12);
  });
});
