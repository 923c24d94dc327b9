/**
 * `metaprune demo`'s pipeline end to end with the quick configuration: a real nats-server,
 * the weight generator, the controller and two evaluator processes (startStack), a tiny
 * PruningNet trained through the weight generator, a two-budget search through the
 * controller, the uniform baselines scored by the evaluators, every winner and baseline
 * retrained in child processes and exported; then the stack is down.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { demoConfig, Reporter, runDemo } from '@metaprune/cli';
import { buildNetwork, costModel, SCALES } from '@metaprune/core';
import { afterAll, describe, expect, it } from 'vitest';

describe('the demo pipeline through the real services', () => {
  const home = mkdtempSync(join(tmpdir(), 'metaprune-demo-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('trains, searches two budgets, retrains winners and uniform baselines, exports them', async () => {
    const cfg = demoConfig(true);
    const lines: string[] = [];
    const outDir = join(home, 'out');
    const r = await runDemo({
      config: cfg,
      home,
      outDir,
      reporter: new Reporter({ write: (t) => lines.push(t), tty: false, plainEveryMs: 0 }),
    });
    const text = lines.join('');
    // every phase announced, live progress of training, search and retraining
    for (let i = 1; i <= 5; i++) expect(text).toContain(`[${i}/5]`);
    expect(text).toMatch(/train \[[#.]+\] step/);
    expect(text).toMatch(/search gen \d+\/2 \[/);
    expect(text).toMatch(/retrain \[[#.]+\] \d+\/\d+ done/);
    expect(text).toContain('stack stopped');

    const net = buildNetwork(cfg.network);
    const model = costModel(net);
    const full = model.cost(net.genes.map(() => 30)).macs;
    expect(r.rows.length).toBeGreaterThan(0);
    expect(r.rows.length).toBeLessThanOrEqual(cfg.budgetFractions.length);
    for (const row of r.rows) {
      const frac = cfg.budgetFractions.find((f) => Math.round(full * f) === row.maxMacs);
      expect(frac).toBeDefined();
      // the winner meets its budget; its MACs and params are the analytic counts
      expect(row.searched.macs).toBeLessThanOrEqual(row.maxMacs);
      expect(row.searched.macs).toBe(model.cost(row.searched.encoding).macs);
      expect(row.searched.params).toBe(model.cost(row.searched.encoding).params);
      // the uniform baseline: one scale for every gene, at least the winner's MACs, and the
      // smallest such uniform network
      expect(new Set(row.uniform.encoding).size).toBe(1);
      expect(SCALES[row.uniform.encoding[0]!]).toBeCloseTo(row.uniform.scale, 9);
      expect(row.uniform.macs).toBeGreaterThanOrEqual(row.searched.macs);
      if (row.uniform.encoding[0]! > 0) {
        const smaller = row.uniform.encoding.map((g) => g - 1);
        expect(model.cost(smaller).macs).toBeLessThan(row.searched.macs);
      }
      for (const m of [row.searched, row.uniform]) {
        expect(m.proxyTop1).toBeGreaterThanOrEqual(0);
        expect(m.proxyTop1).toBeLessThanOrEqual(1);
        expect(m.testTop1).toBeGreaterThanOrEqual(0);
        expect(m.testTop1).toBeLessThanOrEqual(1);
      }
      expect(row.delta).toBeCloseTo(row.searched.testTop1 - row.uniform.testTop1, 12);
    }

    // every exported model loads with plain tfjs and records what the table says
    const engine = await import('@metaprune/engine');
    await engine.initBackend({ prefer: 'wasm' });
    const seen = new Set<string>();
    for (const row of r.rows) {
      for (const [m, role] of [
        [row.searched, 'metapruning'],
        [row.uniform, 'uniform'],
      ] as const) {
        expect(m.exported.startsWith(outDir)).toBe(true);
        expect(existsSync(join(m.exported, 'model.json'))).toBe(true);
        if (seen.has(m.exported)) continue;
        seen.add(m.exported);
        const json = JSON.parse(readFileSync(join(m.exported, 'model.json'), 'utf8'));
        expect(json.userDefinedMetadata.test_top1).toBe(m.testTop1);
        const loaded = await engine.loadExportedModel(m.exported);
        try {
          const meta = loaded.metadata!;
          expect(meta.format).toBe(engine.METADATA_FORMAT);
          expect(meta.role).toBe(role);
          expect(meta.encoding).toEqual([...m.encoding]);
          expect(meta.macs).toBe(m.macs);
          expect(meta.params).toBe(m.params);
          expect(meta.test_top1).toBe(m.testTop1);
          expect(meta.pruningnet).toBe(r.pruningnet.pruningnetId);
          expect(meta.dataset).toBe('fashion-mnist');
          // the model runs on native 28x28x1 images and gives one score per class
          const tf = await import('@tensorflow/tfjs');
          const out = tf.tidy(
            () =>
              (loaded.model.predict(tf.zeros([2, 28, 28, 1])) as import('@tensorflow/tfjs').Tensor)
                .shape,
          );
          expect(out).toEqual([2, 10]);
        } finally {
          loaded.model.dispose();
        }
      }
    }
    expect(r.retrained.length).toBe(seen.size);
  }, 300_000);
});
