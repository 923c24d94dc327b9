import { execFile } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { nullLogger } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer, type TempDir, tempDir } from '@metaprune/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LatencyProfilerHandle, startLatencyProfiler } from '../src/index.js';

// `metaprune profile` / `metaprune latency` as a user runs them: the built CLI against a
// real profiler (and without one), on a tiny network with a coarse grid and few repeats.
const run = promisify(execFile);
const CLI = join(import.meta.dirname, '..', '..', '..', 'libs', 'cli', 'dist', 'main.js');
const NET = [
  '--network',
  'mobilenetv2',
  '--preset',
  'small',
  '--width',
  '0.1',
  '--input-size',
  '16',
];
const FAST = ['--grid', '3', '--repeats', '2', '--warmup', '1', '--fit', '3', '--warmup-ms', '100'];

let nats: NatsServerHandle;
let lp: LatencyProfilerHandle;
let home: TempDir;

async function cli(args: string[], env: Record<string, string> = {}) {
  const res = await run(process.execPath, [CLI, ...args], {
    env: { ...process.env, METAPRUNE_HOME: home.path, METAPRUNE_LATENCY_PROFILER: '', ...env },
    maxBuffer: 16 * 1024 * 1024,
  });
  return { out: res.stdout, err: res.stderr };
}

async function cliFails(args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await cli(args);
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
  throw new Error('expected the command to fail');
}

beforeAll(async () => {
  expect(existsSync(CLI), `${CLI} (run npm run build)`).toBe(true);
  home = tempDir('metaprune-latency-cli-');
  nats = await startNatsServer();
  lp = await startLatencyProfiler({ natsUrl: [nats.url], port: 0, logger: nullLogger });
});

afterAll(async () => {
  await lp?.shutdown();
  await nats?.stop();
  await home?.remove();
});

describe('metaprune profile / latency', () => {
  it('profiles, uploads (registering the device), validates and predicts through the profiler', async () => {
    const p = await cli([
      'profile',
      ...NET,
      ...FAST,
      '--device',
      'cli-box',
      '--validate',
      '3',
      '--profiler',
      lp.address,
      '--json',
    ]);
    const res = JSON.parse(p.out) as Record<string, unknown>;
    expect(res).toMatchObject({
      encodings: 3,
      device: 'cli-box',
      backend: 'wasm',
      version: 1,
      registered: true,
      interpolated: true,
    });
    for (const k of ['median_abs_error_pct', 'p95_abs_error_pct', 'constant_ms'])
      expect(typeof res[k]).toBe('number');
    expect(p.err).toMatch(/layers \[/); // the progress bar went to stderr
    // the token was kept, so a second upload from this machine needs no flag
    const again = JSON.parse(
      (
        await cli([
          'profile',
          ...NET,
          ...FAST,
          '--device',
          'cli-box',
          '--profiler',
          lp.address,
          '--json',
        ])
      ).out,
    ) as Record<string, unknown>;
    expect(again).toMatchObject({ version: 2, registered: false });

    const l = JSON.parse(
      (
        await cli(
          [
            'latency',
            '--device',
            'cli-box',
            '--uniform',
            '0.5',
            '--measure',
            '--repeats',
            '5',
            '--json',
          ],
          { METAPRUNE_LATENCY_PROFILER: lp.address },
        )
      ).out,
    ) as Record<string, unknown>;
    expect(l).toMatchObject({ source: 'profiler', version: 2, network: 'mobilenetv2', width: 0.1 });
    // a real but tiny, briefly warmed-up measurement: only its plumbing is asserted here
    expect(Number.isFinite(l['predicted_ms'])).toBe(true);
    expect(l['measured_ms']).toBeGreaterThan(0);
    expect(l['error_pct']).toBeCloseTo(
      (100 * ((l['predicted_ms'] as number) - (l['measured_ms'] as number))) /
        (l['measured_ms'] as number),
      9,
    );
  });

  it('writes the table to a file when no profiler answers, and predicts from it', async () => {
    const p = JSON.parse(
      (
        await cli([
          'profile',
          ...NET,
          ...FAST,
          '--device',
          'offline-box',
          '--profiler',
          '127.0.0.1:1',
          '--json',
        ])
      ).out,
    ) as Record<string, unknown>;
    expect(p['file']).toMatch(/latency\/offline-box\/mobilenetv2\.small\.w0\.1\..*\.json$/);
    expect(readdirSync(join(home.path, 'latency', 'offline-box'))).toHaveLength(1);
    const l = JSON.parse(
      (await cli(['latency', '--device', 'offline-box', '--uniform', '1', '--json'])).out,
    ) as Record<string, unknown>;
    expect(l).toMatchObject({ source: 'file', measured_ms: null });
    expect(Number.isFinite(l['predicted_ms'])).toBe(true);
  });

  it('refuses bad input with one line and exit code 2', async () => {
    const bad = await cliFails(['profile', ...NET, '--device', 'bad name']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--device/);
    const grid = await cliFails(['profile', ...NET, '--device', 'x', '--grid', '1']);
    expect(grid.code).toBe(2);
    const none = await cliFails(['latency', '--device', 'never-profiled', '--uniform', '0.5']);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/metaprune profile/);
  });
});
