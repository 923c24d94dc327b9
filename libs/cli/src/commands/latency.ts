import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import {
  buildNetwork,
  type Encoding,
  LatencyPredictor,
  type LatencyTable,
  type Network,
  type NetworkSpec,
  networkFingerprint,
  sameSpec,
} from '@metaprune/core';
import type { latency } from '@metaprune/proto';
import { checkHealth } from '@metaprune/runtime';
import {
  DEFAULT_PORTS,
  LatencyProfilerClient,
  networkKeyString,
  specFromProto,
  tableKeyString,
} from '@metaprune/wire';
import { num, oneOf, parseFlags, requireStr, str, type Values } from '../args.js';
import { UsageError } from '../errors.js';
import {
  ENCODING_OPTIONS,
  encodingFromFlags,
  NETWORK_OPTIONS,
  networkFromFlags,
} from '../network-flags.js';
import { metapruneHome, readStackFile } from '../stack.js';

export const latencyHelp = `metaprune latency --device NAME (--encoding a,b,... | --uniform S) [flags]
metaprune latency --model DIR [--runtime tfjs-wasm] [--device NAME | --table FILE] [--json]
  (an exported model as delivered; see the end of this help)
  Predicted latency of a candidate from the device's latency table (sum of the layer
  entries + the fitted constant); with --measure also its measured latency here.
  --json prints {"predicted_ms":...,"measured_ms":...} (measured_ms null without --measure).
  --device NAME          device whose table predicts (required)
  --network ...          network flags (see \`metaprune flops --help\`); default: the network
                         of the device's most recent table
  --backend B            table of this backend (default: most recent);  --batch N  batch size
  --version N            table version (default: latest)
  --measure              also run the candidate here on the table's backend and time it
  --repeats N            timed runs for --measure (default 30)
  --warmup-ms MS         whole-network warm-up before --measure (default 2000)
  --layers               print the per-layer terms
  --table FILE           predict from a table file (written by \`metaprune profile --out\`)
  --profiler host:port   latency profiler (default: $METAPRUNE_LATENCY_PROFILER, the stack of
                         \`metaprune up\`, else 127.0.0.1:${DEFAULT_PORTS.latencyProfiler}); when none
                         answers, tables are read from $METAPRUNE_HOME/latency/<device>/
  --json                 machine-readable output
With --model DIR (an export of \`metaprune export\` / \`convert\`, either form):
  loads it with plain @tensorflow/tfjs as a user does, times it at batch 1 (median of
  --repeats 50 after --warmup-ms 2000), interleaved with the engine's forward of its
  encoding, and prints predicted (from --device / --table when given, else the figure in
  the model's metadata), engine and delivered latency (--json: predicted_ms, engine_ms,
  delivered_ms, ...).
  --runtime R            tfjs-wasm (default), tfjs-cpu, tfjs-node`;

// ---- shared with `metaprune profile` ---------------------------------------------------

export const DEVICE_NAME = /^[A-Za-z0-9._-]{1,64}$/;

export function deviceFromFlags(v: Values): string {
  const name = requireStr(v, 'device');
  if (!DEVICE_NAME.test(name)) {
    throw new UsageError(`--device: ${JSON.stringify(name)} must match ${DEVICE_NAME}`);
  }
  return name;
}

/** Local latency files: $METAPRUNE_HOME/latency. */
export function latencyHome(): string {
  return join(metapruneHome(), 'latency');
}

/** Where `profile` writes a table when no profiler takes it. */
export function localTablePath(device: string, t: LatencyTable): string {
  return join(latencyHome(), device, `${tableKeyString(t.network, t.backend, t.batchSize)}.json`);
}

export function writeTableFile(path: string, t: LatencyTable): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, `${JSON.stringify(t)}\n`);
}

export function readTableFile(path: string): LatencyTable {
  let t: LatencyTable;
  try {
    t = JSON.parse(readFileSync(path, 'utf8')) as LatencyTable;
  } catch (err) {
    throw new UsageError(
      `--table: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (!t || typeof t !== 'object' || !Array.isArray(t.rows) || !t.network) {
    throw new UsageError(`--table: ${path} is not a latency table`);
  }
  return t;
}

/** --profiler, $METAPRUNE_LATENCY_PROFILER, the running stack, or the default port. */
export function profilerAddress(v: Values): string {
  const flag = str(v, 'profiler');
  if (flag) return flag;
  const env = process.env['METAPRUNE_LATENCY_PROFILER'];
  if (env) return env;
  const stack = readStackFile();
  if (stack?.latencyProfiler) return stack.latencyProfiler;
  return `127.0.0.1:${DEFAULT_PORTS.latencyProfiler}`;
}

/** True when a profiler answers health checks at `address` within a second. */
export async function profilerReachable(address: string): Promise<boolean> {
  try {
    return (await checkHealth(address, { timeoutMs: 1000 })) === 'SERVING';
  } catch {
    return false;
  }
}

interface SavedDevice {
  deviceId: string;
  token: string;
}

function tokensPath(): string {
  return join(latencyHome(), 'devices.json');
}

/** Upload tokens of devices this machine registered, per profiler address and name. */
export function savedDevice(address: string, name: string): SavedDevice | undefined {
  try {
    const all = JSON.parse(readFileSync(tokensPath(), 'utf8')) as Record<string, SavedDevice>;
    return all[`${address}|${name}`];
  } catch {
    return undefined;
  }
}

export function saveDevice(address: string, name: string, d: SavedDevice): void {
  let all: Record<string, SavedDevice> = {};
  try {
    all = JSON.parse(readFileSync(tokensPath(), 'utf8')) as Record<string, SavedDevice>;
  } catch {
    // first device
  }
  all[`${address}|${name}`] = d;
  mkdirSync(latencyHome(), { recursive: true });
  writeFileSync(tokensPath(), `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 });
}

/** `{field: ..., message}` of a gRPC error, as one line. */
export function grpcMessage(err: unknown): string {
  const e = err as { details?: string; message?: string };
  return e.details || e.message || String(err);
}

// ---- the command -------------------------------------------------------------------------

export interface Resolved {
  net: Network;
  table?: LatencyTable;
  backend: string;
  batchSize: number;
  version: number;
  source: 'profiler' | 'file';
  /** For profiler predictions. */
  client?: LatencyProfilerClient;
  deviceId?: string;
}

function networkFromTableOrFlags(v: Values, spec: NetworkSpec): Network {
  if (str(v, 'network') === undefined) return buildNetwork(spec);
  const net = networkFromFlags(v);
  if (!sameSpec(net.spec, spec)) {
    throw new UsageError(
      `the table is for ${networkKeyString(spec)}, not ${networkKeyString(net.spec)}`,
    );
  }
  return net;
}

export async function fromProfiler(
  v: Values,
  address: string,
  device: string,
): Promise<Resolved | undefined> {
  const client = new LatencyProfilerClient(address, { timeoutMs: 60_000 });
  const dev = await client.findDevice(device);
  if (!dev) {
    client.close();
    return undefined;
  }
  const backend = str(v, 'backend');
  const batch = num(v, 'batch', { min: 1, max: 4096, integer: true });
  const wanted = str(v, 'network') !== undefined ? networkFromFlags(v).spec : undefined;
  const matching = dev.tables.filter((t: latency.LatencyTableSummary) => {
    const spec = specFromProto(t.key?.network);
    return (
      (!wanted || sameSpec(spec, wanted)) &&
      (backend === undefined || t.key?.backend === backend) &&
      (batch === undefined || t.key?.batchSize === batch)
    );
  });
  matching.sort((a, b) => (b.measureTime?.getTime() ?? 0) - (a.measureTime?.getTime() ?? 0));
  const pick = matching[0];
  if (!pick?.key) {
    client.close();
    throw new UsageError(
      `device ${device} has no latency table${wanted ? ` for ${networkKeyString(wanted)}` : ''}${backend ? ` on ${backend}` : ''}${batch ? ` at batch ${batch}` : ''} on the profiler at ${address}; run \`metaprune profile\` first`,
    );
  }
  const net = networkFromTableOrFlags(v, specFromProto(pick.key.network));
  return {
    net,
    backend: pick.key.backend,
    batchSize: pick.key.batchSize,
    version: num(v, 'version', { min: 1, max: 1e9, integer: true }) ?? pick.version,
    source: 'profiler',
    client,
    deviceId: dev.deviceId,
  };
}

export function fromFiles(v: Values, device: string): Resolved {
  const explicit = str(v, 'table');
  let path = explicit ? resolve(explicit) : undefined;
  if (!path) {
    const dir = join(latencyHome(), device);
    if (!existsSync(dir)) {
      throw new UsageError(
        `no latency profiler answers and there are no local tables for device ${device} (${dir}); run \`metaprune profile --device ${device} ...\` first`,
      );
    }
    const backend = str(v, 'backend');
    const batch = num(v, 'batch', { min: 1, max: 4096, integer: true });
    const wanted = str(v, 'network') !== undefined ? networkFromFlags(v).spec : undefined;
    const files = readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => join(dir, f))
      .filter((f) => {
        const t = readTableFile(f);
        return (
          (!wanted || sameSpec(t.network, wanted)) &&
          (backend === undefined || t.backend === backend) &&
          (batch === undefined || t.batchSize === batch)
        );
      })
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
    path = files[0];
    if (!path) throw new UsageError(`no local latency table of device ${device} matches in ${dir}`);
  }
  const table = readTableFile(path);
  const net = networkFromTableOrFlags(v, table.network);
  if (table.fingerprint !== networkFingerprint(net)) {
    throw new UsageError(`${path} was measured for another shape of ${networkKeyString(net.spec)}`);
  }
  return {
    net,
    table,
    backend: table.backend,
    batchSize: table.batchSize,
    version: table.version ?? 0,
    source: 'file',
  };
}

export async function latencyCommand(argv: string[]): Promise<number> {
  // `--model DIR`: an exported model, timed as delivered (latency-model.ts).
  if (argv.some((a) => a === '--model' || a.startsWith('--model='))) {
    const { latencyModelCommand } = await import('./latency-model.js');
    return latencyModelCommand(argv);
  }
  const v = parseFlags(argv, {
    ...NETWORK_OPTIONS,
    ...ENCODING_OPTIONS,
    device: { type: 'string' },
    backend: { type: 'string' },
    batch: { type: 'string' },
    version: { type: 'string' },
    table: { type: 'string' },
    profiler: { type: 'string' },
    measure: { type: 'boolean' },
    repeats: { type: 'string' },
    'warmup-ms': { type: 'string' },
    layers: { type: 'boolean' },
    json: { type: 'boolean' },
  });
  const device = deviceFromFlags(v);
  if (str(v, 'encoding') === undefined && str(v, 'uniform') === undefined) {
    throw new UsageError('give the candidate: --encoding a,b,... or --uniform S');
  }
  const repeats = num(v, 'repeats', { min: 1, max: 10_000, integer: true }) ?? 30;
  const warmupMs = num(v, 'warmup-ms', { min: 0, max: 600_000, integer: true }) ?? 2000;
  oneOf(v, 'backend', ['wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'] as const);

  let r: Resolved | undefined;
  const address = profilerAddress(v);
  if (str(v, 'table') === undefined && (await profilerReachable(address))) {
    r = await fromProfiler(v, address, device);
  }
  r ??= fromFiles(v, device);
  const enc: Encoding = encodingFromFlags(r.net, v);

  let predictedMs: number;
  let layers: { layer: string; cin: number; cout: number; ms: number }[] = [];
  try {
    if (r.client && r.deviceId) {
      const res = await r.client.predict(
        r.deviceId,
        { network: r.net.spec, backend: r.backend, batchSize: r.batchSize },
        enc,
        { version: r.version, includeLayers: true },
      );
      predictedMs = res.predictedMs;
      r.version = res.version;
      layers = res.layers.map((l) => ({
        layer: l.layerId,
        cin: l.cin,
        cout: l.cout,
        ms: l.latencyMs,
      }));
    } else {
      const p = new LatencyPredictor(r.net, r.table as LatencyTable);
      const ex = p.explain(enc);
      predictedMs = ex.predictedMs;
      layers = [...ex.layers];
    }
  } catch (err) {
    throw new UsageError(`prediction failed: ${grpcMessage(err)}`);
  } finally {
    r.client?.close();
  }

  let measuredMs: number | null = null;
  if (v['measure']) {
    const engine = await import('@metaprune/engine');
    await engine.initBackend({ prefer: r.backend as 'wasm' });
    engine.warmUpBackend(r.net, { batchSize: r.batchSize, ms: warmupMs });
    measuredMs = engine.measureNetworkLatency(r.net, enc, {
      batchSize: r.batchSize,
      warmup: 3,
      repeats,
    }).medianMs;
  }

  const errorPct = measuredMs === null ? null : (100 * (predictedMs - measuredMs)) / measuredMs;
  if (v['json']) {
    console.log(
      JSON.stringify({
        predicted_ms: predictedMs,
        measured_ms: measuredMs,
        ...(errorPct !== null ? { error_pct: errorPct } : {}),
        device,
        network: r.net.spec.family,
        preset: r.net.spec.preset,
        width: r.net.spec.width,
        backend: r.backend,
        batch_size: r.batchSize,
        version: r.version,
        source: r.source,
        encoding: enc,
        ...(v['layers'] ? { layers } : {}),
      }),
    );
    return 0;
  }
  if (v['layers']) {
    for (const l of layers) {
      console.log(
        `${l.layer.padEnd(20)} ${String(l.cin).padStart(5)} -> ${String(l.cout).padEnd(5)} ${l.ms.toFixed(4)} ms`,
      );
    }
  }
  console.log(
    `${device} (${r.backend}, batch ${r.batchSize}, table v${r.version} from ${r.source}): predicted ${predictedMs.toFixed(3)} ms${
      measuredMs !== null
        ? `, measured ${measuredMs.toFixed(3)} ms (${errorPct! >= 0 ? '+' : ''}${errorPct!.toFixed(1)}%)`
        : ''
    }`,
  );
  return 0;
}
