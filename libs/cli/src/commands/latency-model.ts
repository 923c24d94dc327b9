/**
 * `metaprune latency --model DIR`: predicted, engine and delivered latency of an exported
 * model. Shared with `convert` / `export`: the runtime flag, the table lookup for a
 * model and the metadata record of the figures.
 */
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import {
  buildNetwork,
  type Encoding,
  LatencyPredictor,
  type NetworkSpec,
  networkFingerprint,
} from '@metaprune/core';
import { networkKeyString } from '@metaprune/wire';
import { num, oneOf, parseFlags, requireStr, str, type Values } from '../args.js';
import { UsageError } from '../errors.js';
import {
  DEVICE_NAME,
  fromFiles,
  fromProfiler,
  grpcMessage,
  profilerAddress,
  profilerReachable,
  type Resolved,
} from './latency.js';

export const RUNTIMES = ['tfjs-wasm', 'tfjs-cpu', 'tfjs-node'] as const;
export type Runtime = (typeof RUNTIMES)[number];
const BACKEND_OF = { 'tfjs-wasm': 'wasm', 'tfjs-cpu': 'cpu', 'tfjs-node': 'tensorflow' } as const;

export const MODEL_LATENCY_OPTIONS = {
  runtime: { type: 'string' },
  device: { type: 'string' },
  table: { type: 'string' },
  profiler: { type: 'string' },
  repeats: { type: 'string' },
  'warmup-ms': { type: 'string' },
} as const;

/** Starts the runtime's backend; one clear line when it cannot. */
export async function startRuntime(v: Values): Promise<Runtime> {
  const runtime = oneOf(v, 'runtime', RUNTIMES) ?? 'tfjs-wasm';
  const engine = await import('@metaprune/engine');
  try {
    await engine.initBackend({ prefer: BACKEND_OF[runtime] });
  } catch (e) {
    throw new UsageError(`--runtime ${runtime} cannot run here: ${(e as Error).message}`);
  }
  return runtime;
}

export interface Prediction {
  predicted_ms: number;
  table: { device: string; backend: string; batch_size: number; version: number; source: string };
}

/**
 * The table prediction for a model of `spec` at `encoding`, from --table or --device (the
 * profiler, else local tables); null without either. A table for another network is a
 * usage error naming both.
 */
export async function predictForModel(
  v: Values,
  spec: NetworkSpec,
  encoding: Encoding,
): Promise<Prediction | null> {
  const device = str(v, 'device');
  if (device === undefined && str(v, 'table') === undefined) return null;
  if (device !== undefined && !DEVICE_NAME.test(device)) {
    throw new UsageError(`--device: ${JSON.stringify(device)} must match ${DEVICE_NAME}`);
  }
  const name = device ?? 'table';
  let r: Resolved | undefined;
  const address = profilerAddress(v);
  if (str(v, 'table') === undefined && (await profilerReachable(address))) {
    r = await fromProfiler(v, address, name);
  }
  r ??= fromFiles(v, name);
  const wanted = buildNetwork(spec);
  if (
    networkKeyString(r.net.spec) !== networkKeyString(spec) ||
    networkFingerprint(r.net) !== networkFingerprint(wanted)
  ) {
    r.client?.close();
    throw new UsageError(
      `the table is for ${networkKeyString(r.net.spec)}, the model is ${networkKeyString(spec)}`,
    );
  }
  let predicted: number;
  try {
    if (r.client && r.deviceId) {
      const res = await r.client.predict(
        r.deviceId,
        { network: r.net.spec, backend: r.backend, batchSize: r.batchSize },
        encoding,
        { version: r.version },
      );
      predicted = res.predictedMs;
      r.version = res.version;
    } else {
      predicted = new LatencyPredictor(r.net, r.table!).predict(encoding);
    }
  } catch (err) {
    throw new UsageError(`prediction failed: ${grpcMessage(err)}`);
  } finally {
    r.client?.close();
  }
  return {
    predicted_ms: predicted,
    table: {
      device: r.table?.device ?? name,
      backend: r.backend,
      batch_size: r.batchSize,
      version: r.version,
      source: r.source,
    },
  };
}

/** What an export's metadata records about latency (`latency` key). */
export function latencyRecord(
  runtime: Runtime,
  delivered: { deliveredMs: number; engineMs: number | null } | null,
  prediction: Prediction | null,
  previous?: unknown,
): Record<string, unknown> {
  const prev = (previous && typeof previous === 'object' ? previous : {}) as Record<
    string,
    unknown
  >;
  return {
    ...prev,
    ...(prediction ? { predicted_ms: prediction.predicted_ms, table: prediction.table } : {}),
    ...(delivered
      ? {
          delivered_ms: delivered.deliveredMs,
          engine_ms: delivered.engineMs,
          runtime,
          host: hostname(),
          measured_at: new Date().toISOString(),
        }
      : {}),
  };
}

export async function latencyModelCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    ...MODEL_LATENCY_OPTIONS,
    model: { type: 'string' },
    json: { type: 'boolean' },
  });
  const dir = resolve(requireStr(v, 'model'));
  const repeats = num(v, 'repeats', { min: 1, max: 10_000, integer: true }) ?? 50;
  const warmupMs = num(v, 'warmup-ms', { min: 0, max: 600_000, integer: true }) ?? 2000;
  const runtime = await startRuntime(v);
  const engine = await import('@metaprune/engine');
  let model: Awaited<ReturnType<typeof engine.loadDeployedModel>>;
  try {
    model = await engine.loadDeployedModel(dir);
  } catch (e) {
    throw new UsageError(`--model: ${(e as Error).message.split('\n')[0]}`);
  }
  try {
    const meta = model.metadata;
    const spec = meta['spec'] as NetworkSpec;
    const encoding = meta['encoding'] as Encoding;
    if (!spec || !Array.isArray(encoding)) {
      throw new UsageError(`--model: ${dir}/model.json metadata lacks spec / encoding`);
    }
    const prediction = await predictForModel(v, spec, encoding);
    const recorded = (meta['latency'] ?? {}) as Record<string, unknown>;
    let t: ReturnType<typeof engine.measureDelivered>;
    try {
      t = engine.measureDelivered(model, { repeats, warmupMs });
    } catch (e) {
      throw new UsageError(
        `--runtime ${runtime} cannot run ${dir}: ${(e as Error).message.split('\n')[0]}`,
      );
    }
    const predicted =
      prediction?.predicted_ms ??
      (typeof recorded['predicted_ms'] === 'number' ? recorded['predicted_ms'] : null);
    const out = {
      model: dir,
      form: model.form,
      runtime,
      predicted_ms: predicted,
      predicted_from: prediction ? prediction.table : predicted !== null ? 'metadata' : null,
      engine_ms: t.engineMs,
      delivered_ms: t.deliveredMs,
      delivered_spread_ms: t.deliveredSpreadMs,
      delivered_over_engine: t.engineMs ? t.deliveredMs / t.engineMs : null,
      error_pct: predicted !== null ? (100 * (predicted - t.deliveredMs)) / t.deliveredMs : null,
      repeats: t.samples,
    };
    if (v['json']) {
      console.log(JSON.stringify(out));
      return 0;
    }
    const f = (x: number | null) => (x === null ? 'n/a' : `${x.toFixed(3)} ms`);
    console.log(`${dir} (${model.form} form, ${runtime}, batch 1, median of ${t.samples})`);
    console.log(
      `  predicted  ${f(predicted)}${prediction ? ` (table of ${prediction.table.device}, ${prediction.table.source})` : predicted !== null ? ' (recorded in the model)' : ''}`,
    );
    console.log(`  engine     ${f(t.engineMs)}`);
    console.log(
      `  delivered  ${f(t.deliveredMs)}${out.delivered_over_engine ? ` (${out.delivered_over_engine.toFixed(2)}x engine)` : ''}${out.error_pct !== null ? `; prediction error ${out.error_pct >= 0 ? '+' : ''}${out.error_pct.toFixed(1)}%` : ''}`,
    );
    return 0;
  } finally {
    model.dispose();
  }
}
