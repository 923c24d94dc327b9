import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

// train / evaluate / retrain as users run them: the built CLI on real Fashion-MNIST.
const root = join(import.meta.dirname, '..', '..', '..');
const cli = join(root, 'libs', 'cli', 'dist', 'main.js');
const dir = mkdtempSync(join(tmpdir(), 'metaprune-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
// Asynchronous, so the test worker stays responsive while the CLI runs for minutes.
const run = (args: string) =>
  new Promise<{ code: number | null; out: string; err: string }>((done) => {
    execFile(
      process.execPath,
      [cli, ...args.split(' ')],
      { encoding: 'utf8', env: { ...process.env, METAPRUNE_BACKEND: 'wasm' }, maxBuffer: 1 << 26 },
      (error, out, err) =>
        done({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out, err }),
    );
  });
const v2 = '--network mobilenetv2 --preset small --width 0.25 --input-channels 1';
const v1 = '--network mobilenetv1 --preset small --width 0.5 --input-channels 1';

describe('local train / evaluate / retrain', () => {
  it('trains with checkpoints, resumes, and evaluates a candidate', async () => {
    const out = join(dir, 'ck');
    const a = await run(`train ${v2} --epochs 2 --steps 4 --out ${out} --workers 0 --json`);
    expect(a.code, a.err).toBe(0);
    const first = JSON.parse(a.out);
    expect(first.position).toMatchObject({ epoch: 2, globalStep: 8 });
    expect(first.epochs).toHaveLength(2);
    // resuming a finished run continues from its last checkpoint: nothing left to train
    const b = await run(`train --resume --epochs 2 --steps 4 --out ${out} --workers 0 --json`);
    expect(b.code, b.err).toBe(0);
    expect(JSON.parse(b.out).position).toEqual(first.position);
    // changed settings cannot silently continue another run
    const c = await run(`train --resume --epochs 3 --steps 4 --out ${out} --workers 0`);
    expect(c.code).not.toBe(0);
    expect(c.err).toMatch(/cannot resume .* epochs was 2, now 3/);
    const e = await run(
      `evaluate --checkpoint ${out} --uniform 0.5 --recal-batches 2 --val-images 128 --json`,
    );
    expect(e.code, e.err).toBe(0);
    const r = JSON.parse(e.out);
    expect(r).toMatchObject({ recal_batches: 2, val_images: 128 });
    expect(r.top1).toBeGreaterThanOrEqual(0);
    expect(r.macs).toBeGreaterThan(0);
    // export: the written model, loaded back by plain tfjs on native pixels, scores the same
    // sub-val images as the PruningNet path with the same recalibration batches
    const model = join(dir, 'exported');
    const x = await run(
      `export --checkpoint ${out} --uniform 0.5 --recal-batches 2 --verify-images 256 --out ${model} --json`,
    );
    expect(x.code, x.err).toBe(0);
    const xr = JSON.parse(x.out);
    expect(xr).toMatchObject({ out: model, macs: r.macs, verify_images: 256 });
    expect(Math.abs(xr.exported_top1 - xr.pruningnet_top1)).toBeLessThanOrEqual(2 / 256);
    const meta = JSON.parse(readFileSync(join(model, 'model.json'), 'utf8')).userDefinedMetadata;
    expect(meta).toMatchObject({ network: 'mobilenetv2', macs: r.macs, recal_batches: 2 });
    expect(meta.classNames).toHaveLength(10);
    const bad = await run(`export --checkpoint ${out} --uniform 1.5 --out ${model}`);
    expect(bad.code).toBe(2);
    expect(bad.err.trim().split('\n')).toHaveLength(1);
    expect(bad.err).toMatch(/--uniform/);
  });

  it('refuses a checkpoint directory that was not written by train', async () => {
    const e = await run(`evaluate --checkpoint ${dir} --uniform 0.5`);
    expect(e.code).toBe(2);
    expect(e.err).toMatch(/--checkpoint: .* has no run.json/);
  });

  it('retrains a pruned network from scratch, reports test top-1 and exports it', async () => {
    const out = join(dir, 'model');
    const r = await run(
      `retrain ${v1} --uniform 0.25 --epochs 1 --max-train-images 4096 --batch 32 --lr 0.2 --out ${out} --json`,
    );
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.test_top1).toBeGreaterThan(0.3);
    expect(j.exported).toBe(out);
  }, 300_000);
});
