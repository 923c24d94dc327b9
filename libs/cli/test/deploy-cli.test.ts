/**
 * `metaprune convert` and `metaprune latency --model` as users run them (the built CLI in
 * a real process) on a real model of docs/results: the inference form predicts the same,
 * its metadata records the table's prediction (checked against core's predictor) and the
 * delivered latency; bad input gets one line and exit 2.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildNetwork, LatencyPredictor, type LatencyTable } from '@metaprune/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

const root = join(import.meta.dirname, '..', '..', '..');
const run = runCli;
const MODEL = join(root, 'docs/results/models/mobilenetv2-w0.5/metapruning-25pct');
const dir = mkdtempSync(join(tmpdir(), 'metaprune-deploy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A tiny table (2x2 grid, seconds): right network, not a usable table. */
async function table(width: number, file: string): Promise<LatencyTable> {
  const r = await run(
    'profile',
    ...['--network', 'mobilenetv2', '--preset', 'small', '--width', String(width)],
    ...['--dataset', 'fashion-mnist', '--device', 't', '--grid', '2', '--fit', '1'],
    ...['--repeats', '1', '--warmup', '0', '--warmup-ms', '0', '--backend', 'wasm', '--out', file],
  );
  expect(r.code, r.err).toBe(0);
  return JSON.parse(readFileSync(file, 'utf8')) as LatencyTable;
}

describe('metaprune convert / latency --model', () => {
  const out = join(dir, 'inference');
  let t: LatencyTable;
  beforeAll(async () => {
    t = await table(0.5, join(dir, 't.json'));
  }, 60_000);

  it('convert writes the inference form, checks it and records predicted + delivered latency', async () => {
    const r = await run(
      'convert',
      ...['--model', MODEL, '--out', out, '--check-images', '300', '--latency-runs', '5'],
      ...['--table', join(dir, 't.json'), '--json'],
    );
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.check).toMatchObject({ images: 300, top1Mismatches: 0 });
    expect(j.check.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    const json = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8'));
    expect(json.format).toBe('graph-model');
    const meta = json.userDefinedMetadata;
    expect(meta.form).toBe('inference');
    expect(meta.runtime).toMatchObject({ library: '@tensorflow/tfjs', imports: [] });
    const want = new LatencyPredictor(buildNetwork(meta.spec), t).predict(meta.encoding);
    expect(meta.latency.predicted_ms).toBeCloseTo(want, 9);
    expect(meta.latency.delivered_ms).toBeGreaterThan(0);
    expect(meta.latency.engine_ms).toBeGreaterThan(0);
    expect(meta.latency.runtime).toBe('tfjs-wasm');
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    expect(readme).toMatch(
      /import \* as tf from '@tensorflow\/tfjs';\nconst model = await tf\.loadGraphModel\(/,
    );
  });

  it('latency --model prints predicted (from the metadata), engine and delivered', async () => {
    const r = await run('latency', '--model', out, '--repeats', '5', '--warmup-ms', '0', '--json');
    expect(r.code, r.err).toBe(0);
    const j = JSON.parse(r.out);
    const meta = JSON.parse(readFileSync(join(out, 'model.json'), 'utf8')).userDefinedMetadata;
    expect(j).toMatchObject({
      form: 'inference',
      runtime: 'tfjs-wasm',
      predicted_from: 'metadata',
    });
    expect(j.predicted_ms).toBe(meta.latency.predicted_ms);
    expect(j.delivered_ms).toBeGreaterThan(0);
    expect(j.engine_ms).toBeGreaterThan(0);
  });

  it.each([
    [['latency', '--model', join(dir, 'nowhere')], /--model: .*nowhere is not an exported model/],
    [['latency', '--model', out, '--runtime', 'tfjs-node'], /--runtime tfjs-node cannot run here/],
    [['latency', '--model', out, '--runtime', 'onnx'], /--runtime: unknown value "onnx"/],
    [['convert', '--model', out, '--out', join(dir, 'again')], /already in the inference form/],
  ])('bad input %j exits 2 with one line', async (args, message) => {
    const r = await run(...(args as string[]));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message as RegExp);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });

  it('a table for another network is refused in one line', async () => {
    await table(0.25, join(dir, 't25.json'));
    const r = await run(
      'latency',
      '--model',
      out,
      '--table',
      join(dir, 't25.json'),
      '--repeats',
      '1',
    );
    expect(r.code).toBe(2);
    expect(r.err).toMatch(/the table is for mobilenetv2.*0\.25.*the model is mobilenetv2.*0\.5/);
    expect(r.err.trim().split('\n')).toHaveLength(1);
  });
});
