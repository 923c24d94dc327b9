/**
 * What the console's JSON API sends: plain objects built from the services' protobuf
 * messages and from @metaprune/core (per-layer widths, the uniform baseline), so the page
 * only draws. Pure functions, no I/O.
 */
import {
  costModel,
  type Encoding,
  layerCosts,
  MAX_SCALE_ID,
  type Network,
  type NetworkSpec,
  SCALES,
  uniformEncoding,
} from '@metaprune/core';
import { type common, controller, latency, weightgen } from '@metaprune/proto';
import { networkFromProto } from '@metaprune/wire';

export interface BudgetView {
  index: number;
  name: string;
  /** A readable summary of the bounds, e.g. "MACs <= 12.5M, latency <= 4 ms". */
  label: string;
  maxMacs?: number;
  minMacs?: number;
  maxParams?: number;
  minParams?: number;
  maxLatencyMs?: number;
  latencyDeviceId?: string;
}

export interface CandidateView {
  genes: number[];
  macs: number;
  params: number;
  /** Top-1 on the held-out split, a fraction in [0, 1]. */
  top1: number;
  /** Predicted latency, ms (set by the search's latency budget or a chosen device). */
  latencyMs?: number;
  generation: number;
  evaluationId: string;
}

export interface BestView {
  budgetIndex: number;
  budget: BudgetView;
  candidate?: CandidateView;
}

export interface ProgressView {
  state: string;
  generation: number;
  generations: number;
  evaluated: number;
  rejected: number;
  failed: number;
  generationDone: number;
  generationSize: number;
  memoHits: number;
  etaSeconds: number;
  /** Fraction of the search done, counting the generation in progress. */
  fraction: number;
  best: BestView[];
}

export interface SearchSummary {
  id: string;
  name: string;
  state: string;
  terminal: boolean;
  pruningnetId: string;
  pruningnetVersion: number;
  network: string;
  createTime?: string;
  endTime?: string;
  error: string;
  progress: ProgressView;
  /** Candidates scored per second over the last seconds (memo answers included). */
  evaluationsPerSecond: number;
}

export interface UniformPoint {
  scaleId: number;
  scale: number;
  macs: number;
  params: number;
  /** The PruningNet's top-1 for this uniform network, when an evaluation of it is known. */
  top1?: number;
  latencyMs?: number;
}

export interface SearchDetail extends SearchSummary {
  /** The network as a @metaprune/core spec (what the browser profiler measures). */
  networkSpec: NetworkSpec;
  budgets: BudgetView[];
  evolution: Record<string, number>;
  evaluation: Record<string, number>;
  seed: number;
  geneCount: number;
  layerCount: number;
  /** MACs of the full (unpruned) network. */
  fullMacs: number;
  /** Non-dominated candidates, by MACs ascending. */
  pareto: CandidateView[];
  /** Per budget, the index into `pareto` of its winner, or -1 when the winner is not on it. */
  winners: { budgetIndex: number; paretoIndex: number; candidate: CandidateView }[];
  /** Uniform networks (every gene at one scale), by MACs ascending. */
  uniform: UniformPoint[];
  /** Where latencies came from, when they are shown. */
  latency?: { deviceId: string; backend: string; batchSize: number; version: number };
}

export interface LayerWidth {
  name: string;
  kind: string;
  cin: number;
  cout: number;
  /** Output channels of the same layer in the uniform network compared against. */
  uniformCout: number;
  /** Output channels of the unpruned layer. */
  maxCout: number;
  macs: number;
  uniformMacs: number;
}

export interface WidthsView {
  genes: number[];
  macs: number;
  params: number;
  /** The uniform network with the MACs nearest the candidate's. */
  uniform: { scaleId: number; scale: number; macs: number; params: number };
  layers: LayerWidth[];
}

export interface TrainingView {
  jobId: string;
  pruningnetId: string;
  name: string;
  network: string;
  dataset: string;
  state: string;
  terminal: boolean;
  epoch: number;
  epochs: number;
  step: number;
  stepsPerEpoch: number;
  fraction: number;
  loss: number;
  accuracy: number;
  validationAccuracy?: number;
  imagesPerSecond: number;
  etaSeconds: number;
  latestVersion: number;
  error: string;
  createTime?: string;
  endTime?: string;
}

export interface TableSummaryView {
  /** latency.v1 LatencyTableKey as JSON: what GET /api/devices/:id/table takes back. */
  key: unknown;
  network: string;
  backend: string;
  batchSize: number;
  version: number;
  rowCount: number;
  measureTime?: string;
}

export interface DeviceView {
  id: string;
  name: string;
  description: string;
  createTime?: string;
  tables: TableSummaryView[];
}

export interface QueueView {
  /** Evaluation jobs waiting in the work queue. */
  pending: number;
  /** Jobs delivered to an evaluator and not yet acknowledged. */
  inFlight: number;
  /** Evaluators connected: idle ones waiting on a pull plus busy ones (one job each). */
  evaluators: number;
  /** Results published per second over the last seconds. */
  evaluationsPerSecond: number;
  /** Results published so far (the results stream's last sequence). */
  resultsTotal: number;
}

export interface ExportView {
  /** Directory of the model relative to the export root ('/'-separated). */
  path: string;
  sizeBytes: number;
  modifiedTime: string;
  files: string[];
  /** userDefinedMetadata of its model.json (pruningnet, version, dataset, encoding...). */
  metadata?: Record<string, unknown>;
}

export interface ServiceStatus {
  name: string;
  address: string;
  ok: boolean;
  error?: string;
}

export interface Overview {
  time: string;
  services: ServiceStatus[];
  searches: SearchSummary[];
  training: TrainingView[];
  queue?: QueueView;
  devices: DeviceView[];
  exports: ExportView[];
  exportsEnabled: boolean;
  profilerEnabled: boolean;
}

// ---------------------------------------------------------------------------------------

const SEARCH_TERMINAL = new Set([
  controller.SearchState.SUCCEEDED,
  controller.SearchState.FAILED,
  controller.SearchState.CANCELLED,
]);

export function isTerminalSearch(state: controller.SearchState): boolean {
  return SEARCH_TERMINAL.has(state);
}

/** `SEARCH_STATE_RUNNING` -> `RUNNING`. */
export function searchStateName(state: controller.SearchState): string {
  return controller.searchStateToJSON(state).replace(/^SEARCH_STATE_/, '');
}

export function trainingStateName(state: weightgen.TrainingState): string {
  return weightgen.trainingStateToJSON(state).replace(/^TRAINING_STATE_/, '');
}

/** "mobilenetv2/small x0.25 32x32x1, 10 classes" (or the raw JSON when it is not valid). */
export function describeNetwork(spec: common.NetworkSpec | undefined): string {
  if (!spec) return '';
  try {
    const s = networkFromProto(spec).spec;
    return `${s.family}/${s.preset} x${s.width} ${s.inputSize}x${s.inputSize}x${s.inputChannels}, ${s.numClasses} classes`;
  } catch {
    return '';
  }
}

/** Multiply-accumulates in a short form: 12.3M, 1.10G, 850K. */
export function formatMacs(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : n >= 1e7 ? 1 : 2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}K`;
  return String(n);
}

export function budgetView(b: common.Budget | undefined, index: number): BudgetView {
  const v: BudgetView = { index, name: b?.name ?? '', label: '' };
  const parts: string[] = [];
  if (b?.minMacs !== undefined) {
    v.minMacs = b.minMacs;
    parts.push(`MACs >= ${formatMacs(b.minMacs)}`);
  }
  if (b?.maxMacs !== undefined) {
    v.maxMacs = b.maxMacs;
    parts.push(`MACs <= ${formatMacs(b.maxMacs)}`);
  }
  if (b?.minParams !== undefined) {
    v.minParams = b.minParams;
    parts.push(`params >= ${formatMacs(b.minParams)}`);
  }
  if (b?.maxParams !== undefined) {
    v.maxParams = b.maxParams;
    parts.push(`params <= ${formatMacs(b.maxParams)}`);
  }
  if (b?.maxLatencyMs !== undefined) {
    v.maxLatencyMs = b.maxLatencyMs;
    v.latencyDeviceId = b.latencyDeviceId;
    parts.push(`latency <= ${b.maxLatencyMs} ms`);
  }
  v.label = parts.join(', ') || 'unbounded';
  if (!v.name) v.name = v.label;
  return v;
}

export function candidateView(c: controller.Candidate): CandidateView {
  return {
    genes: [...(c.encoding?.genes ?? [])],
    macs: c.macs,
    params: c.params,
    top1: c.top1,
    ...(c.predictedLatencyMs !== undefined ? { latencyMs: c.predictedLatencyMs } : {}),
    generation: c.generation,
    evaluationId: c.evaluationId,
  };
}

export function progressView(p: controller.SearchProgress | undefined): ProgressView {
  const generations = p?.generations ?? 0;
  const generation = p?.generation ?? 0;
  const inGen = p && p.generationSize > 0 ? p.generationDone / p.generationSize : 0;
  const terminal = p ? isTerminalSearch(p.state) : false;
  const fraction =
    p?.state === controller.SearchState.SUCCEEDED
      ? 1
      : generations > 0
        ? Math.min(1, (generation + (terminal ? 0 : inGen)) / generations)
        : 0;
  return {
    state: searchStateName(p?.state ?? controller.SearchState.UNSPECIFIED),
    generation,
    generations,
    evaluated: p?.evaluated ?? 0,
    rejected: p?.rejected ?? 0,
    failed: p?.failed ?? 0,
    generationDone: p?.generationDone ?? 0,
    generationSize: p?.generationSize ?? 0,
    memoHits: p?.memoHits ?? 0,
    etaSeconds: p?.etaSeconds ?? 0,
    fraction,
    best: (p?.best ?? []).map((b) => ({
      budgetIndex: b.budgetIndex,
      budget: budgetView(b.budget, b.budgetIndex),
      ...(b.best ? { candidate: candidateView(b.best) } : {}),
    })),
  };
}

/** Distinct candidates counted by a progress snapshot (for the evaluations-per-second meter). */
export function progressCount(p: controller.SearchProgress): number {
  return p.evaluated + p.failed + (p.generationSize > 0 ? p.generationDone : 0);
}

export function searchSummary(s: controller.Search, evaluationsPerSecond = 0): SearchSummary {
  const state = s.progress?.state ?? controller.SearchState.UNSPECIFIED;
  return {
    id: s.searchId,
    name: s.request?.displayName ?? '',
    state: searchStateName(state),
    terminal: isTerminalSearch(state),
    pruningnetId: s.request?.pruningnetId ?? '',
    pruningnetVersion: s.request?.pruningnetVersion ?? 0,
    network: describeNetwork(s.request?.network),
    ...(s.createTime ? { createTime: s.createTime.toISOString() } : {}),
    ...(s.endTime ? { endTime: s.endTime.toISOString() } : {}),
    error: s.error,
    progress: progressView(s.progress),
    evaluationsPerSecond: isTerminalSearch(state) ? 0 : evaluationsPerSecond,
  };
}

/** Every distinct uniform network of `net` (one per MACs value), by MACs ascending. */
export function uniformCurve(net: Network): UniformPoint[] {
  const model = costModel(net);
  const out: UniformPoint[] = [];
  const seen = new Set<number>();
  for (let id = 0; id <= MAX_SCALE_ID; id++) {
    const enc = net.genes.map(() => id);
    const c = model.cost(enc);
    if (seen.has(c.macs)) continue;
    seen.add(c.macs);
    out.push({ scaleId: id, scale: SCALES[id] as number, macs: c.macs, params: c.params });
  }
  return out.sort((a, b) => a.macs - b.macs);
}

export interface DetailExtras {
  evaluationsPerSecond?: number;
  /** top-1 of uniform networks by scale id, where known. */
  uniformTop1?: ReadonlyMap<number, number>;
  /** Predicted latency of an encoding, when a device was chosen. */
  latencyOf?: (enc: Encoding) => number;
  latency?: SearchDetail['latency'];
}

export function searchDetail(s: controller.Search, extras: DetailExtras = {}): SearchDetail {
  const base = searchSummary(s, extras.evaluationsPerSecond ?? 0);
  const req = s.request;
  const net = networkFromProto(req?.network);
  const withLatency = (c: CandidateView): CandidateView =>
    extras.latencyOf ? { ...c, latencyMs: extras.latencyOf(c.genes) } : c;
  const pareto = s.paretoFront.map((c) => withLatency(candidateView(c)));
  const key = (g: readonly number[]) => g.join(',');
  const paretoIndex = new Map(pareto.map((c, i) => [key(c.genes), i]));
  const winners = (s.progress?.best ?? [])
    .filter((b) => b.best)
    .map((b) => {
      const candidate = withLatency(candidateView(b.best!));
      return {
        budgetIndex: b.budgetIndex,
        paretoIndex: paretoIndex.get(key(candidate.genes)) ?? -1,
        candidate,
      };
    });
  const uniform = uniformCurve(net).map((u) => {
    const top1 = extras.uniformTop1?.get(u.scaleId);
    const enc = net.genes.map(() => u.scaleId);
    return {
      ...u,
      ...(top1 !== undefined ? { top1 } : {}),
      ...(extras.latencyOf ? { latencyMs: extras.latencyOf(enc) } : {}),
    };
  });
  const ev = req?.evolution;
  const es = req?.evaluation;
  return {
    ...base,
    networkSpec: net.spec,
    budgets: (req?.budgets ?? []).map((b, i) => budgetView(b, i)),
    evolution: {
      populationSize: ev?.populationSize ?? 0,
      generations: ev?.generations ?? 0,
      keepBest: ev?.keepBest ?? 0,
      parents: ev?.parents ?? 0,
      mutants: ev?.mutants ?? 0,
      crossovers: ev?.crossovers ?? 0,
      mutationProbability: ev?.mutationProbability ?? 0,
    },
    evaluation: {
      recalibrationBatches: es?.recalibrationBatches ?? 0,
      batchSize: es?.batchSize ?? 0,
      validationImages: es?.validationImages ?? 0,
      seed: es?.seed ?? 0,
    },
    seed: req?.seed ?? 0,
    geneCount: net.genes.length,
    layerCount: net.layers.length,
    fullMacs: costModel(net).macs(net.genes.map(() => MAX_SCALE_ID)),
    pareto,
    winners,
    uniform,
    ...(extras.latency ? { latency: extras.latency } : {}),
  };
}

/** A candidate's per-layer widths next to the uniform network of the nearest MACs. */
export function widthsView(net: Network, enc: Encoding): WidthsView {
  const model = costModel(net);
  const cost = model.cost(enc);
  let best = { id: MAX_SCALE_ID, diff: Number.POSITIVE_INFINITY };
  for (let id = 0; id <= MAX_SCALE_ID; id++) {
    const diff = Math.abs(model.macs(net.genes.map(() => id)) - cost.macs);
    if (diff <= best.diff) best = { id, diff };
  }
  const scale = SCALES[best.id] as number;
  const uni = uniformEncoding(net, scale);
  const uniCost = model.cost(uni);
  const full = layerCosts(
    net,
    net.genes.map(() => MAX_SCALE_ID),
  );
  const uniLayers = layerCosts(net, uni);
  return {
    genes: [...enc],
    macs: cost.macs,
    params: cost.params,
    uniform: { scaleId: best.id, scale, macs: uniCost.macs, params: uniCost.params },
    layers: layerCosts(net, enc).map((l, i) => ({
      name: l.name,
      kind: l.kind,
      cin: l.cin,
      cout: l.cout,
      uniformCout: uniLayers[i]?.cout ?? 0,
      maxCout: full[i]?.cout ?? 0,
      macs: l.macs,
      uniformMacs: uniLayers[i]?.macs ?? 0,
    })),
  };
}

export function trainingView(job: weightgen.TrainingJob, lastValidation?: number): TrainingView {
  const p = job.progress;
  const state = p?.state ?? weightgen.TrainingState.UNSPECIFIED;
  const terminal =
    state === weightgen.TrainingState.SUCCEEDED ||
    state === weightgen.TrainingState.FAILED ||
    state === weightgen.TrainingState.CANCELLED;
  const epochs = p?.epochs || job.config?.epochs || 0;
  const stepsPerEpoch = p?.stepsPerEpoch ?? 0;
  const epoch = p?.epoch ?? 0;
  const step = p?.step ?? 0;
  const fraction =
    state === weightgen.TrainingState.SUCCEEDED
      ? 1
      : epochs > 0 && stepsPerEpoch > 0 && epoch > 0
        ? Math.min(1, (epoch - 1 + step / stepsPerEpoch) / epochs)
        : 0;
  const validation = p?.validationAccuracy ?? lastValidation;
  return {
    jobId: job.jobId,
    pruningnetId: job.pruningnetId,
    name: job.displayName,
    network: describeNetwork(job.config?.network),
    dataset: job.config?.dataset ?? '',
    state: trainingStateName(state),
    terminal,
    epoch,
    epochs,
    step,
    stepsPerEpoch,
    fraction,
    loss: p?.loss ?? 0,
    accuracy: p?.accuracy ?? 0,
    ...(validation !== undefined ? { validationAccuracy: validation } : {}),
    imagesPerSecond: p?.imagesPerSecond ?? 0,
    etaSeconds: p?.etaSeconds ?? 0,
    latestVersion: job.latestVersion,
    error: job.error,
    ...(job.createTime ? { createTime: job.createTime.toISOString() } : {}),
    ...(job.endTime ? { endTime: job.endTime.toISOString() } : {}),
  };
}

export function deviceView(d: latency.Device): DeviceView {
  return {
    id: d.deviceId,
    name: d.name,
    description: d.description,
    ...(d.createTime ? { createTime: d.createTime.toISOString() } : {}),
    tables: d.tables.map((t) => ({
      key: t.key ? latency.LatencyTableKey.toJSON(t.key) : {},
      network: describeNetwork(t.key?.network),
      backend: t.key?.backend ?? '',
      batchSize: t.key?.batchSize ?? 0,
      version: t.version,
      rowCount: t.rowCount,
      ...(t.measureTime ? { measureTime: t.measureTime.toISOString() } : {}),
    })),
  };
}

/** Counts per time in a sliding window; `rate` is the slope over it, per second. */
export class RateMeter {
  private readonly samples: { t: number; n: number }[] = [];

  constructor(private readonly windowMs = 10_000) {}

  push(t: number, n: number): void {
    const last = this.samples[this.samples.length - 1];
    if (last && n < last.n) this.samples.length = 0; // a reset (e.g. a new stream)
    this.samples.push({ t, n });
    while (this.samples.length > 2 && (this.samples[0] as { t: number }).t < t - this.windowMs) {
      this.samples.shift();
    }
  }

  rate(now: number): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last === first) return 0;
    // nothing new for a whole window: idle
    if (now - last.t > this.windowMs) return 0;
    const dt = Math.max(now, last.t) - first.t;
    return dt > 0 ? (last.n - first.n) / (dt / 1000) : 0;
  }
}
