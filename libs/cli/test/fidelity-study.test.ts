/**
 * The fidelity study's pure parts (issue 16): candidates, the order of retraining units,
 * the analysis read from unit files (tau against an independent kendallTauB call, the race
 * replay against core's runRace), the plan, and the command's resume guard and --plan.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  buildNetwork,
  costModel,
  encodingKey,
  fullEncoding,
  kendallTauB,
  runRace,
  uniformEncoding,
} from '@metaprune/core';
import { afterAll, describe, expect, it } from 'vitest';
import { analyseStudy, replayRace } from '../src/pipeline/study/analysis.js';
import { chooseCandidates } from '../src/pipeline/study/candidates.js';
import { studyConfig } from '../src/pipeline/study/config.js';
import { formatPlan, proxyUnit, studyPlan } from '../src/pipeline/study/plan.js';
import { studySummary } from '../src/pipeline/study/report.js';
import { plannedRetrains, retrainUnitName } from '../src/pipeline/study/retrain-units.js';
import type { SearchUnit } from '../src/pipeline/study/search.js';
import { UnitStore } from '../src/pipeline/study/units.js';

const cfg = studyConfig();
const net = buildNetwork(cfg.network);
const model = costModel(net);
const fullMacs = model.cost(fullEncoding(net)).macs;
const tmp = mkdtempSync(join(tmpdir(), 'fidelity-study-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A search unit whose winners are uniform-ish encodings under each budget. */
function fakeSearch(): SearchUnit {
  const budgets = cfg.budgetFractions.map((f) => ({
    fraction: f,
    maxMacs: Math.round(f * fullMacs),
    minMacs: Math.floor(0.85 * f * fullMacs),
  }));
  const winners = budgets.map((b) => {
    let id = 0;
    while (model.cost(uniformEncoding(net, 0.1 + 0.05 * (id + 1))).macs <= b.maxMacs) id++;
    const enc = [...uniformEncoding(net, 0.1 + 0.05 * id)];
    enc[0] = 30; // not uniform: a distinct network
    const c = model.cost(enc);
    return { encoding: enc, macs: c.macs, params: c.params, top1: 0.5 };
  });
  return {
    snapshot: 12,
    proxy: 'M',
    scoredPerRung: [10],
    generations: 1,
    population: 10,
    seed: 1,
    budgets,
    winners,
    evaluated: 10,
    seconds: 1,
    evalSeconds: 1,
    history: [],
  };
}

describe('fidelity study', () => {
  const cands = chooseCandidates({
    net,
    search: fakeSearch(),
    headlineFractions: cfg.headlineFractions,
    count: cfg.candidates,
    stabilityCount: cfg.retrain.stabilityCount,
    seed: 1,
  });

  it('chooses >= 24 distinct candidates: winners, baselines, the full network, stratified random', () => {
    const c = cands.candidates;
    expect(c.length).toBeGreaterThanOrEqual(24);
    expect(new Set(c.map((x) => encodingKey(x.encoding))).size).toBe(c.length);
    expect(new Set(c.map((x) => x.id)).size).toBe(c.length);
    expect(c.filter((x) => x.headline).map((x) => x.id)).toEqual([
      'mp-12_5pct',
      'uniform-12_5pct',
      'mp-25pct',
      'uniform-25pct',
      'mp-50pct',
      'uniform-50pct',
    ]);
    for (const x of c.filter((y) => y.id.startsWith('uniform-'))) {
      const w = c.find((y) => y.id === x.id.replace('uniform', 'mp'))!;
      expect(x.macs).toBeGreaterThanOrEqual(w.macs);
    }
    // random candidates spread over the MACs range: one in each quarter at least
    const r = c.filter((x) => x.id.startsWith('random-')).map((x) => x.macs / fullMacs);
    for (const q of [0, 0.25, 0.5, 0.75]) expect(r.some((m) => m >= q && m < q + 0.25)).toBe(true);
    expect(cands.stability).toHaveLength(8);
    expect(cands.stability.slice(0, 7)).toEqual([
      ...c.filter((x) => x.headline).map((x) => x.id),
      'full',
    ]);
  });

  it('orders retraining: stability at the recipe, at twice it, headline seeds, the rest', () => {
    const p = plannedRetrains(cfg, cands);
    const E = cfg.retrain.epochs;
    expect(new Set(p.map((x) => x.name)).size).toBe(p.length);
    expect(p.slice(0, 8).every((x) => x.epochs === E && x.seed === 1)).toBe(true);
    expect(p.slice(8, 16).every((x) => x.epochs === 2 * E)).toBe(true);
    expect(p.slice(16, 28).map((x) => x.seed)).toEqual([2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3]);
    expect(p.length).toBe(cands.candidates.length + 8 + 12);
    expect(p.filter((x) => x.keepModel).length).toBe(18);
    expect(p.find((x) => x.keepModel && x.epochs !== E)).toBeUndefined();
  });

  it('analyses finished units: tau per cell, stability, headline verdicts, race replay', async () => {
    const units = new UnitStore(join(tmp, 'units'));
    units.put('candidates', cands);
    // a unit records when it finished and the load then; no temp file is left behind
    const saved = units.get<{ recorded: { at: string; loadavg: number[] } }>('candidates')!;
    expect(saved.recorded.loadavg).toHaveLength(3);
    expect(Date.parse(saved.recorded.at)).toBeGreaterThan(0);
    expect(readdirSync(join(tmp, 'units')).filter((f) => f.includes('.tmp-'))).toEqual([]);
    const ids = cands.candidates.map((c) => c.id);
    // retrained top-1 grows with MACs; proxies: noisy versions of it
    const truth = new Map(cands.candidates.map((c) => [c.id, 0.8 + (0.1 * c.macs) / fullMacs]));
    const noise = (i: number, amp: number) => amp * Math.sin(7.3 * i);
    for (const [k, id] of ids.entries()) {
      units.put(retrainUnitName(id, 1, 1), {
        candidate: id,
        test_top1: truth.get(id)! + noise(k, 0.002),
      });
    }
    const scoresOf = (amp: number) =>
      Object.fromEntries(ids.map((id, i) => [id, truth.get(id)! - 0.3 + noise(i, amp)]));
    const proxies = { S: scoresOf(0.05), M: scoresOf(0.02), L: scoresOf(0.005) };
    for (const p of cfg.proxies) {
      units.put(proxyUnit(12, p.name), {
        snapshot: 12,
        proxy: p,
        seconds: 1,
        evalSeconds: ids.length * (p.valImages / 256),
        scores: proxies[p.name as 'S' | 'M' | 'L'],
      });
    }
    for (const [h, seed, top] of [
      ['mp-25pct', 2, 0.86],
      ['mp-25pct', 3, 0.87],
      ['uniform-25pct', 2, 0.8],
      ['uniform-25pct', 3, 0.81],
    ] as const) {
      units.put(retrainUnitName(h, 1, seed), { candidate: h, test_top1: top, model: 'm' });
    }
    const a = analyseStudy(cfg, units)!;
    expect(a.retrained).toBe(ids.length);
    const m = a.fidelity.find((f) => f.proxy === 'M')!;
    const y = ids.map(
      (id) => units.get<{ test_top1: number }>(retrainUnitName(id, 1, 1))!.test_top1,
    );
    expect(m.tau).toBeCloseTo(
      kendallTauB(
        ids.map((id) => proxies.M[id]!),
        y,
      ).tau,
      12,
    );
    expect(a.fidelity.find((f) => f.proxy === 'L')!.tau!).toBeGreaterThan(m.tau! - 1e-9);
    const v = a.verdicts.find((x) => x.fraction === 0.25)!;
    const mp = [truth.get('mp-25pct')! + noise(ids.indexOf('mp-25pct'), 0.002), 0.86, 0.87];
    const un = [
      truth.get('uniform-25pct')! + noise(ids.indexOf('uniform-25pct'), 0.002),
      0.8,
      0.81,
    ];
    const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
    expect(v.gain).toBeCloseTo(mean(mp) - mean(un), 12);
    expect(a.stability.n).toBe(0);
    // the replay agrees with core's runRace on the same per-rung scores
    const rungs = cfg.proxies.map((p) => ids.map((id) => proxies[p.name as 'S' | 'M' | 'L'][id]!));
    const images = cfg.proxies.map((p) => p.valImages);
    const rep = replayRace(rungs, images, [1, 1, 1], 5, 2);
    const raced = await runRace(
      ids.length,
      images,
      async (r, sel) => sel.map((i) => rungs[r]![i]!),
      {
        k: 5,
        z: 2,
      },
    );
    expect(rep.scored).toEqual(raced.scored);
    expect(rep.key).toEqual(raced.scores.map((s, i) => 2 * raced.rung[i]! + s));
    expect(rep.scored[2]).toBeLessThan(ids.length);
    // evaluator-seconds: candidates per rung x that rung's seconds per candidate
    const perCand = cfg.proxies.map((p) => p.valImages / 256);
    const r0 = a.racing[0]!;
    expect(r0.evalSeconds).toBeCloseTo(
      r0.scored.reduce((s, n, i) => s + n * perCand[i]!, 0),
      9,
    );
    expect(r0.fullEvalSeconds).toBeCloseTo(ids.length * perCand[2]!, 9);
    // summary.json: one row per headline network and seed, model paths relative to it
    units.put('search', fakeSearch());
    const sum = studySummary(cfg, a, units, join(tmp, 'summary.json'));
    expect(sum.fidelity).toMatchObject({ candidates: ids.length, proxy: { val_images: 1024 } });
    expect(sum.fidelity.kendall_tau).toBe(m.tau);
    const mp25 = sum.rows.filter(
      (r) => r.method === 'metapruning' && r.budget_macs === Math.round(0.25 * fullMacs),
    );
    expect(mp25.map((r) => [r.seed, r.test_top1, r.model])).toEqual([
      [2, 0.86, 'units/m/model.json'],
      [3, 0.87, 'units/m/model.json'],
    ]);
    // the plan counts what is done
    const plan = studyPlan(cfg, units, cands);
    expect(plan.find((r) => r.stage.startsWith('proxy'))).toMatchObject({ done: 3, units: 9 });
    expect(formatPlan(plan)).toMatch(/expected: \d+\.\d\d h in all/);
  });

  it('the command prints the plan, writes the report, and refuses another configuration', () => {
    const cli = join(import.meta.dirname, '..', 'dist', 'main.js');
    const out = join(tmp, 'cmd', 'fidelity');
    const run = (...args: string[]) =>
      spawnSync(
        process.execPath,
        [cli, 'fidelity', '--out', out, '--work', join(tmp, 'w'), ...args],
        {
          encoding: 'utf8',
        },
      );
    const r = run('--plan');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/PruningNet \(12 x 215 steps; snapshots 1\/4\/12\)/);
    expect(readFileSync(join(out, 'README.md'), 'utf8')).toMatch(/## Plan and progress/);
    const q = run('--plan', '--quick');
    expect(q.status).toBe(2);
    expect(q.stderr.trim().split('\n').pop()).toMatch(/--out: .* another configuration/);
  });
});
