import { networkToProto } from '@metaprune/evaluator';
import { common, controller } from '@metaprune/proto';
import { num, parseFlags, requireStr, str, type Values } from '../args.js';
import { UsageError } from '../errors.js';
import { NETWORK_OPTIONS, networkFromFlags } from '../network-flags.js';
import { call, cliError, controllerAddress, followSearch, searchClient } from '../remote.js';
import { human, table } from '../ui/table.js';

export const searchHelp = `metaprune search --pruningnet ID (--max-mflops X | --budgets a,b,c) [flags]
  Evolutionary search of channel widths through the controller of the running stack
  (\`metaprune up\`), scored by a PruningNet. Live progress on a terminal; --json prints
  {"search":ID,"best":[{"budget":...,"encoding":[...],"macs":...,"top1":...}],"pareto":[...],"evaluated":N}.
  --pruningnet ID        PruningNet to score with (required); --version N (default: latest)
  --max-mflops X         budget: at most X million MACs ("FLOPs" as in the paper)
  --min-mflops Y         with --max-mflops: at least Y million MACs
  --budgets a,b,c        one budget per value (million MACs), searched together
  --max-mparams P        every budget also caps parameters at P million
  --generations G        default 20;   --population P   default 50;   --seed S   default 0
  --recal-batches N      BN recalibration batches (default 100); --batch-size B (default 128)
  --val-images N         held-out images scored (default: the whole held-out split)
  --network ...          optional; must match the PruningNet's network (see \`metaprune flops --help\`)
  --name TEXT            display name;  --controller host:port   (default: from \`metaprune up\`)
  --detach               print the search id and return; --json   machine-readable result`;

function budgetsFromFlags(v: Values): common.Budget[] {
  const max = num(v, 'max-mflops', { min: 0.000001, max: 1e9 });
  const min = num(v, 'min-mflops', { min: 0, max: 1e9 });
  const maxParams = num(v, 'max-mparams', { min: 0.000001, max: 1e9 });
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
  if (max === undefined && values.length === 0) {
    throw new UsageError('give a budget: --max-mflops X or --budgets a,b,c');
  }
  if (min !== undefined && max === undefined) {
    throw new UsageError('--min-mflops needs --max-mflops');
  }
  const out: common.Budget[] = [];
  const params = maxParams !== undefined ? { maxParams: Math.round(maxParams * 1e6) } : {};
  if (max !== undefined) {
    out.push(
      common.Budget.fromPartial({
        name: `${min !== undefined ? `${min}-` : '<='}${max}M`,
        maxMacs: Math.round(max * 1e6),
        ...(min !== undefined ? { minMacs: Math.round(min * 1e6) } : {}),
        ...params,
      }),
    );
  }
  for (const x of values) {
    if (x === max) continue;
    out.push(
      common.Budget.fromPartial({ name: `<=${x}M`, maxMacs: Math.round(x * 1e6), ...params }),
    );
  }
  return out;
}

function budgetJson(b: common.Budget | undefined): Record<string, unknown> {
  if (!b) return {};
  return {
    name: b.name,
    ...(b.maxMacs !== undefined ? { maxMacs: b.maxMacs } : {}),
    ...(b.minMacs !== undefined ? { minMacs: b.minMacs } : {}),
    ...(b.maxParams !== undefined ? { maxParams: b.maxParams } : {}),
    ...(b.minParams !== undefined ? { minParams: b.minParams } : {}),
  };
}

const candidateJson = (c: controller.Candidate) => ({
  encoding: c.encoding?.genes ?? [],
  macs: c.macs,
  params: c.params,
  top1: c.top1,
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
    .map((b) => (b.best ? `${(b.best.top1 * 100).toFixed(1)}%` : '--'))
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
      ? networkToProto(networkFromFlags(v, { preset: 'small' }).spec)
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
      throw cliError(err, 'StartSearch');
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
      console.log(
        table(
          ['budget', 'MACs', 'params', 'top-1', 'encoding'],
          p.best.map((b) => [
            b.budget?.name || `#${b.budgetIndex}`,
            b.best ? human(b.best.macs) : '--',
            b.best ? human(b.best.params) : '--',
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
