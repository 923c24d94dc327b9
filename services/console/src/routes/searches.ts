/**
 * The console's search commands: a search with its Pareto front, winners and uniform
 * baseline (GetSearch, and GetEvaluations for the baseline's PruningNet scores), a
 * candidate's per-layer widths, and exporting a candidate through the weight generator.
 */
import { dirname, relative, resolve, sep } from 'node:path';
import { type Encoding, type Network, ValidationError, validateEncoding } from '@metaprune/core';
import { controller, weightgen } from '@metaprune/proto';
import type { Logger } from '@metaprune/runtime';
import { networkFromProto, type SearchClient, unary } from '@metaprune/wire';
import { HttpError, httpErrorOf } from '../backends.js';
import { type ConsoleClients, READ_DEADLINE_MS } from '../clients.js';
import type { ConsoleStore } from '../store.js';
import {
  isTerminalSearch,
  type SearchDetail,
  searchDetail,
  uniformCurve,
  type WidthsView,
  widthsView,
} from '../views.js';
import type { DeviceRoutes } from './devices.js';

export interface SearchRoutesOptions {
  clients: ConsoleClients;
  devices: DeviceRoutes;
  exportRoot?: string;
  /** Refreshes the export list after an export (the overview shows it). */
  refreshExports: () => Promise<void>;
  logger: Logger;
}

export interface ExportedCandidate {
  path: string;
  downloadPath?: string;
  sizeBytes: number;
  macs: number;
  params: number;
  version: number;
}

export class SearchRoutes {
  private readonly details = new Map<string, { at: number; search: controller.Search }>();
  private readonly uniformTop1 = new Map<string, { at: number; map: Map<number, number> }>();

  constructor(
    private readonly o: SearchRoutesOptions,
    private readonly store: ConsoleStore,
  ) {}

  /** Drops a cached search (it changed state). */
  forget(id: string): void {
    this.details.delete(id);
  }

  private requireController(): SearchClient {
    if (!this.o.clients.search)
      throw new HttpError(404, 'this console has no controller configured');
    return this.o.clients.search;
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
        { timeoutMs: READ_DEADLINE_MS },
      );
      if (!res.search) throw new HttpError(502, 'GetSearch answered without a search');
      this.details.set(id, { at: Date.now(), search: res.search });
      if (this.details.size > 100) this.details.delete(this.details.keys().next().value!);
      return res.search;
    } catch (err) {
      throw httpErrorOf(err, 'the controller');
    }
  }

  /** PruningNet top-1 of the uniform networks, from the controller's evaluation memo. */
  private async uniformScores(s: controller.Search, net: Network): Promise<Map<number, number>> {
    const id = s.searchId;
    const terminal = isTerminalSearch(s.progress?.state ?? 0);
    const cached = this.uniformTop1.get(id);
    if (cached && (terminal || Date.now() - cached.at < 10_000)) return cached.map;
    const map = new Map<number, number>();
    const client = this.o.clients.search;
    if (!client) return map;
    const curve = uniformCurve(net);
    try {
      const res: controller.GetEvaluationsResponse = await unary(
        client,
        client.getEvaluations,
        controller.GetEvaluationsRequest.fromPartial({
          searchId: id,
          encodings: curve.map((u) => ({ genes: net.genes.map(() => u.scaleId) })),
        }),
        { timeoutMs: READ_DEADLINE_MS },
      );
      res.evaluations.forEach((e, i) => {
        const u = curve[i];
        if (u && e.found && Number.isFinite(e.top1)) map.set(u.scaleId, e.top1);
      });
    } catch (err) {
      this.o.logger.debug('uniform baseline not available', { searchId: id, err });
    }
    this.uniformTop1.set(id, { at: Date.now(), map });
    return map;
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
    if (deviceId && this.o.clients.profiler) {
      try {
        const backend = opts.deviceId ? '' : (budgetDevice?.latencyBackend ?? '');
        const batch = opts.deviceId ? 0 : (budgetDevice?.latencyBatchSize ?? 0);
        const { predictor, table } = await this.o.devices.predictorFor(
          deviceId,
          net,
          backend,
          batch,
        );
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
    const live = this.store.searches.get(id);
    return searchDetail(s, {
      evaluationsPerSecond: live ? live.meter.rate(Date.now()) : 0,
      uniformTop1,
      ...(latencyOf ? { latencyOf } : {}),
      ...(latencyInfo ? { latency: latencyInfo } : {}),
    });
  }

  private async networkOf(id: string): Promise<{ net: Network; search: controller.Search }> {
    const live = this.store.searches.get(id);
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
    return widthsView(net, SearchRoutes.encodingOf(net, genes));
  }

  /** Exports a candidate of a search as a plain tfjs model under `console/<search>/`. */
  async exportCandidate(id: string, genes: unknown): Promise<ExportedCandidate> {
    const wg = this.o.clients.wgExport;
    if (!wg) throw new HttpError(404, 'this console has no weight generator configured');
    const { net, search } = await this.networkOf(id);
    const enc = SearchRoutes.encodingOf(net, genes);
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
        { timeoutMs: 600_000 },
      );
    } catch (err) {
      throw httpErrorOf(err, 'the weight generator');
    }
    let downloadPath: string | undefined;
    if (this.o.exportRoot) {
      const root = resolve(this.o.exportRoot);
      const dir = resolve(dirname(res.path));
      if (dir.startsWith(root + sep)) downloadPath = relative(root, dir).split(sep).join('/');
      await this.o.refreshExports();
      this.store.flush(true);
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
}
