/**
 * A latency budget for the experiment: this machine's latency table for the network,
 * measured by `metaprune profile` (a child process, uploaded to the stack's latency
 * profiler), then the compiled predictor fetched back, a bound, and the uniform baseline
 * at equal or higher predicted latency.
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { type Encoding, MAX_SCALE_ID, type Network } from '@metaprune/core';
import { common } from '@metaprune/proto';
import { fetchLatencyPredictor } from '@metaprune/wire';
import { type UniformBaseline, uniformAt } from './budgets.js';
import type { Reporter } from './reporter.js';

export interface LatencyDevice {
  device: string;
  deviceId: string;
  backend: string;
  predict(enc: Encoding): number;
  /** What `metaprune profile` reported (validation error etc.). */
  profile: Record<string, unknown>;
  seconds: number;
}

export interface ProfileOptions {
  profilerAddress: string;
  net: Network;
  device: string;
  /** Points per axis of the table (interpolated in between); small = fast. */
  grid: number;
  /** Random networks fitting the constant / validating the prediction. */
  fit: number;
  validate: number;
  warmupMs: number;
  home: string;
  reporter: Reporter;
  signal?: AbortSignal;
}

function cliMain(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@metaprune/cli')), 'main.js');
}

/** Measures and uploads the table, then fetches the predictor. */
export async function profileLatency(o: ProfileOptions): Promise<LatencyDevice> {
  const t0 = Date.now();
  const s = o.net.spec;
  const args = [
    cliMain(),
    'profile',
    '--network',
    s.family,
    '--preset',
    s.preset,
    '--width',
    String(s.width),
    '--input-size',
    String(s.inputSize),
    '--input-channels',
    String(s.inputChannels),
    '--classes',
    String(s.numClasses),
    '--device',
    o.device,
    '--backend',
    'wasm',
    '--grid',
    String(o.grid),
    '--fit',
    String(o.fit),
    '--warmup-ms',
    String(o.warmupMs),
    ...(o.validate > 0 ? ['--validate', String(o.validate)] : []),
    '--profiler',
    o.profilerAddress,
    '--json',
  ];
  const profile = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const child = spawn(process.execPath, args, {
      env: { ...process.env, METAPRUNE_HOME: o.home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const kill = () => child.kill('SIGTERM');
    o.signal?.addEventListener('abort', kill, { once: true });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
    });
    child.stderr.on('data', (c: Buffer) => {
      const text = c.toString('utf8');
      err = (err + text).slice(-4000);
      const last = text
        .split(/[\r\n]/)
        .filter((l) => l.trim())
        .pop();
      if (last) o.reporter.status(`latency ${last.trim().slice(0, 150)}`);
    });
    child.once('exit', (code) => {
      o.signal?.removeEventListener('abort', kill);
      o.reporter.clear();
      if (code !== 0) {
        reject(
          new Error(
            `metaprune profile exited ${code}: ${err.trim().split('\n').slice(-3).join(' ')}`,
          ),
        );
        return;
      }
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>);
      } catch {
        reject(new Error(`metaprune profile printed no JSON: ${out.slice(-300)}`));
      }
    });
  });
  const { predictor, deviceId } = await fetchLatencyPredictor(o.profilerAddress, {
    device: o.device,
    network: o.net,
    backend: 'wasm',
    batchSize: 1,
  });
  return {
    device: o.device,
    deviceId,
    backend: 'wasm',
    predict: (e) => predictor.predict(e),
    profile,
    seconds: (Date.now() - t0) / 1000,
  };
}

export function latencyBudgetProto(dev: LatencyDevice, maxMs: number): common.Budget {
  return common.Budget.fromPartial({
    name: `<=${maxMs.toFixed(3)}ms`,
    maxLatencyMs: maxMs,
    latencyDeviceId: dev.deviceId,
    latencyBackend: dev.backend,
    latencyBatchSize: 1,
  });
}

/** The smallest uniform network whose predicted latency is >= `ms`. */
export function uniformAtLeastLatency(
  net: Network,
  dev: LatencyDevice,
  ms: number,
): UniformBaseline & { latencyMs: number } {
  for (let id = 0; id <= MAX_SCALE_ID; id++) {
    const u = uniformAt(net, id);
    const latencyMs = dev.predict(u.encoding);
    if (latencyMs >= ms) return { ...u, latencyMs };
  }
  const u = uniformAt(net, MAX_SCALE_ID);
  return { ...u, latencyMs: dev.predict(u.encoding) };
}
