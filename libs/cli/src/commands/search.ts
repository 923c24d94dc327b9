import type { ServiceError } from '@grpc/grpc-js';
import { common, controller } from '@metaprune/proto';
import { FIELD_METADATA_KEY } from '@metaprune/runtime';
import { specToProto } from '@metaprune/wire';
import { num, parseFlags, requireStr, str, type Values } from '../args.js';
import { UsageError } from '../errors.js';
import { NETWORK_OPTIONS, networkFromFlags } from '../network-flags.js';
import { call, cliError, controllerAddress, followSearch, searchClient } from '../remote.js';
import { human, table } from '../ui/table.js';
import { DEVICE_NAME } from './latency.js';

export const searchHelp = `metaprune search --pruningnet ID (--max-mflops X | --budgets a,b,c | --max-latency-ms L --device NAME) [flags]
  Evolutionary search of channel widths through the controller of the running stack
  (\`metaprune up\`), scored by a PruningNet. Live progress on a terminal; --json prints
  {"search":ID,"best":[{"budget":...,"encoding":[...],"macs":...,"top1":...}],"pareto":[...],"evaluated":N}
  (with a latency budget every candidate also has "predictedLatencyMs").
  --pruningnet ID        PruningNet to score with (required); --version N (default: latest)
  --max-mflops X         budget: at most X million MACs ("FLOPs" as in the paper)
  --min-mflops Y         with --max-mflops: at least Y million MACs
  --budgets a,b,c        one budget per value (million MACs), searched together
  --max-mparams P        every budget also caps parameters at P million
  --max-latency-ms L     every budget also caps the predicted latency at L ms (alone: one
                         latency budget), from the latency table of --device for the
                         PruningNet's network (\`metaprune profile\` measures and uploads it);
                         over-budget candidates are rejected when generated
  --device NAME          device (name or id) of the latency table; with --max-latency-ms
  --backend B            table of this tfjs backend (default: the device's most recent)
  --latency-batch N      table of this batch size (default 1)
  --generations G        default 20;   --population P   default 50;   --seed S   default 0
  --recal-batches N      BN recalibration batches (default 100); --batch-size B (default 128)
  --val-images N         held-out images scored (default: the whole held-out split)
  --network ...          optional; must match the PruningNet's network (see \`metaprune flops --help\`)
  --name TEXT            display name;  --controller host:port   (default: from \`metaprune up\`)
  --detach               print the search id and return; --json   machine-readable result`;

/** The latency bound every budget gets from --max-latency-ms, --device, --backend, --latency-batch. */
function latencyFromFlags(v: Values): Partial<common.Budget> | undefined {
  const ms = num(v, 'max-latency-ms', { min: 0.000001, max: 1e6 });
  const device = str(v, 'device');
  if (ms === undefined) {
    for (const flag of ['device', 'backend', 'latency-batch']) {
      if (str(v, flag) !== undefined) {
        throw new UsageError(`--${flag}: only used with --max-latency-ms (a latency budget)`);
      }
    }
    return undefined;
  }
  if (device === undefined) {
    throw new UsageError(
      '--device: required with --max-latency-ms (the device whose latency table predicts latency)',
    );
  }
  if (!DEVICE_NAME.test(device)) {
    throw new UsageError(`--device: ${JSON.stringify(device)} must match ${DEVICE_NAME}`);
  }
  const backend = str(v, 'backend') ?? '';
  if (!/^[A-Za-z0-9_-]{0,32}$/.test(backend)) {
    throw new UsageError(`--backend: ${JSON.stringify(backend)} is not a tfjs backend name`);
  }
  return {
    maxLatencyMs: ms,
    latencyDeviceId: device,
    latencyBackend: backend,
    latencyBatchSize: num(v, 'latency-batch', { min: 1, max: 4096, integer: true }, 0) ?? 0,
  };
}

function budgetsFromFlags(v: Values): common.Budget[] {
  const max = num(v, 'max-mflops', { min: 0.000001, max: 1e9 });
  const min = num(v, 'min-mflops', { min: 0, max: 1e9 });
  const maxParams = num(v, 'max-mparams', { min: 0.000001, max: 1e9 });
  const latency = latencyFromFlags(v);
  const list = str(v, 'budgets');
  const values: number[] = [];
  if (list !== undefined) {
    for (const part of list.split(',').map((s) => s.trim())) {
      const x = Number(part);
      if (part === '' || !Number.isFinite(x) || x <= 0) {
        throw new UsageError(
          `--budgets: ${JSON.stringify(part)} is not a positive number of million MACs`,
        );
      }
      values.push(x);
    }
  }
  if (max === undefined && values.length === 0 && latency === undefined) {
    throw new UsageError(
      'give a budget: --max-mflops X, --budgets a,b,c or --max-latency-ms L --device NAME',
    );
  }
  if (min !== undefined && max === undefined) {
    throw new UsageError('--min-mflops needs --max-mflops');
  }
  const out: common.Budget[] = [];
  const params = maxParams !== undefined ? { maxParams: Math.round(maxParams * 1e6) } : {};
  const lat = latency ?? {};
  const ms = latency ? ` <=${latency.maxLatencyMs}ms` : '';
  if (max !== undefined) {
    out.push(
      common.Budget.fromPartial({
        name: `${min !== undefined ? `${min}-` : '<='}${max}M${ms}`,
        maxMacs: Math.round(max * 1e6),
        ...(min !== undefined ? { minMacs: Math.round(min * 1e6) } : {}),
        ...params,
        ...lat,
      }),
    );
  }
  for (const x of values) {
    if (x === max) continue;
    out.push(
      common.Budget.fromPartial({
        name: `<=${x}M${ms}`,
        maxMacs: Math.round(x * 1e6),
        ...params,
        ...lat,
      }),
    );
  }
  if (out.length === 0) out.push(common.Budget.fromPartial({ name: ms.trim(), ...params, ...lat }));
  return out;
}

/** Budget fields of StartSearch errors -> the flags that set them. */
const FLAG_OF_FIELD: Record<string, string> = {
  maxMacs: '--max-mflops / --budgets',
  minMacs: '--min-mflops',
  maxParams: '--max-mparams',
  maxLatencyMs: '--max-latency-ms',
  latencyDeviceId: '--device',
  latencyBackend: '--backend',
  latencyBatchSize: '--latency-batch',
};

/** StartSearch's INVALID_ARGUMENT on a budget field, named by its flag (exit 2). */
function startError(err: unknown): Error {
  const e = err as ServiceError;
  const field = typeof e?.code === 'number' ? e.metadata?.get(FIELD_METADATA_KEY)[0] : undefined;
  const flag = FLAG_OF_FIELD[/^budgets\[\d+\]\.(\w+)$/.exec(String(field ?? ''))?.[1] ?? ''];
  if (flag) return new UsageError(`${flag}: ${e.details}`);
  return cliError(err, 'StartSearch');
}

function budgetJson(b: common.Budget | undefined): Record<string, unknown> {
  if (!b) return {};
  return {
    name: b.name,
    ...(b.maxMacs !== undefined ? { maxMacs: b.maxMacs } : {}),
    ...(b.minMacs !== undefined ? { minMacs: b.minMacs } : {}),
    ...(b.maxParams !== undefined ? { maxParams: b.maxParams } : {}),
    ...(b.minParams !== undefined ? { minParams: b.minParams } : {}),
    ...(b.maxLatencyMs !== undefined
      ? {
          maxLatencyMs: b.maxLatencyMs,
          device: b.latencyDeviceId,
          ...(b.latencyBackend ? { backend: b.latencyBackend } : {}),
          ...(b.latencyBatchSize ? { latencyBatch: b.latencyBatchSize } : {}),
        }
      : {}),
  };
}

const candidateJson = (c: controller.Candidate) => ({
  encoding: c.encoding?.genes ?? [],
  macs: c.macs,
  params: c.params,
  top1: c.top1,
  ...(c.predictedLatencyMs !== undefined ? { predictedLatencyMs: c.predictedLatencyMs } : {}),
});

/** The --json document of a finished search. */
export function searchJson(s: controller.Search): Record<string, unknown> {
  const p = s.progress!;
  return {
    search: s.searchId,
    state: controller.searchStateToJSON(p.state).replace(/^SEARCH_STATE_/, ''),
    best: p.best.map((b) => ({
      budget: budgetJson(b.budget),
      ...(b.best
        ? candidateJson(b.best)
        : { encoding: null, macs: null, params: null, top1: null }),
    })),
    pareto: s.paretoFront.map(candidateJson),
    evaluated: p.evaluated,
    failed: p.failed,
    generations: p.generation,
    pruningnet: s.request?.pruningnetId,
    pruningnetVersion: s.request?.pruningnetVersion,
    ...(s.error ? { error: s.error } : {}),
  };
}

function fmtMs(ms: number): string {
  return `${ms < 10 ? ms.toFixed(3) : ms.toFixed(1)}ms`;
}

function fmtDuration(sec: number): string {
  if (!Number.isFinite(sec) || sec <= 0) return '--';
  const s = Math.round(sec);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One progress line: generation bar, candidates of the generation, bests, ETA. */
export function progressLine(p: controller.SearchProgress, elapsedSec: number, width = 24): string {
  const gens = Math.max(1, p.generations);
  const within = p.generationSize > 0 ? p.generationDone / p.generationSize : 0;
  const frac = Math.min(1, (p.generation + within) / gens);
  const filled = Math.round(frac * width);
  const bar = `${'#'.repeat(filled)}${'.'.repeat(width - filled)}`;
  let eta = p.etaSeconds;
  if (!(eta > 0) && frac > 0.01) eta = (elapsedSec / frac) * (1 - frac);
  const best = p.best
    .map((b) =>
      b.best
        ? `${(b.best.top1 * 100).toFixed(1)}%${b.best.predictedLatencyMs !== undefined ? ` ${fmtMs(b.best.predictedLatencyMs)}` : ''}`
        : '--',
    )
    .join(' | ');
  const cand = p.generationSize > 0 ? `  cand ${p.generationDone}/${p.generationSize}` : '';
  return `gen ${Math.min(p.generation + (p.generationSize > 0 ? 1 : 0), gens)}/${gens} [${bar}] ${Math.round(frac * 100)}%${cand}  evaluated ${p.evaluated}  best ${best}  ETA ${fmtDuration(eta)}`;
}

export async function searchCommand(argv: string[]): Promise<number> {
  const v = parseFlags(argv, {
    ...NETWORK_OPTIONS,
    pruningnet: { type: 'string' },
    version: { type: 'string' },
    'max-mflops': { type: 'string' },
    'min-mflops': { type: 'string' },
    'max-mparams': { type: 'string' },
    'max-latency-ms': { type: 'string' },
    device: { type: 'string' },
    backend: { type: 'string' },
    'latency-batch': { type: 'string' },
    budgets: { type: 'string' },
    generations: { type: 'string' },
    population: { type: 'string' },
    seed: { type: 'string' },
    'recal-batches': { type: 'string' },
    'batch-size': { type: 'string' },
    'val-images': { type: 'string' },
    'eval-seed': { type: 'string' },
    name: { type: 'string' },
    controller: { type: 'string' },
    json: { type: 'boolean' },
    detach: { type: 'boolean' },
  });
  const pruningnetId = requireStr(v, 'pruningnet');
  const budgets = budgetsFromFlags(v);
  const network =
    str(v, 'network') !== undefined
      ? specToProto(networkFromFlags(v, { preset: 'small' }).spec)
      : undefined;
  const request = controller.StartSearchRequest.fromPartial({
    pruningnetId,
    pruningnetVersion: num(v, 'version', { min: 0, max: 2 ** 32 - 1, integer: true }, 0),
    budgets,
    ...(network ? { network } : {}),
    evolution: {
      generations: num(v, 'generations', { min: 1, max: 10_000, integer: true }, 0),
      populationSize: num(v, 'population', { min: 2, max: 10_000, integer: true }, 0),
    },
    evaluation: {
      recalibrationBatches: num(v, 'recal-batches', { min: 0, max: 10_000, integer: true }, 100),
      batchSize: num(v, 'batch-size', { min: 1, max: 4096, integer: true }, 0),
      validationImages: num(v, 'val-images', { min: 0, max: 1_000_000, integer: true }, 0),
      seed: num(v, 'eval-seed', { min: 0, max: 2 ** 32 - 1, integer: true }, 0),
    },
    seed: num(v, 'seed', { min: 0, max: 2 ** 32 - 1, integer: true }, 0),
    displayName: str(v, 'name', '') ?? '',
  });
  const json = v['json'] === true;
  const client = searchClient(controllerAddress(str(v, 'controller')));
  try {
    let searchId: string;
    try {
      const res = await call(client, client.startSearch, request);
      searchId = res.searchId;
    } catch (err) {
      throw startError(err);
    }
    if (v['detach']) {
      console.log(json ? JSON.stringify({ search: searchId }) : searchId);
      return 0;
    }
    const tty = !json && process.stderr.isTTY === true;
    if (!json) process.stderr.write(`search ${searchId} started\n`);

    let interrupted = false;
    const onSigint = () => {
      if (interrupted) process.exit(130);
      interrupted = true;
      process.stderr.write(`\ncancelling search ${searchId} (Ctrl-C again to leave it running)\n`);
      void call(client, client.cancelSearch, { searchId }).catch(() => {});
    };
    process.on('SIGINT', onSigint);
    const t0 = Date.now();
    let lastGen = -1;
    let search: controller.Search;
    try {
      search = await followSearch(client, searchId, {
        onProgress: (p) => {
          const elapsed = (Date.now() - t0) / 1000;
          if (tty) {
            process.stderr.write(`\r\x1b[2K${progressLine(p, elapsed)}`);
          } else if (!json && p.generation !== lastGen) {
            lastGen = p.generation;
            process.stderr.write(`${progressLine(p, elapsed)}\n`);
          }
        },
      });
    } finally {
      process.off('SIGINT', onSigint);
      if (tty) process.stderr.write('\n');
    }
    const p = search.progress!;
    const ok = p.state === controller.SearchState.SUCCEEDED;
    if (json) {
      console.log(JSON.stringify(searchJson(search)));
    } else {
      const state = controller.searchStateToJSON(p.state).replace(/^SEARCH_STATE_/, '');
      console.log(
        `search ${searchId} ${state}: ${p.generation}/${p.generations} generations, ${p.evaluated} evaluated, ${p.failed} failed, ${p.rejected} rejected (budget), ${p.memoHits} from the memo`,
      );
      if (search.error) console.log(`error: ${search.error}`);
      const latency = p.best.some((b) => b.budget?.maxLatencyMs !== undefined);
      console.log(
        table(
          ['budget', 'MACs', 'params', ...(latency ? ['latency'] : []), 'top-1', 'encoding'],
          p.best.map((b) => [
            b.budget?.name || `#${b.budgetIndex}`,
            b.best ? human(b.best.macs) : '--',
            b.best ? human(b.best.params) : '--',
            ...(latency
              ? [b.best?.predictedLatencyMs !== undefined ? fmtMs(b.best.predictedLatencyMs) : '--']
              : []),
            b.best ? `${(b.best.top1 * 100).toFixed(2)}%` : '--',
            b.best ? (b.best.encoding?.genes ?? []).join(',') : '(none found)',
          ]),
        ),
      );
      console.log(`Pareto front: ${search.paretoFront.length} candidates (--json lists them)`);
    }
    if (interrupted) return 130;
    return ok ? 0 : 1;
  } finally {
    client.close();
  }
}
