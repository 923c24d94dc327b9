/**
 * The pure parts of the pipeline: budgets and uniform baselines, fidelity candidates, the
 * noise threshold of the report, SVG ticks and escaping.
 */
import { buildNetwork, costModel, MAX_SCALE_ID } from '@metaprune/core';
import { describe, expect, it } from 'vitest';
import { BUDGET_BAND, macsBudgets, uniformAt, uniformAtLeast } from '../src/pipeline/budgets.js';
import { stratifiedRandom } from '../src/pipeline/fidelity.js';
import { noise2 } from '../src/pipeline/report.js';
import { barChart, esc, ticks, xyChart } from '../src/pipeline/svg.js';

const net = buildNetwork({
  family: 'mobilenetv2',
  preset: 'small',
  width: 0.5,
  inputChannels: 1,
  numClasses: 10,
});
const model = costModel(net);
const full = model.cost(net.genes.map(() => MAX_SCALE_ID)).macs;
const low = model.cost(net.genes.map(() => 0)).macs;

describe('budgets', () => {
  it('are bands below fractions of the full MACs', () => {
    const b = macsBudgets(net, [0.25, 0.5]);
    expect(b.map((x) => x.maxMacs)).toEqual([Math.round(full * 0.25), Math.round(full * 0.5)]);
    for (const x of b) expect(x.minMacs).toBe(Math.floor(x.maxMacs * (1 - BUDGET_BAND)));
    expect(() => macsBudgets(net, [0])).toThrow(RangeError);
    expect(() => macsBudgets(net, [1.5])).toThrow(RangeError);
  });

  it('the uniform baseline is the smallest uniform network with at least the MACs', () => {
    for (const target of [low, full * 0.3, full * 0.61, full - 1, full]) {
      const u = uniformAtLeast(net, target);
      expect(u.cost.macs).toBeGreaterThanOrEqual(target);
      expect(new Set(u.encoding).size).toBe(1);
      if (u.scaleId > 0) expect(uniformAt(net, u.scaleId - 1).cost.macs).toBeLessThan(target);
    }
    expect(uniformAtLeast(net, full * 2).scaleId).toBe(MAX_SCALE_ID);
  });
});

describe('fidelity candidates', () => {
  it('one per MACs bin, distinct, deterministic, avoiding the excluded', () => {
    const a = stratifiedRandom(net, 6, 7);
    expect(a).toHaveLength(6);
    expect(stratifiedRandom(net, 6, 7)).toEqual(a);
    const bins = a.map((e) =>
      Math.min(5, Math.floor(((model.cost(e).macs - low) / (full - low)) * 6)),
    );
    expect(new Set(bins).size).toBe(6);
    const b = stratifiedRandom(net, 6, 7, [a[0]!]);
    expect(b.map((e) => e.join(','))).not.toContain(a[0]!.join(','));
  });
});

describe('report helpers', () => {
  it('noise2 is two standard errors of a difference of proportions', () => {
    expect(noise2(0.5, 0.5, 100)).toBeCloseTo(2 * Math.sqrt(0.005), 12);
    expect(noise2(0.9, 0.9, 0)).toBe(Number.POSITIVE_INFINITY);
  });

  it('SVG ticks are round and cover the range; text is escaped', () => {
    expect(ticks(0, 1)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(ticks(3.2, 9.7)).toEqual([4, 6, 8]);
    expect(ticks(0, 0.07)).toEqual([0, 0.02, 0.04, 0.06]);
    expect(esc('a<b & "c">')).toBe('a&lt;b &amp; &quot;c&quot;&gt;');
    const svg = xyChart({
      title: 'x < y',
      xLabel: 'x',
      yLabel: 'y',
      series: [
        {
          name: 's',
          color: '#000',
          points: [
            [1, 2],
            [2, 3],
          ],
        },
      ],
    });
    expect(svg).toContain('<svg xmlns="http://www.w3.org/2000/svg"');
    expect(svg).toContain('x &lt; y');
    expect(svg.match(/<circle /g)).toHaveLength(2);
    const bars = barChart({
      title: 't',
      categories: ['a', 'b'],
      series: [{ name: 'u', values: [1, 2], color: '#111' }],
      yLabel: 'c',
    });
    expect(bars.match(/<rect [^>]*fill="#111"/g)).toHaveLength(3); // two bars + legend
  });
});
