import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

// The CLI as users run it: the built entry point in a real process.
const root = join(import.meta.dirname, '..', '..', '..');
const cli = join(root, 'libs', 'cli', 'dist', 'main.js');
const run = (...args: string[]) => {
  const r = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
};

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
  ])('bad input %j exits 2 with one line on stderr', (args, message) => {
    const r = run(...(args as string[]));
    expect(r.code).toBe(2);
    expect(r.err).toMatch(message as RegExp);
    expect(r.err.trim().split('\n')).toHaveLength(1);
    expect(r.err).not.toMatch(/\s+at\s/);
  });
});
