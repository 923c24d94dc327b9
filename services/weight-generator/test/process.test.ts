/**
 * The process entry (dist/main.js) with a real nats-server: bad settings exit 2; SIGTERM
 * flips health to NOT_SERVING first, pauses the running job at a checkpoint, exits 0.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { weightgen } from '@metaprune/proto';
import { type WatchStatus, waitForServing, watchHealth } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer, tempDir, waitFor } from '@metaprune/testkit';
import { NATS_NAMES, unary, watchTraining, weightGeneratorClient } from '@metaprune/wire';
import { jetstream } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeRecord } from '../src/index.js';

const MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

interface Proc {
  child: ChildProcess;
  address: string;
  stderr: string[];
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startProcess(env: Record<string, string>): Promise<Proc> {
  if (!existsSync(MAIN))
    throw new Error(`${MAIN} is missing: build the package first (npm run build)`);
  const child = spawn(process.execPath, [MAIN], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const stderr: string[] = [];
  child.stderr!.on('data', (d: Buffer) => stderr.push(d.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once('exit', (code, signal) => r({ code, signal })),
  );
  const address = await new Promise<string>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString('utf8');
      const line = out.split('\n').find((l) => l.includes('"address"'));
      if (line) resolve((JSON.parse(line) as { address: string }).address);
    });
    void exited.then(({ code }) => reject(new Error(`exited ${code}: ${stderr.join('')}`)));
  });
  await waitForServing(address, { waitMs: 30_000 });
  return { child, address, stderr, exited };
}

describe('weight-generator process', () => {
  const tmp = tempDir('wg-process-');
  let nats: NatsServerHandle;
  let proc: Proc | undefined;
  const env = () => ({
    WEIGHTGEN_PORT: '0',
    WEIGHTGEN_NATS_URL: nats.url,
    WEIGHTGEN_CHECKPOINT_ROOT: join(tmp.path, 'checkpoints'),
    WEIGHTGEN_EXPORT_ROOT: join(tmp.path, 'exports'),
    WEIGHTGEN_PROGRESS_INTERVAL: '100ms',
    WEIGHTGEN_LOG_LEVEL: 'warn',
  });

  beforeAll(async () => {
    nats = await startNatsServer();
  });
  afterAll(async () => {
    if (proc && proc.child.exitCode === null) proc.child.kill('SIGKILL');
    await nats?.stop();
    await tmp.remove();
  });

  it('rejects bad settings with exit code 2 naming the variable', async () => {
    const child = spawn(process.execPath, [MAIN], {
      env: { ...process.env, WEIGHTGEN_PORT: 'abc' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (d: Buffer) => {
      err += d.toString('utf8');
    });
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    expect(code).toBe(2);
    expect(err).toContain('WEIGHTGEN_PORT');
  });

  it('SIGKILL mid-training: the restarted service resumes the job from its last version', async () => {
    proc = await startProcess(env());
    let client = weightGeneratorClient(proc.address);
    const started = await unary(client, client.startTraining, {
      config: weightgen.TrainingConfig.fromPartial({
        network: { family: 2, preset: 2, widthMultiplier: 0.1 },
        dataset: 'fashion-mnist',
        epochs: 4,
        batchSize: 32,
        maxStepsPerEpoch: 3,
        validationImages: 500,
      }),
      displayName: '',
      resumePruningnetId: '',
    });
    await waitFor(
      async () =>
        (await unary(client, client.getTraining, { jobId: started.jobId })).job!.latestVersion >= 1,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    client.close();
    proc.child.kill('SIGKILL');
    await proc.exited;
    proc = await startProcess(env());
    client = weightGeneratorClient(proc.address);
    const seen: weightgen.TrainingProgress[] = [];
    for await (const m of watchTraining(client, started.jobId)) seen.push(m.progress!);
    expect(seen.at(-1)!.state).toBe(weightgen.TrainingState.SUCCEEDED);
    // it did not start over: every epoch was published exactly once (a fresh start would
    // have trained epoch 1 again as a fifth version)
    const job = (await unary(client, client.getTraining, { jobId: started.jobId })).job!;
    expect(job.latestVersion).toBe(4);
    const versions = await unary(
      client,
      client.listPruningNets,
      weightgen.ListPruningNetsRequest.fromPartial({ pruningnetId: started.pruningnetId }),
    );
    expect(versions.pruningnets.map((p) => p.epochsTrained).sort()).toEqual([1, 2, 3, 4]);
    client.close();
    proc.child.kill('SIGTERM');
    expect((await proc.exited).code).toBe(0);
  });

  it('SIGTERM: health NOT_SERVING first, the running job pauses at a checkpoint, exit 0', async () => {
    proc = await startProcess(env());
    const client = weightGeneratorClient(proc.address);
    const started = await unary(client, client.startTraining, {
      config: weightgen.TrainingConfig.fromPartial({
        network: { family: 2, preset: 2, widthMultiplier: 0.1 },
        dataset: 'fashion-mnist',
        epochs: 20,
        batchSize: 32,
        maxStepsPerEpoch: 4,
        validationImages: 500,
      }),
      displayName: '',
      resumePruningnetId: '',
    });
    await waitFor(
      async () =>
        (await unary(client, client.getTraining, { jobId: started.jobId })).job!.progress!.step >=
        1,
      { timeoutMs: 60_000, intervalMs: 50 },
    );
    client.close();
    const statuses: WatchStatus[] = [];
    const stopWatch = watchHealth(proc.address, (s) => statuses.push(s));
    await waitFor(() => statuses.length > 0);
    proc.child.kill('SIGTERM');
    const { code } = await proc.exited;
    stopWatch();
    expect(code).toBe(0);
    expect(statuses[0]).toBe('SERVING');
    expect(statuses).toContain('NOT_SERVING');
    const nc = await connect({ servers: nats.url });
    try {
      const kv = await new Kvm(jetstream(nc)).open(NATS_NAMES.trainingBucket);
      const { job } = decodeRecord((await kv.get(started.jobId))!.value);
      expect(job.progress!.state).toBe(weightgen.TrainingState.PAUSED);
    } finally {
      await nc.close();
    }
  });
});
