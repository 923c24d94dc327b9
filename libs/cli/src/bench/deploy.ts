/**
 * W6 `deploy` (../shared/benchmarks.md): batch-1 latency of every exported MobileNetV2
 * model of docs/results as a user runs it — the inference form (converted here from the
 * committed training form) loaded with plain tfjs on wasm, plus nothing (its
 * `runtime.imports` is empty) — beside the engine's forward of the same encoding and the
 * prediction of a latency table measured in the same run with `metaprune profile`'s
 * defaults. One JSON line per model, then a summary line. With --reference, PyTorch eager
 * (one thread, batch norm folded) times the same architecture right after each model.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import {
  buildNetwork,
  type Encoding,
  LatencyPredictor,
  type NetworkSpec,
  networkFingerprint,
} from '@metaprune/core';
import * as engine from '@metaprune/engine';
import { type BenchLine, median, peakRssMb } from './record.js';

/** Training-form model directories of `family` under `dir`, sorted. */
export function resultModels(dir: string, family = 'mobilenetv2'): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (!statSync(p).isDirectory()) continue;
      const json = join(p, 'model.json');
      if (existsSync(json)) {
        const m = JSON.parse(readFileSync(json, 'utf8'));
        if (m.format !== 'graph-model' && m.userDefinedMetadata?.spec?.family === family) {
          out.push(p);
        }
      }
      walk(p);
    }
  };
  walk(dir);
  return out.sort();
}

function pytorchDeployMs(root: string, model: string): number | null {
  const script = [
    join(root, '..', 'shared', 'bench', 'pytorch_ref.py'),
    join(root, 'shared', 'bench', 'pytorch_ref.py'),
  ].find(existsSync);
  if (!script) return null;
  const r = spawnSync(
    '/usr/bin/python3',
    [script, 'deploy', '--model', model, '--threads', '1', '--steps', '50'],
    { encoding: 'utf8' },
  );
  const line = r.stdout?.split('\n').find((l) => l.startsWith('{'));
  if (r.status !== 0 || !line) {
    process.stderr.write(
      `bench: deploy reference failed: ${(r.stderr || '').trim().split('\n').at(-1)}\n`,
    );
    return null;
  }
  return (JSON.parse(line) as { median_ms: number }).median_ms;
}

const load = () => Number(loadavg()[0]?.toFixed(2));

export async function benchDeploy(opts: {
  root: string;
  reference: boolean;
  log: (s: string) => void;
}): Promise<BenchLine[]> {
  const info = await engine.initBackend({ prefer: 'wasm' });
  const models = resultModels(join(opts.root, 'docs', 'results', 'models'));
  if (models.length === 0) throw new Error('no MobileNetV2 models under docs/results/models');
  const first = JSON.parse(readFileSync(join(models[0] as string, 'model.json'), 'utf8'));
  const spec = first.userDefinedMetadata.spec as NetworkSpec;
  const net = buildNetwork(spec);
  opts.log(
    `deploy: profiling a latency table for ${spec.family} w${spec.width} (profile defaults)`,
  );
  const t0 = performance.now();
  const { table } = await engine.profileLatencyTable(net, { backend: info.name });
  const profileSeconds = (performance.now() - t0) / 1000;
  const predictor = new LatencyPredictor(net, table);
  const tmp = mkdtempSync(join(tmpdir(), 'metaprune-bench-deploy-'));
  const lines: BenchLine[] = [];
  try {
    for (const [i, dir] of models.entries()) {
      const name = relative(join(opts.root, 'docs', 'results', 'models'), dir);
      const out = join(tmp, String(i));
      const meta = await engine.convertToInference(dir, out);
      if (networkFingerprint(buildNetwork(meta['spec'] as NetworkSpec)) !== table.fingerprint) {
        throw new Error(`${name} is not a model of the table's network`);
      }
      const deployed = await engine.loadDeployedModel(out);
      const training = await engine.loadDeployedModel(dir);
      const loadBefore = load();
      let t: engine.DeliveredTiming;
      let tt: engine.DeliveredTiming;
      try {
        t = engine.measureDelivered(deployed);
        tt = engine.measureDelivered(training, { engine: false, repeats: 20, warmupMs: 1000 });
      } finally {
        deployed.dispose();
        training.dispose();
      }
      const predicted = predictor.predict(meta['encoding'] as Encoding);
      const line: BenchLine = {
        workload: 'deploy',
        model: name,
        delivered_ms: t.deliveredMs,
        engine_ms: t.engineMs,
        predicted_ms: predicted,
        delivered_over_engine: t.engineMs ? t.deliveredMs / t.engineMs : null,
        prediction_error_pct: (100 * (predicted - t.deliveredMs)) / t.deliveredMs,
        training_form_ms: tt.deliveredMs,
        delivered_spread_ms: t.deliveredSpreadMs,
        runtime: 'tfjs-wasm graph model',
        imports: [],
        macs: meta['macs'],
        backend: info.name,
        batch: 1,
        size: spec.inputSize,
        width: spec.width,
        load_avg_1m: [loadBefore, load()],
        peak_rss_mb: peakRssMb(),
      };
      if (opts.reference) {
        const ref = pytorchDeployMs(opts.root, dir);
        if (ref !== null) {
          line['reference_ms'] = ref;
          line['speedup_vs_pytorch'] = ref / t.deliveredMs;
        }
      }
      opts.log(
        `deploy ${i + 1}/${models.length} ${name}: delivered ${t.deliveredMs.toFixed(2)} ms, engine ${t.engineMs?.toFixed(2)} ms, predicted ${predicted.toFixed(2)} ms`,
      );
      lines.push(line);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  const ratios = lines.map((l) => l['delivered_over_engine'] as number);
  const errors = lines.map((l) => Math.abs(l['prediction_error_pct'] as number));
  const speedups = lines.map((l) => l['speedup_vs_pytorch']).filter((x) => typeof x === 'number');
  lines.push({
    workload: 'deploy',
    model: 'summary',
    models: lines.length,
    delivered_over_engine_median: median(ratios),
    delivered_over_engine_worst: Math.max(...ratios),
    abs_prediction_error_pct_median: median(errors),
    abs_prediction_error_pct_worst: Math.max(...errors),
    delivered_over_training_form_median: median(
      lines.map((l) => (l['delivered_ms'] as number) / (l['training_form_ms'] as number)),
    ),
    ...(speedups.length
      ? {
          speedup_vs_pytorch_median: median(speedups as number[]),
          speedup_vs_pytorch_min: Math.min(...(speedups as number[])),
        }
      : {}),
    table_constant_ms: table.constantMs,
    profile_seconds: profileSeconds,
    backend: info.name,
    batch: 1,
    size: spec.inputSize,
    width: spec.width,
    load_avg_1m: load(),
    peak_rss_mb: peakRssMb(),
  });
  return lines;
}
