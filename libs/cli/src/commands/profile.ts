import { resolve } from 'node:path';
import {
  type LatencyGrid,
  type LatencyTable,
  median,
  planLatencyTable,
  SCALE_COUNT,
} from '@metaprune/core';
import { DEFAULT_PORTS, LatencyProfilerClient } from '@metaprune/wire';
import { num, oneOf, parseFlags, str, type Values } from '../args.js';
import { UsageError } from '../errors.js';
import { NETWORK_OPTIONS, networkFromFlags } from '../network-flags.js';
import { ProgressBar } from '../ui/progress.js';
import {
  deviceFromFlags,
  grpcMessage,
  localTablePath,
  profilerAddress,
  profilerReachable,
  saveDevice,
  savedDevice,
  writeTableFile,
} from './latency.js';

export const profileHelp = `metaprune profile --network mobilenetv2 [--preset small] [--width 0.5] --device NAME [flags]
  Measures a latency lookup table on this machine with a tfjs backend: every layer over the
  (Cin, Cout) grid the search space allows (warm-up, repeats, median and spread), then the
  constant = median(measured - sum of layers) over a few random whole networks, timed on
  the delivered path (the folded graph model plain tfjs runs, as \`metaprune export\`
  writes it) so the table predicts what users get (--calibrate engine: the engine's
  forward). A negative median is a measurement problem: the fit is warmed up again and
  re-measured (3 tries) before it is clipped to 0. Warm-up runs until successive windows
  agree; in-context forwards are interleaved across configurations and the ones whose
  repeats spread far more than the rest are re-measured. Progress
  on stderr. Uploads the table to the latency profiler when one answers (registering the
  device on first use; its upload token is kept in $METAPRUNE_HOME/latency/devices.json),
  otherwise writes it to $METAPRUNE_HOME/latency/<device>/<network>.json (or --out).
  --device NAME          device name, [A-Za-z0-9._-]{1,64} (required)
  --network F [--preset P --width W --input-size N --input-channels C --classes K
   --layout L --prune-last-stage]
                         the network; a table for a search must be for the PruningNet's
                         network: the same flags as its training (see --dataset)
  --dataset D            fashion-mnist or cifar10: input channels and classes of a PruningNet
                         trained on D (fashion-mnist: 1 channel, 10 classes), as
                         \`metaprune train --remote --dataset D\` sets them; explicit
                         --input-channels / --classes win
  --backend B            auto (default), wasm, cpu, tensorflow, tensorflow-gpu
  --batch N              images per forward (default 1: single-image inference latency)
  --grid full|K          full (default): every allowed (Cin, Cout); K: K points per axis,
                         bilinear interpolation in between (2..${SCALE_COUNT})
  --method M             in-context (default): every layer timed inside whole forwards
                         of an orthogonal-array design over the genes (31x31 = 961
                         forwards cover the full grid); isolated: each layer alone in a
                         loop (hot caches; see docs/latency.md)
  --warmup N             untimed runs per forward / entry (default 1 in-context, 2 isolated)
  --repeats N            timed runs per forward / entry (default 5)
  --fit N                random networks fitting the constant (default 10)
  --warmup-ms MS         whole-network warm-up before the grid and the fit (default 2000)
  --workers N            measure the grid on N worker threads (default 1; threads share
                         caches and memory bandwidth, see docs/latency.md)
  --validate N           then measure N random networks and report the prediction error
  --seed S               seed of the validation networks (default 1000)
  --profiler host:port   latency profiler (default: $METAPRUNE_LATENCY_PROFILER, the stack of
                         \`metaprune up\`, else 127.0.0.1:${DEFAULT_PORTS.latencyProfiler})
  --token T              upload token of an already registered device
  --out FILE             write the table to FILE instead of uploading it
  --json                 one JSON object on stdout; with --validate N it has
                         {"median_abs_error_pct":...,"p95_abs_error_pct":...,"encodings":N}`;

function gridFromFlags(v: Values): LatencyGrid {
  const g = str(v, 'grid') ?? 'full';
  if (g === 'full') return 'full';
  const k = num(v, 'grid', { min: 2, max: SCALE_COUNT, integer: true }) as number;
  return { points: k };
}

interface Upload {
  profiler: string;
  deviceId: string;
  version: number;
  registered: boolean;
}

/** Uploads to the profiler at `address`, registering the device on first use. */
async function upload(
  address: string,
  device: string,
  table: LatencyTable,
  token: string | undefined,
): Promise<Upload> {
  const client = new LatencyProfilerClient(address, { timeoutMs: 120_000 });
  try {
    let registered = false;
    let creds: { deviceId: string; token: string } | undefined;
    const existing = await client.findDevice(device);
    if (!existing) {
      const res = await client.registerDevice(device, `registered by metaprune profile`);
      creds = { deviceId: res.device?.deviceId as string, token: res.token };
      saveDevice(address, device, creds);
      registered = true;
    } else {
      const saved = savedDevice(address, device);
      const t = token ?? (saved?.deviceId === existing.deviceId ? saved.token : undefined);
      if (!t) {
        throw new Error(
          `device ${device} is registered on ${address} but this machine has no upload token for it; pass --token`,
        );
      }
      creds = { deviceId: existing.deviceId, token: t };
    }
    const res = await client.uploadTable(creds.deviceId, creds.token, table);
    return { profiler: address, deviceId: creds.deviceId, version: res.version, registered };
  } finally {
    client.close();
  }
}

export async function profileCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    ...NETWORK_OPTIONS,
    dataset: { type: 'string' },
    device: { type: 'string' },
    backend: { type: 'string' },
    batch: { type: 'string' },
    grid: { type: 'string' },
    method: { type: 'string' },
    warmup: { type: 'string' },
    repeats: { type: 'string' },
    fit: { type: 'string' },
    'warmup-ms': { type: 'string' },
    workers: { type: 'string' },
    validate: { type: 'string' },
    calibrate: { type: 'string' },
    seed: { type: 'string' },
    profiler: { type: 'string' },
    token: { type: 'string' },
    out: { type: 'string' },
    json: { type: 'boolean' },
  });
  const device = deviceFromFlags(v);
  const net = networkFromFlags(v, { datasetFlag: true });
  const grid = gridFromFlags(v);
  const backendFlag = oneOf(
    v,
    'backend',
    ['auto', 'wasm', 'cpu', 'tensorflow', 'tensorflow-gpu'] as const,
    'auto',
  );
  const batchSize = num(v, 'batch', { min: 1, max: 4096, integer: true }) ?? 1;
  const method = oneOf(v, 'method', ['in-context', 'isolated'] as const, 'in-context') as
    | 'in-context'
    | 'isolated';
  const warmup =
    num(v, 'warmup', { min: 0, max: 1000, integer: true }) ?? (method === 'in-context' ? 1 : 2);
  const repeats = num(v, 'repeats', { min: 1, max: 1000, integer: true }) ?? 5;
  const fit = num(v, 'fit', { min: 1, max: 1000, integer: true }) ?? 10;
  const warmupMs = num(v, 'warmup-ms', { min: 0, max: 600_000, integer: true }) ?? 2000;
  const workers = num(v, 'workers', { min: 1, max: 256, integer: true }) ?? 1;
  const validate = num(v, 'validate', { min: 0, max: 10_000, integer: true }) ?? 0;
  const seed = num(v, 'seed', { min: 0, max: 2 ** 32 - 1, integer: true }) ?? 1000;
  const json = v['json'] === true;
  const calibrate = oneOf(v, 'calibrate', ['delivered', 'engine'] as const) ?? 'delivered';
  const out = str(v, 'out');
  if (out !== undefined && str(v, 'profiler') !== undefined) {
    throw new UsageError('give either --out or --profiler, not both');
  }

  const engine = await import('@metaprune/engine');
  const info = await engine.initBackend(backendFlag === 'auto' ? {} : { prefer: backendFlag });
  const plan = planLatencyTable(net, grid);
  const measurements = engine.measurementCount(net, grid, method);
  const s = net.spec;
  process.stderr.write(
    `profiling ${s.family}/${s.preset} width ${s.width} (input ${s.inputSize}x${s.inputSize}x${s.inputChannels}, ${s.numClasses} classes) on ${info.name}` +
      `${info.name === 'wasm' ? (info.simd ? ' SIMD' : ' no-SIMD') : ''}, batch ${batchSize}: ` +
      `${plan.rows} table rows (grid ${grid === 'full' ? 'full' : `${grid.points}x${grid.points}`}), ${method}: ${measurements} ${method === 'in-context' ? 'forwards' : 'layer measurements'}, ${workers} worker${workers > 1 ? 's' : ''}\n`,
  );
  const started = performance.now();
  const bar = new ProgressBar({
    label: 'layers',
    total: measurements,
    unit: method === 'in-context' ? 'fwd' : 'pt',
  });
  const onProgress = (p: { done: number; layer: string }) => bar.update(p.done, p.layer);
  const timing = { batchSize, warmup, repeats };
  const measured =
    workers > 1
      ? await engine.measureInWorkers(net.spec, grid, measurements, {
          workers,
          method,
          backend: info.name,
          ...timing,
          warmupMs,
          onProgress,
        })
      : undefined;
  const result = await engine.profileLatencyTable(net, {
    backend: info.name,
    grid,
    method,
    ...timing,
    fitEncodings: fit,
    warmupMs,
    device,
    calibrate,
    ...(measured ? { entries: measured.entries, contextSamples: measured.samples } : {}),
    onProgress,
  });
  bar.finish();
  const table = result.table;
  // the unconstrained fit: when it is negative the rows overstate the forwards and the
  // constant is clipped to 0 (see fitLatencyConstant)
  const medianResidualMs = median(result.fit.map((f) => f.measuredMs - f.layerSumMs));
  const refits = result.constantAttempts > 1 ? `, after ${result.constantAttempts} fits` : '';
  process.stderr.write(
    `constant ${table.constantMs.toFixed(4)} ms fitted over ${fit} networks on the ${result.calibratedOn} path${refits}${medianResidualMs < 0 ? ` (median residual stayed ${medianResidualMs.toFixed(4)} ms after re-measuring; clipped to 0: the rows sum to more than whole forwards, so predictions will run high — the machine is too noisy or the grid too coarse: raise --warmup-ms / --repeats / --grid)` : ''}; ${result.layerSeconds.toFixed(1)} s layers + ${result.fitSeconds.toFixed(1)} s fit\n`,
  );

  let validation: Awaited<ReturnType<typeof engine.measurePredictionError>> | undefined;
  if (validate > 0) {
    let vbar: ProgressBar | undefined;
    validation = await engine.measurePredictionError(net, table, {
      encodings: validate,
      seed,
      warmupMs,
      onProgress: (p) => {
        vbar ??= new ProgressBar({ label: 'validate', total: p.total, unit: 'run' });
        vbar.update(p.done);
      },
    });
    vbar?.finish();
  }

  let uploaded: Upload | undefined;
  let file: string | undefined;
  let uploadError: string | undefined;
  if (out !== undefined) {
    file = resolve(out);
  } else {
    const address = profilerAddress(v);
    if (await profilerReachable(address)) {
      try {
        uploaded = await upload(address, device, table, str(v, 'token'));
      } catch (err) {
        uploadError = `upload to ${address} failed: ${grpcMessage(err)}`;
        process.stderr.write(`metaprune: ${uploadError}; writing the table locally\n`);
      }
    }
    if (!uploaded) file = localTablePath(device, table);
  }
  if (file) writeTableFile(file, table);
  const seconds = (performance.now() - started) / 1000;

  if (json) {
    console.log(
      JSON.stringify({
        ...(validation
          ? {
              median_abs_error_pct: validation.medianAbsErrorPct,
              p95_abs_error_pct: validation.p95AbsErrorPct,
              encodings: validation.encodings,
              max_abs_error_pct: validation.maxAbsErrorPct,
              median_error_pct: validation.medianErrorPct,
            }
          : {}),
        device,
        network: s.family,
        preset: s.preset,
        width: s.width,
        input_size: s.inputSize,
        input_channels: s.inputChannels,
        classes: s.numClasses,
        backend: table.backend,
        batch_size: table.batchSize,
        rows: table.rows.length,
        method,
        measurements,
        interpolated: table.interpolated,
        constant_ms: table.constantMs,
        fit_median_residual_ms: medianResidualMs,
        constant_attempts: result.constantAttempts,
        calibrated_on: result.calibratedOn,
        seconds,
        ...(uploaded
          ? {
              profiler: uploaded.profiler,
              device_id: uploaded.deviceId,
              version: uploaded.version,
              registered: uploaded.registered,
            }
          : {}),
        ...(file ? { file } : {}),
        ...(uploadError ? { upload_error: uploadError } : {}),
      }),
    );
  } else {
    if (uploaded) {
      console.log(
        `uploaded ${table.rows.length} rows to ${uploaded.profiler} as ${device} (${uploaded.deviceId}) version ${uploaded.version}${uploaded.registered ? ' (device registered; token saved)' : ''}`,
      );
    } else {
      console.log(`wrote ${table.rows.length} rows to ${file}`);
    }
    if (validation) {
      console.log(
        `prediction error over ${validation.encodings} random networks: median ${validation.medianAbsErrorPct.toFixed(2)}%, p95 ${validation.p95AbsErrorPct.toFixed(2)}%, max ${validation.maxAbsErrorPct.toFixed(2)}%`,
      );
    }
  }
  return 0;
}
