import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { profileCommandFor } from '@metaprune/controller';
import {
  buildNetwork,
  LatencyPredictor,
  type LatencyTable,
  networkFingerprint,
} from '@metaprune/core';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from './run-cli.js';

// The CLI as users run it: the built entry point in a real process.
const root = join(import.meta.dirname, '..', '..', '..');
const cli = join(root, 'libs', 'cli', 'dist', 'main.js');
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};
// For commands that run for many seconds (see run-cli.ts).
const runAsync = runCli;

describe('metaprune CLI', () => {
  it('flops --json prints one object with network, preset, macs and params', () => {
    const r = run(
      'flops',
      '--network',
      'resnet50',
      '--preset',
      'imagenet',
      '--uniform',
      '0.5',
      '--json',
    );
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j).toMatchObject({ network: 'resnet50', preset: 'imagenet' });
    expect(j.macs).toBeGreaterThan(1.07e9);
    expect(j.macs).toBeLessThan(1.12e9);
    expect(j.params).toBeGreaterThan(0);
  });

  it('flops prints a per-layer table ending in the total', () => {
    const r = run('flops', '--network', 'mobilenetv1', '--width', '0.25');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/block13\.pw/);
    expect(r.out).toMatch(/41\.0\dM MACs/);
  });

  it('networks lists every family and preset', () => {
    const r = run('networks', '--json');
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out);
    expect(j.families).toEqual(['mobilenetv1', 'mobilenetv2', 'resnet50']);
    expect(j.networks).toHaveLength(6);
  });

  it.each([
    [
      ['flops', '--network', 'vgg16'],
      /network: unknown network "vgg16"; allowed mobilenetv1, mobilenetv2, resnet50/,
    ],
    [
      ['flops', '--network', 'resnet50', '--uniform', '7'],
      /--uniform: "7" is out of range; allowed 0.1..1/,
    ],
    [['flops', '--network', 'resnet50', '--encoding', '1,2,3'], /--encoding: expected 20 genes/],
    [
      ['flops', '--network', 'resnet50', '--encoding', Array(20).fill(40).join(',')],
      /--encoding\[0\]: gene "stem.out" = 40 is out of range; allowed integers 0..30/,
    ],
    [['flops', '--network', 'resnet50', '--width', 'abc'], /--width: "abc" is out of range/],
    [['flops', '--bogus'], /bogus/],
    [['frobnicate'], /unknown command "frobnicate"/],
    [
      ['search', '--pruningnet', 'p', '--max-latency-ms', '3'],
      /--device: required with --max-latency-ms/,
    ],
    [
      ['search', '--pruningnet', 'p', '--max-latency-ms', '0', '--device', 'lab'],
      /--max-latency-ms: "0" is out of range/,
    ],
    [
      ['search', '--pruningnet', 'p', '--max-mflops', '20', '--device', 'lab'],
      /--device: only used with --max-latency-ms/,
    ],
    [
      ['search', '--pruningnet', 'p', '--max-latency-ms', '3', '--device', 'my phone'],
      /--device: "my phone" must match/,
    ],
    [
      [
        'search',
        '--pruningnet',
        'p',
        '--max-latency-ms',
        '3',
        '--device',
        'lab',
        '--latency-batch',
        '0',
      ],
      /--latency-batch: "0" is out of range/,
    ],
    [['search', '--pruningnet', 'p'], /give a budget: .*--max-latency-ms L --device NAME/],
    [
      ['profile', '--network', 'mobilenetv2', '--dataset', 'mnist', '--device', 'x'],
      /--dataset: unknown value "mnist"; allowed fashion-mnist, cifar10/,
    ],
  ])('bad input %j exits 2 with one line on stderr', (args, message) => {
    const r = run(...(args as string[]));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message as RegExp);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).not.toMatch(/\s+at\s/);
  });
});

// The table a Fashion-MNIST search needs (1 input channel): the command the controller's
// FAILED_PRECONDITION prints, and `--dataset fashion-mnist`, both measure exactly that network.
describe('metaprune profile for a Fashion-MNIST PruningNet', () => {
  const fmnist = buildNetwork({
    family: 'mobilenetv2',
    preset: 'small',
    width: 0.25,
    inputChannels: 1,
  });
  // a 2x2 grid, one fit network, no warm-up: seconds, not a usable table
  const quick = ['--grid', '2', '--fit', '1', '--repeats', '1', '--warmup', '0'];
  const profile = async (args: string[], file: string) => {
    const r = await runAsync(
      'profile',
      ...args,
      ...quick,
      '--warmup-ms',
      '0',
      '--backend',
      'cpu',
      '--out',
      file,
      '--json',
    );
    expect(r.code, r.err).toBe(0);
    return {
      json: JSON.parse(r.out) as Record<string, unknown>,
      table: JSON.parse(readFileSync(file, 'utf8')) as LatencyTable,
    };
  };
  const dir = mkdtempSync(join(tmpdir(), 'metaprune-profile-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("the controller's suggested command measures the search's network", async () => {
    const cmd = profileCommandFor('t', fmnist, {
      device: 't',
      backend: '',
      batchSize: 1,
      version: 0,
    });
    expect(cmd).toContain('--input-channels 1');
    const args = cmd.replace(/^metaprune profile /, '').split(' ');
    const { json, table } = await profile(args, join(dir, 'suggested.json'));
    expect(table.network).toEqual(fmnist.spec);
    expect(table.fingerprint).toBe(networkFingerprint(fmnist));
    expect(json).toMatchObject({ input_size: 32, input_channels: 1, classes: 10 });
    // the constant of this tiny coarse table is never negative, whatever the residuals
    expect(table.constantMs).toBeGreaterThanOrEqual(0);
    expect(json['constant_ms']).toBe(Math.max(0, json['fit_median_residual_ms'] as number));
    expect(new LatencyPredictor(fmnist, table).lowerBoundMs()).toBeGreaterThan(0);
  });

  it('--dataset fashion-mnist sets 1 input channel and 10 classes; explicit flags win', async () => {
    const base = ['--device', 't', '--network', 'mobilenetv2', '--preset', 'small'];
    const a = await profile(
      [...base, '--width', '0.25', '--dataset', 'fashion-mnist'],
      join(dir, 'a'),
    );
    expect(a.table.network).toEqual(fmnist.spec);
    const b = await profile(
      [...base, '--width', '0.25', '--dataset', 'fashion-mnist', '--input-channels', '3'],
      join(dir, 'b'),
    );
    expect(b.table.network.inputChannels).toBe(3);
    expect(b.json['classes']).toBe(10);
  });
});
