/**
 * The console's live view of the stack. Searches come from the controller (ListSearches
 * every poll, plus one WatchSearch stream per running search for progress inside a
 * generation); training jobs from the weight generator's JetStream KV bucket (watched, so
 * every progress report arrives); queue depth, in-flight jobs and connected evaluators from
 * the evaluators' durable consumer; evaluations per second from the results stream;
 * devices from the latency profiler; exported models from the export root. Emits
 * 'overview' (an {@link Overview}) when anything changed, at most every 200 ms, and
 * 'search' (id, summary) on each progress message of a watched search.
 */
import { EventEmitter } from 'node:events';
import { dirname, relative, resolve, sep } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { GrpcPruningNets } from '@metaprune/controller';
import {
  buildNetwork,
  type Encoding,
  type LatencyPredictor,
  type LatencyTable,
  latencyPredictor,
  type Network,
  ValidationError,
  validateEncoding,
} from '@metaprune/core';
import { evaluationJobId, networkFromProto, resolveEvaluationSettings } from '@metaprune/evaluator';
import {
  LatencyProfilerClient,
  specFromProto,
  tableKeyString,
  tableToProto,
} from '@metaprune/latency-profiler';
import { controller, latency, weightgen } from '@metaprune/proto';
import { type Logger, NATS_NAMES, nullLogger } from '@metaprune/runtime';
import { decodeRecord } from '@metaprune/weight-generator';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import { type KV, Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { HttpError, httpErrorOf, searchClient, unary, weightGeneratorClient } from './backends.js';
import { listExports } from './exports.js';
import {
  type DeviceView,
  deviceView,
  type ExportView,
  isTerminalSearch,
  type Overview,
  progressCount,
  type QueueView,
  RateMeter,
  type SearchDetail,
  type SearchSummary,
  type ServiceStatus,
  searchDetail,
  searchSummary,
  type TrainingView,
  trainingView,
  uniformCurve,
  type WidthsView,
  widthsView,
} from './views.js';

export interface HubOptions {
  controller?: string;
  weightGenerator?: string;
  latencyProfiler?: string;
  nc?: NatsConnection;
  exportRoot?: string;
  /** Bearer token sent with RegisterDevice when the browser gives none. */
  registrationToken?: string;
  pollMs: number;
  logger?: Logger;
}

interface LiveSearch {
  search: controller.Search;
  meter: RateMeter;
  watch?: grpc.ClientReadableStream<controller.WatchSearchResponse>;
  /** Do not (re)open a watch before this time (ms). */
  watchAfter: number;
}

/** Rows of one layer of a latency table as a (Cin, Cout) grid of medians. */
export interface LayerGrid {
  layer: string;
  kind: string;
  kernel: number;
  stride: number;
  inSize: number;
  cins: number[];
  couts: number[];
  /** medianMs[i][j] at (cins[i], couts[j]); null where the table has no row. */
  medianMs: (number | null)[][];
}

export interface TableView {
  deviceId: string;
  network: string;
  backend: string;
  batchSize: number;
  version: number;
  constantMs: number;
  interpolated: boolean;
  warmupRuns: number;
  measureTime?: string;
  rowCount: number;
  layers: LayerGrid[];
}

const TRAINING_STREAM = `KV_${NATS_NAMES.trainingBucket}`;
const MEMO_STREAM = `KV_${NATS_NAMES.memoBucket}`;
const SLOW_EVERY = 5;
const MAX_SEARCHES = 200;

export class Hub extends EventEmitter {
  private readonly logger: Logger;
  private readonly searches = new Map<string, LiveSearch>();
  private order: string[] = [];
  private readonly training = new Map<string, { job: weightgen.TrainingJob; val?: number }>();
  private devices: DeviceView[] = [];
  private exports: ExportView[] = [];
  private queue: QueueView | undefined;
  private readonly resultsMeter = new RateMeter(10_000);
  private readonly status = new Map<string, ServiceStatus>();
  private readonly search?: controller.SearchServiceClient;
  private readonly wg?: weightgen.WeightGeneratorServiceClient;
  /** For ExportNetwork (see weightGeneratorClient's longCalls). */
  private readonly wgExport?: weightgen.WeightGeneratorServiceClient;
  private readonly profiler?: LatencyProfilerClient;
  private readonly pruningnets?: GrpcPruningNets;
  private jsm: JetStreamManager | undefined;
  private memo: KV | undefined;
  private trainingWatch: { stop(): void } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  private polling: Promise<void> | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private lastOverview = '';
  private closed = false;
  private readonly details = new Map<string, { at: number; search: controller.Search }>();
  private readonly uniformTop1 = new Map<string, { at: number; map: Map<number, number> }>();
  private readonly predictors = new Map<
    string,
    { at: number; predictor: LatencyPredictor; table: LatencyTable }
  >();

  constructor(private readonly o: HubOptions) {
    super();
    this.setMaxListeners(0);
    this.logger = o.logger ?? nullLogger;
    if (o.controller) {
      this.search = searchClient(o.controller);
      this.status.set('controller', { name: 'controller', address: o.controller, ok: false });
    }
    if (o.weightGenerator) {
      this.wg = weightGeneratorClient(o.weightGenerator);
      this.wgExport = weightGeneratorClient(o.weightGenerator, { longCalls: true });
      this.pruningnets = new GrpcPruningNets(o.weightGenerator);
      this.status.set('weight-generator', {
        name: 'weight-generator',
        address: o.weightGenerator,
        ok: false,
      });
    }
    if (o.latencyProfiler) {
      this.profiler = new LatencyProfilerClient(o.latencyProfiler, { timeoutMs: 30_000 });
      this.status.set('latency-profiler', {
        name: 'latency-profiler',
        address: o.latencyProfiler,
        ok: false,
      });
    }
    if (o.nc) {
      this.status.set('nats', { name: 'nats', address: o.nc.getServer(), ok: true });
    }
  }

  get profilerEnabled(): boolean {
    return this.profiler !== undefined;
  }

  /** First poll (so the first page already has data), then every `pollMs`. */
  async start(): Promise<void> {
    if (this.o.nc) {
      try {
        this.jsm = await jetstreamManager(this.o.nc);
      } catch (err) {
        this.logger.warn('JetStream is not available: no training jobs or queue', { err });
      }
    }
    await this.pollOnce();
    this.timer = setInterval(() => {
      this.polling ??= this.pollOnce()
        .catch((err: unknown) => this.logger.warn('refreshing the console failed', { err }))
        .finally(() => {
          this.polling = undefined;
        });
    }, this.o.pollMs);
    this.timer.unref();
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
    if (this.flushTimer) clearTimeout(this.flushTimer);
    await this.polling?.catch(() => {});
    for (const s of this.searches.values()) s.watch?.cancel();
    this.trainingWatch?.stop();
    this.search?.close();
    this.wg?.close();
    this.wgExport?.close();
    this.profiler?.close();
    this.pruningnets?.close();
    this.removeAllListeners();
  }

  overview(): Overview {
    const now = Date.now();
    const searches: SearchSummary[] = this.order
      .map((id) => this.searches.get(id))
      .filter((s): s is LiveSearch => s !== undefined)
      .map((s) => searchSummary(s.search, s.meter.rate(now)));
    const training: TrainingView[] = [...this.training.values()]
      .map((t) => trainingView(t.job, t.val))
      .sort((a, b) => (b.createTime ?? '').localeCompare(a.createTime ?? ''));
    if (this.o.nc) {
      const nats = this.status.get('nats');
      if (nats) nats.ok = !this.o.nc.isClosed();
    }
    return {
      time: new Date(now).toISOString(),
      services: [...this.status.values()].map((s) => ({ ...s })),
      searches,
      training,
      ...(this.queue
        ? { queue: { ...this.queue, evaluationsPerSecond: this.resultsMeter.rate(now) } }
        : {}),
      devices: this.devices,
      exports: this.exports,
      exportsEnabled: this.o.exportRoot !== undefined && this.o.exportRoot !== '',
      profilerEnabled: this.profiler !== undefined,
    };
  }

  // --- polling -------------------------------------------------------------------------

  private async pollOnce(): Promise<void> {
    if (this.closed) return;
    const slow = this.tick % SLOW_EVERY === 0;
    this.tick++;
    await Promise.all([
      this.pollSearches(),
      this.pollQueue(),
      this.ensureTrainingWatch(),
      slow ? this.pollDevices() : undefined,
      slow ? this.pollWeightGenerator() : undefined,
      slow ? this.pollExports() : undefined,
    ]);
    this.flush(true);
  }

  private readonly failures = new Map<string, number>();

  /** A service shows as down after two failed polls in a row (one slow answer is not). */
  private setStatus(name: string, ok: boolean, error?: string): void {
    const s = this.status.get(name);
    if (!s) return;
    const failures = ok ? 0 : (this.failures.get(name) ?? 0) + 1;
    this.failures.set(name, failures);
    if (!ok && failures < 2 && s.ok) return;
    s.ok = ok;
    if (error === undefined) delete s.error;
    else s.error = error;
  }

  private async pollSearches(): Promise<void> {
    if (!this.search) return;
    let res: controller.ListSearchesResponse;
    try {
      res = await unary(
        this.search,
        this.search.listSearches,
        controller.ListSearchesRequest.fromPartial({ pageSize: MAX_SEARCHES }),
      );
      this.setStatus('controller', true);
    } catch (err) {
      this.setStatus('controller', false, (err as grpc.ServiceError).details ?? String(err));
      return;
    }
    const now = Date.now();
    const seen = new Set<string>();
    for (const s of res.searches) {
      seen.add(s.searchId);
      let live = this.searches.get(s.searchId);
      if (!live) {
        live = { search: s, meter: new RateMeter(10_000), watchAfter: 0 };
        this.searches.set(s.searchId, live);
      } else {
        const watched = live.watch !== undefined;
        const terminal = isTerminalSearch(s.progress?.state ?? 0);
        // a live watch carries newer progress than the list, except for the end
        live.search = watched && !terminal ? { ...s, progress: live.search.progress } : s;
      }
      if (live.search.progress) live.meter.push(now, progressCount(live.search.progress));
      if (!isTerminalSearch(live.search.progress?.state ?? 0)) this.ensureWatch(live);
    }
    for (const [id, live] of this.searches) {
      if (!seen.has(id)) {
        live.watch?.cancel();
        this.searches.delete(id);
      }
    }
    this.order = res.searches.map((s) => s.searchId);
  }

  private ensureWatch(live: LiveSearch): void {
    if (live.watch || !this.search || this.closed || Date.now() < live.watchAfter) return;
    const id = live.search.searchId;
    const call = this.search.watchSearch(
      controller.WatchSearchRequest.fromPartial({ searchId: id }),
    );
    live.watch = call;
    call.on('data', (msg: controller.WatchSearchResponse) => {
      const p = msg.progress;
      if (!p) return;
      live.search = { ...live.search, progress: p };
      live.meter.push(Date.now(), progressCount(p));
      if (isTerminalSearch(p.state)) this.details.delete(id);
      this.emit('search', id, searchSummary(live.search, live.meter.rate(Date.now())));
      this.flush(false);
    });
    const done = () => {
      if (live.watch === call) live.watch = undefined;
      live.watchAfter = Date.now() + 2000;
    };
    call.on('error', done);
    call.on('end', done);
  }

  private async pollQueue(): Promise<void> {
    if (!this.jsm) return;
    try {
      const [ci, si] = await Promise.all([
        this.jsm.consumers.info(NATS_NAMES.jobsStream, NATS_NAMES.evaluatorsConsumer),
        this.jsm.streams.info(NATS_NAMES.resultsStream).catch(() => undefined),
      ]);
      const total = si?.state.last_seq ?? 0;
      this.resultsMeter.push(Date.now(), total);
      this.queue = {
        pending: ci.num_pending,
        inFlight: ci.num_ack_pending,
        evaluators: ci.num_waiting + ci.num_ack_pending,
        evaluationsPerSecond: 0,
        resultsTotal: total,
      };
    } catch {
      // no evaluator has created the queue yet
      this.queue = undefined;
    }
  }

  private async ensureTrainingWatch(): Promise<void> {
    if (this.trainingWatch || !this.jsm || !this.o.nc || this.closed) return;
    try {
      await this.jsm.streams.info(TRAINING_STREAM);
    } catch {
      return; // the weight generator has not created its bucket yet
    }
    try {
      const kv = await new Kvm(this.o.nc).open(NATS_NAMES.trainingBucket);
      const it = await kv.watch();
      const handle = { stop: () => it.stop() };
      this.trainingWatch = handle;
      void (async () => {
        try {
          for await (const e of it) {
            if (e.operation !== 'PUT') {
              this.training.delete(e.key);
            } else {
              try {
                const { job } = decodeRecord(e.value);
                const prev = this.training.get(job.jobId);
                const val = job.progress?.validationAccuracy ?? prev?.val;
                this.training.set(job.jobId, { job, ...(val !== undefined ? { val } : {}) });
              } catch (err) {
                this.logger.debug('unreadable training record', { key: e.key, err });
              }
            }
            this.flush(false);
          }
        } catch (err) {
          this.logger.warn('training watch ended', { err });
        } finally {
          if (this.trainingWatch === handle) this.trainingWatch = undefined;
        }
      })();
    } catch (err) {
      this.logger.warn('cannot watch training jobs', { err });
    }
  }

  private async pollDevices(): Promise<void> {
    if (!this.profiler) return;
    try {
      this.devices = (await this.profiler.listDevices()).map(deviceView);
      this.setStatus('latency-profiler', true);
    } catch (err) {
      this.setStatus('latency-profiler', false, (err as grpc.ServiceError).details ?? String(err));
    }
  }

  private async pollWeightGenerator(): Promise<void> {
    if (!this.wg) return;
    try {
      await unary(
        this.wg,
        this.wg.listPruningNets,
        weightgen.ListPruningNetsRequest.fromPartial({ pageSize: 1, latestOnly: true }),
      );
      this.setStatus('weight-generator', true);
    } catch (err) {
      this.setStatus('weight-generator', false, (err as grpc.ServiceError).details ?? String(err));
    }
  }

  private async pollExports(): Promise<void> {
    if (!this.o.exportRoot) return;
    this.exports = await listExports(this.o.exportRoot).catch(() => []);
  }

  /** Emits 'overview' if it changed; throttled to one per 200 ms unless `now`. */
  private flush(now: boolean): void {
    if (this.closed) return;
    const emit = () => {
      this.flushTimer = undefined;
      const ov = this.overview();
      const { time: _t, ...rest } = ov;
      const json = JSON.stringify(rest);
      if (json === this.lastOverview) return;
      this.lastOverview = json;
      this.emit('overview', ov);
    };
    if (now) {
      if (this.flushTimer) clearTimeout(this.flushTimer);
      emit();
    } else {
      this.flushTimer ??= setTimeout(emit, 200);
    }
  }

  // --- on demand -----------------------------------------------------------------------

  private requireController(): controller.SearchServiceClient {
    if (!this.search) throw new HttpError(404, 'this console has no controller configured');
    return this.search;
  }

  private async getSearch(id: string): Promise<controller.Search> {
    const client = this.requireController();
    const cached = this.details.get(id);
    const terminal = cached && isTerminalSearch(cached.search.progress?.state ?? 0);
    if (cached && (terminal || Date.now() - cached.at < 1000)) return cached.search;
    try {
      const res: controller.GetSearchResponse = await unary(
        client,
        client.getSearch,
        controller.GetSearchRequest.fromPartial({ searchId: id }),
      );
      if (!res.search) throw new HttpError(502, 'GetSearch answered without a search');
      this.details.set(id, { at: Date.now(), search: res.search });
      if (this.details.size > 100) this.details.delete(this.details.keys().next().value!);
      return res.search;
    } catch (err) {
      throw httpErrorOf(err, 'the controller');
    }
  }

  /** PruningNet top-1 of the uniform networks, from the evaluation memo, where known. */
  private async uniformScores(s: controller.Search, net: Network): Promise<Map<number, number>> {
    const id = s.searchId;
    const terminal = isTerminalSearch(s.progress?.state ?? 0);
    const cached = this.uniformTop1.get(id);
    if (cached && (terminal || Date.now() - cached.at < 10_000)) return cached.map;
    const map = new Map<number, number>();
    const req = s.request;
    if (!req || !this.pruningnets || !this.o.nc || !this.jsm) return map;
    try {
      if (!this.memo) {
        await this.jsm.streams.info(MEMO_STREAM);
        this.memo = await new Kvm(this.o.nc).open(NATS_NAMES.memoBucket);
      }
      const pn = await this.pruningnets.resolve(req.pruningnetId, req.pruningnetVersion);
      const settings = resolveEvaluationSettings(req.evaluation);
      await Promise.all(
        uniformCurve(net).map(async (u) => {
          const jobId = evaluationJobId({
            pruningnetId: pn.pruningnetId,
            pruningnetVersion: pn.version,
            network: net,
            encoding: net.genes.map(() => u.scaleId),
            settings,
            data: pn.data,
          });
          const e = await this.memo!.get(jobId);
          if (e?.operation !== 'PUT') return;
          const top1 = (e.json() as { top1?: unknown }).top1;
          if (typeof top1 === 'number' && Number.isFinite(top1)) map.set(u.scaleId, top1);
        }),
      );
    } catch (err) {
      this.logger.debug('uniform baseline not available', { searchId: id, err });
    }
    this.uniformTop1.set(id, { at: Date.now(), map });
    return map;
  }

  private async predictorFor(
    deviceId: string,
    net: Network,
    backend = '',
    batchSize = 0,
  ): Promise<{ predictor: LatencyPredictor; table: LatencyTable }> {
    if (!this.profiler) throw new HttpError(404, 'this console has no latency profiler configured');
    const key = `${deviceId}|${tableKeyString(net.spec, backend, batchSize)}`;
    const hit = this.predictors.get(key);
    if (hit && Date.now() - hit.at < 30_000) return hit;
    let table: LatencyTable;
    try {
      table = await this.profiler.getTable(deviceId, { network: net.spec, backend, batchSize });
    } catch (err) {
      throw httpErrorOf(err, 'the latency profiler');
    }
    try {
      const entry = { at: Date.now(), predictor: latencyPredictor(net, table), table };
      this.predictors.set(key, entry);
      return entry;
    } catch (err) {
      throw new HttpError(
        409,
        `the latency table of device ${deviceId} does not fit this network: ${(err as Error).message}`,
      );
    }
  }

  /**
   * A search with its Pareto front, winners, uniform baseline; latencies on `deviceId`
   * (or on the device of its first latency budget) when asked or available.
   */
  async searchDetail(id: string, opts: { deviceId?: string } = {}): Promise<SearchDetail> {
    const s = await this.getSearch(id);
    const net = networkFromProto(s.request?.network);
    const uniformTop1 = await this.uniformScores(s, net);
    const budgetDevice = s.request?.budgets.find((b) => b.maxLatencyMs !== undefined);
    let latencyOf: ((enc: Encoding) => number) | undefined;
    let latencyInfo: SearchDetail['latency'];
    const deviceId = opts.deviceId || budgetDevice?.latencyDeviceId;
    if (deviceId && this.profiler) {
      try {
        const backend = opts.deviceId ? '' : (budgetDevice?.latencyBackend ?? '');
        const batch = opts.deviceId ? 0 : (budgetDevice?.latencyBatchSize ?? 0);
        const { predictor, table } = await this.predictorFor(deviceId, net, backend, batch);
        latencyOf = (enc) => predictor.predict(enc);
        latencyInfo = {
          deviceId,
          backend: table.backend,
          batchSize: table.batchSize,
          version: table.version ?? 0,
        };
      } catch (err) {
        if (opts.deviceId) throw err;
        // the budget's device lost its table: show MACs only
      }
    }
    const live = this.searches.get(id);
    return searchDetail(s, {
      evaluationsPerSecond: live ? live.meter.rate(Date.now()) : 0,
      uniformTop1,
      ...(latencyOf ? { latencyOf } : {}),
      ...(latencyInfo ? { latency: latencyInfo } : {}),
    });
  }

  private async networkOf(id: string): Promise<{ net: Network; search: controller.Search }> {
    const live = this.searches.get(id);
    const search = live?.search.request ? live.search : await this.getSearch(id);
    try {
      return { net: networkFromProto(search.request?.network), search };
    } catch (err) {
      throw new HttpError(502, `search ${id} has no usable network: ${(err as Error).message}`);
    }
  }

  private static encodingOf(net: Network, genes: unknown): Encoding {
    try {
      return validateEncoding(net, Array.isArray(genes) ? genes : [], 'genes');
    } catch (err) {
      if (err instanceof ValidationError) throw new HttpError(400, err.message, err.field);
      throw err;
    }
  }

  /** A candidate's per-layer widths against the uniform network of about the same MACs. */
  async widths(id: string, genes: unknown): Promise<WidthsView> {
    const { net } = await this.networkOf(id);
    return widthsView(net, Hub.encodingOf(net, genes));
  }

  /** Exports a candidate of a search as a plain tfjs model under `console/<search>/`. */
  async exportCandidate(
    id: string,
    genes: unknown,
  ): Promise<{
    path: string;
    downloadPath?: string;
    sizeBytes: number;
    macs: number;
    params: number;
    version: number;
  }> {
    const wg = this.wgExport;
    if (!wg) throw new HttpError(404, 'this console has no weight generator configured');
    const { net, search } = await this.networkOf(id);
    const enc = Hub.encodingOf(net, genes);
    let res: weightgen.ExportNetworkResponse;
    try {
      res = await unary(
        wg,
        wg.exportNetwork,
        weightgen.ExportNetworkRequest.fromPartial({
          pruningnetId: search.request?.pruningnetId ?? '',
          version: search.request?.pruningnetVersion ?? 0,
          encoding: { genes: [...enc] },
          outputDir: `console/${id.replace(/[^A-Za-z0-9._-]/g, '_')}`,
        }),
        600_000,
      );
    } catch (err) {
      throw httpErrorOf(err, 'the weight generator');
    }
    let downloadPath: string | undefined;
    if (this.o.exportRoot) {
      const root = resolve(this.o.exportRoot);
      const dir = resolve(dirname(res.path));
      if (dir.startsWith(root + sep)) downloadPath = relative(root, dir).split(sep).join('/');
      await this.pollExports();
      this.flush(true);
    }
    return {
      path: res.path,
      ...(downloadPath ? { downloadPath } : {}),
      sizeBytes: res.sizeBytes,
      macs: res.macs,
      params: res.params,
      version: res.version,
    };
  }

  // --- devices -------------------------------------------------------------------------

  private requireProfiler(): LatencyProfilerClient {
    if (!this.profiler) throw new HttpError(404, 'this console has no latency profiler configured');
    return this.profiler;
  }

  async devicesNow(): Promise<DeviceView[]> {
    await this.pollDevices();
    this.flush(true);
    return this.devices;
  }

  /** One table of a device, as per-layer (Cin, Cout) grids. */
  async table(deviceId: string, keyJson: unknown, version: number): Promise<TableView> {
    const profiler = this.requireProfiler();
    let key: latency.LatencyTableKey;
    let network: ReturnType<typeof specFromProto>;
    try {
      key = latency.LatencyTableKey.fromJSON(keyJson);
      network = specFromProto(key.network, 'key.network');
    } catch (err) {
      throw new HttpError(400, (err as Error).message, (err as ValidationError).field);
    }
    let t: LatencyTable;
    try {
      t = await profiler.getTable(
        deviceId,
        { network, backend: key.backend, batchSize: key.batchSize },
        version,
      );
    } catch (err) {
      throw httpErrorOf(err, 'the latency profiler');
    }
    const byLayer = new Map<string, LatencyTable['rows'][number][]>();
    for (const r of t.rows) {
      let list = byLayer.get(r.layer);
      if (!list) {
        list = [];
        byLayer.set(r.layer, list);
      }
      list.push(r);
    }
    const net = buildNetwork(network);
    const order = net.layers.map((l) => l.name).filter((n) => byLayer.has(n));
    const layers: LayerGrid[] = order.map((name) => {
      const rows = byLayer.get(name)!;
      const first = rows[0]!;
      const cins = [...new Set(rows.map((r) => r.cin))].sort((a, b) => a - b);
      const couts = [...new Set(rows.map((r) => r.cout))].sort((a, b) => a - b);
      const at = new Map(rows.map((r) => [`${r.cin}|${r.cout}`, r.medianMs]));
      return {
        layer: name,
        kind: first.kind,
        kernel: first.kernel,
        stride: first.stride,
        inSize: first.inSize,
        cins,
        couts,
        medianMs: cins.map((ci) => couts.map((co) => at.get(`${ci}|${co}`) ?? null)),
      };
    });
    return {
      deviceId,
      network: `${network.family}/${network.preset} x${network.width} ${network.inputSize}x${network.inputSize}x${network.inputChannels}, ${network.numClasses} classes`,
      backend: t.backend,
      batchSize: t.batchSize,
      version: t.version ?? version,
      constantMs: t.constantMs,
      interpolated: t.interpolated,
      warmupRuns: t.warmupRuns,
      ...(t.measuredAt ? { measureTime: t.measuredAt } : {}),
      rowCount: t.rows.length,
      layers,
    };
  }

  /** RegisterDevice; `bearer` (from the browser) or the configured registration token. */
  async registerDevice(
    name: string,
    description: string,
    bearer?: string,
    /** Whether the caller proved itself to the console: only then its own token is lent. */
    authenticated = false,
  ): Promise<{ device: DeviceView; token: string }> {
    this.requireProfiler();
    const token = bearer ?? (authenticated ? this.o.registrationToken : undefined);
    const client = new LatencyProfilerClient(this.o.latencyProfiler!, {
      ...(token ? { bearerToken: token } : {}),
    });
    try {
      const res = await client.registerDevice(name, description);
      if (!res.device) throw new HttpError(502, 'RegisterDevice answered without a device');
      void this.devicesNow().catch(() => {});
      return { device: deviceView(res.device), token: res.token };
    } catch (err) {
      throw httpErrorOf(err, 'the latency profiler');
    } finally {
      client.close();
    }
  }

  /** UploadLatencyTable with the device's token; `table` is a core LatencyTable as JSON. */
  async uploadTable(
    deviceId: string,
    token: string,
    table: unknown,
  ): Promise<{ version: number; rowCount: number }> {
    const profiler = this.requireProfiler();
    if (
      typeof table !== 'object' ||
      table === null ||
      !Array.isArray((table as LatencyTable).rows)
    ) {
      throw new HttpError(400, 'the body must be a latency table with rows', 'table');
    }
    let wire: latency.LatencyTable;
    try {
      wire = tableToProto(table as LatencyTable);
    } catch (err) {
      throw new HttpError(400, `malformed table: ${(err as Error).message}`, 'table');
    }
    try {
      const res = await profiler.uploadTable(deviceId, token, wire);
      void this.devicesNow().catch(() => {});
      return { version: res.version, rowCount: res.rowCount };
    } catch (err) {
      throw httpErrorOf(err, 'the latency profiler');
    }
  }
}
