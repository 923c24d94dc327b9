import { buildNetwork, costModel, MAX_SCALE_ID } from '@metaprune/core';
import { common, controller } from '@metaprune/proto';
import { describe, expect, it } from 'vitest';
import {
  budgetView,
  describeNetwork,
  progressView,
  RateMeter,
  searchDetail,
  uniformCurve,
  widthsView,
} from '../src/views.js';
import { paretoSvg, ticks, widthsSvg } from '../web/plot.js';

const SPEC = common.NetworkSpec.fromPartial({
  family: common.NetworkFamily.MOBILENET_V2,
  preset: common.NetworkPreset.SMALL,
  widthMultiplier: 0.25,
  inputSize: 32,
  inputChannels: 1,
  numClasses: 10,
});
const NET = buildNetwork({
  family: 'mobilenetv2',
  preset: 'small',
  width: 0.25,
  inputSize: 32,
  inputChannels: 1,
  numClasses: 10,
});
const model = costModel(NET);
const enc = (id: number) => NET.genes.map(() => id);
const cand = (genes: number[], top1: number, generation = 0) =>
  controller.Candidate.fromPartial({
    encoding: { genes },
    macs: model.macs(genes),
    params: model.params(genes),
    top1,
    generation,
    evaluationId: `e${top1}`,
  });

/** A finished two-budget search as the controller returns it from GetSearch. */
function finishedSearch(): controller.Search {
  const a = cand(enc(5), 0.6, 1);
  const b = cand(enc(15), 0.7, 2);
  const c = cand(enc(25), 0.75, 2);
  return controller.Search.fromPartial({
    searchId: 's1',
    request: {
      network: SPEC,
      pruningnetId: 'pn1',
      pruningnetVersion: 2,
      budgets: [
        { name: 'small', maxMacs: model.macs(enc(16)) },
        { name: 'large', maxMacs: model.macs(enc(28)) },
      ],
      evolution: { populationSize: 6, generations: 3 },
      evaluation: { recalibrationBatches: 2, batchSize: 32, validationImages: 64 },
      seed: 3,
      displayName: 'demo',
    },
    progress: {
      searchId: 's1',
      state: controller.SearchState.SUCCEEDED,
      generation: 3,
      generations: 3,
      evaluated: 14,
      best: [
        { budgetIndex: 0, budget: { name: 'small', maxMacs: model.macs(enc(16)) }, best: b },
        { budgetIndex: 1, budget: { name: 'large', maxMacs: model.macs(enc(28)) }, best: c },
      ],
    },
    paretoFront: [a, b, c],
    createTime: new Date('2025-01-01T00:00:00Z'),
    endTime: new Date('2025-01-01T00:01:00Z'),
  });
}

describe('views', () => {
  it('describes networks and budgets', () => {
    expect(describeNetwork(SPEC)).toBe('mobilenetv2/small x0.25 32x32x1, 10 classes');
    const b = budgetView(
      common.Budget.fromPartial({ maxMacs: 2_500_000, maxLatencyMs: 4, latencyDeviceId: 'd' }),
      1,
    );
    expect(b.label).toBe('MACs <= 2.50M, latency <= 4 ms');
    expect(b.name).toBe(b.label);
    expect(b.latencyDeviceId).toBe('d');
  });

  it('counts the generation in progress in the fraction done', () => {
    const p = progressView(
      controller.SearchProgress.fromPartial({
        state: controller.SearchState.RUNNING,
        generation: 1,
        generations: 4,
        generationDone: 3,
        generationSize: 6,
      }),
    );
    expect(p.state).toBe('RUNNING');
    expect(p.fraction).toBeCloseTo(1.5 / 4);
  });

  it('builds the search detail: Pareto front, winners on it, the uniform curve', () => {
    const d = searchDetail(finishedSearch(), {
      uniformTop1: new Map([
        [0, 0.4],
        [30, 0.8],
      ]),
    });
    expect(d.state).toBe('SUCCEEDED');
    expect(d.terminal).toBe(true);
    expect(d.pareto).toHaveLength(3);
    expect(d.winners.map((w) => w.paretoIndex)).toEqual([1, 2]);
    expect(d.layerCount).toBe(NET.layers.length);
    expect(d.fullMacs).toBe(model.macs(enc(MAX_SCALE_ID)));
    expect(d.uniform.length).toBeGreaterThan(10);
    expect(d.uniform.filter((u) => u.top1 !== undefined)).toHaveLength(2);
    for (let i = 1; i < d.uniform.length; i++) {
      expect(d.uniform[i]!.macs).toBeGreaterThan(d.uniform[i - 1]!.macs);
    }
    const withLatency = searchDetail(finishedSearch(), { latencyOf: (e) => e.length * 0.01 });
    expect(withLatency.pareto.every((c) => c.latencyMs === NET.genes.length * 0.01)).toBe(true);
  });

  it('compares a candidate with the uniform network of the nearest MACs, layer by layer', () => {
    const genes = NET.genes.map((_, i) => (i % 2 === 0 ? 10 : 30));
    const w = widthsView(NET, genes);
    expect(w.layers).toHaveLength(NET.layers.length);
    const curve = uniformCurve(NET);
    const nearest = Math.min(...curve.map((u) => Math.abs(u.macs - w.macs)));
    expect(Math.abs(w.uniform.macs - w.macs)).toBe(nearest);
    for (const l of w.layers) {
      expect(l.cout).toBeLessThanOrEqual(l.maxCout);
      expect(l.uniformCout).toBeLessThanOrEqual(l.maxCout);
    }
    expect(w.layers.reduce((s, l) => s + l.macs, 0)).toBe(w.macs);
    // the full network is its own uniform network
    const full = widthsView(NET, enc(30));
    expect(full.uniform.scaleId).toBe(30);
    expect(full.layers.every((l) => l.cout === l.uniformCout && l.cout === l.maxCout)).toBe(true);
  });

  it('measures a rate over a sliding window and decays to 0 when idle', () => {
    const m = new RateMeter(10_000);
    m.push(0, 0);
    m.push(1000, 5);
    m.push(2000, 10);
    expect(m.rate(2000)).toBeCloseTo(5);
    expect(m.rate(20_000)).toBe(0);
    m.push(3000, 2); // a reset
    expect(m.rate(3000)).toBe(0);
  });
});

describe('plots', () => {
  it('draws one point per Pareto candidate and one ring per winner', () => {
    const d = searchDetail(finishedSearch(), { uniformTop1: new Map([[10, 0.5]]) });
    const svg = paretoSvg(d, 'macs', d.pareto[1]!.genes);
    expect(svg.match(/<circle class="point/g)).toHaveLength(3);
    expect(svg.match(/<circle class="point selected/g)).toHaveLength(1);
    expect(svg.match(/<circle class="winner"/g)).toHaveLength(2);
    // a candidate that wins two budgets gets one ring naming both
    const both = searchDetail(
      controller.Search.fromPartial({
        ...finishedSearch(),
        progress: {
          ...finishedSearch().progress,
          best: finishedSearch().progress!.best.map((b) => ({
            ...b,
            best: finishedSearch().paretoFront[1],
          })),
        },
      }),
    );
    const one = paretoSvg(both, 'macs');
    expect(one.match(/<circle class="winner"/g)).toHaveLength(1);
    expect(one).toContain('>small, large</text>');
    expect(svg.match(/class="budget"/g)).toHaveLength(2);
    expect(svg.match(/class="uniform-point"/g)).toHaveLength(1);
    expect(svg).toContain('data-points="3"');
    // no latencies: nothing to draw on that axis
    expect(paretoSvg(d, 'latency')).toContain('data-points="0"');
  });

  it('draws one bar per layer', () => {
    const svg = widthsSvg(widthsView(NET, enc(12)));
    expect(svg.match(/class="layer-bar"/g)).toHaveLength(NET.layers.length);
  });

  it('picks round ticks', () => {
    expect(ticks(0, 1, 5)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(ticks(0.55, 0.8, 5)).toEqual([0.55, 0.6, 0.65, 0.7, 0.75, 0.8]);
  });
});
