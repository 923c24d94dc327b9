/**
 * The console's state: what the pollers last saw of each service. Emits 'overview' (an
 * {@link Overview}) when anything changed, at most every 200 ms, and 'search' (id,
 * summary) on each progress message of a watched search. Pollers write here; the HTTP
 * routes and the event stream read here.
 */
import { EventEmitter } from 'node:events';
import type * as grpc from '@grpc/grpc-js';
import type { controller, weightgen } from '@metaprune/proto';
import {
  type DeviceView,
  type ExportView,
  type Overview,
  type QueueView,
  RateMeter,
  type SearchSummary,
  type ServiceStatus,
  searchSummary,
  type TrainingView,
  trainingView,
} from './views.js';

export interface LiveSearch {
  search: controller.Search;
  meter: RateMeter;
  watch?: grpc.ClientReadableStream<controller.WatchSearchResponse>;
  /** Do not (re)open a watch before this time (ms). */
  watchAfter: number;
}

export interface LiveTraining {
  job: weightgen.TrainingJob;
  /** The last validation accuracy reported (progress reports between epochs carry none). */
  val?: number;
  watch?: grpc.ClientReadableStream<weightgen.WatchTrainingResponse>;
  watchAfter: number;
}

export interface StoreOptions {
  exportsEnabled: boolean;
  profilerEnabled: boolean;
  /** Whether the NATS connection is still open (for the 'nats' service row). */
  natsOpen?: () => boolean;
}

export class ConsoleStore extends EventEmitter {
  readonly searches = new Map<string, LiveSearch>();
  /** Search ids in the controller's order (newest first). */
  order: string[] = [];
  readonly training = new Map<string, LiveTraining>();
  devices: DeviceView[] = [];
  exports: ExportView[] = [];
  queue: QueueView | undefined;
  readonly resultsMeter = new RateMeter(10_000);
  private readonly status = new Map<string, ServiceStatus>();
  private readonly failures = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | undefined;
  private lastOverview = '';
  closed = false;

  constructor(private readonly o: StoreOptions) {
    super();
    this.setMaxListeners(0);
  }

  /** A service row of the overview (shown down until its first successful poll). */
  addService(name: string, address: string, ok = false): void {
    this.status.set(name, { name, address, ok });
  }

  /** A service shows as down after two failed polls in a row (one slow answer is not). */
  setStatus(name: string, ok: boolean, error?: string): void {
    const s = this.status.get(name);
    if (!s) return;
    const failures = ok ? 0 : (this.failures.get(name) ?? 0) + 1;
    this.failures.set(name, failures);
    if (!ok && failures < 2 && s.ok) return;
    s.ok = ok;
    if (error === undefined) delete s.error;
    else s.error = error;
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
    const nats = this.status.get('nats');
    if (nats && this.o.natsOpen) nats.ok = this.o.natsOpen();
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
      exportsEnabled: this.o.exportsEnabled,
      profilerEnabled: this.o.profilerEnabled,
    };
  }

  /** Emits 'overview' if it changed; throttled to one per 200 ms unless `now`. */
  flush(now: boolean): void {
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

  close(): void {
    this.closed = true;
    if (this.flushTimer) clearTimeout(this.flushTimer);
    for (const s of this.searches.values()) s.watch?.cancel();
    for (const t of this.training.values()) t.watch?.cancel();
    this.removeAllListeners();
  }
}
