/**
 * `metaprune train --remote` against a real weight generator (in-process, real gRPC on
 * 127.0.0.1:0, real nats-server, real training in its child process).
 */
import { join } from 'node:path';
import { createLogger } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer, tempDir } from '@metaprune/testkit';
import { startWeightGenerator, type WeightGeneratorHandle } from '@metaprune/weight-generator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainRemote } from '../src/commands/train-remote.js';
import { UsageError } from '../src/errors.js';

describe('metaprune train --remote', () => {
  const tmp = tempDir('cli-train-remote-');
  let nats: NatsServerHandle;
  let wg: WeightGeneratorHandle;

  beforeAll(async () => {
    nats = await startNatsServer();
    wg = await startWeightGenerator({
      port: 0,
      natsUrl: [nats.url],
      checkpointRoot: join(tmp.path, 'checkpoints'),
      exportRoot: join(tmp.path, 'exports'),
      trainWorkers: 1,
      logger: createLogger({ service: 'weight-generator', level: 'warn' }),
    });
  });
  afterAll(async () => {
    await wg?.shutdown();
    await nats?.stop();
    await tmp.remove();
  });

  const base = () => [
    '--remote',
    '--network',
    'mobilenetv2',
    '--preset',
    'small',
    '--width',
    '0.1',
    '--dataset',
    'fashion-mnist',
    '--weightgen',
    wg.address,
  ];

  it('--json trains through the weight generator and prints {"pruningnet":ID,"version":N,...}', async () => {
    const lines: string[] = [];
    const log = console.log;
    console.log = (...args: unknown[]) => lines.push(args.join(' '));
    let code: number;
    try {
      code = await trainRemote([
        ...base(),
        '--epochs',
        '1',
        '--batch-size',
        '32',
        '--max-steps',
        '2',
        '--val-images',
        '500',
        '--json',
      ]);
    } finally {
      console.log = log;
    }
    expect(code).toBe(0);
    expect(lines).toHaveLength(1);
    const out = JSON.parse(lines[0]!) as Record<string, unknown>;
    expect(out).toMatchObject({ version: 1, state: 'succeeded', epochs: 1 });
    expect(out['pruningnet']).toMatch(/^pn-/);
    expect((await wg.store.versions(out['pruningnet'] as string)).length).toBe(1);
  });

  it('a value the service refuses is a usage error naming the field', async () => {
    const err = await trainRemote([...base(), '--dataset', 'nope']).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(/config\.dataset/);
  });

  it('an unreachable service is a clear error', async () => {
    const err = await trainRemote([...base(), '--weightgen', '127.0.0.1:1']).catch(
      (e: unknown) => e,
    );
    expect((err as Error).message).toMatch(/weight generator at 127\.0\.0\.1:1 is unavailable/);
  });
});
