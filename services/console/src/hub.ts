/**
 * The console's live view of the stack, assembled from its parts: the pollers (searches
 * from the controller, training jobs from the weight generator, devices from the latency
 * profiler, the evaluation queue from JetStream, exported models from the export root)
 * write into the {@link ConsoleStore}; the routes answer the HTTP commands through the
 * services' gRPC APIs. Emits 'overview' and 'search' (see ConsoleStore).
 */
import { EventEmitter } from 'node:events';
import type { Logger } from '@metaprune/runtime';
import { nullLogger } from '@metaprune/runtime';
import { type JetStreamManager, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { type ConsoleClients, closeClients, connectClients } from './clients.js';
import { listExports } from './exports.js';
import { pollDevices } from './pollers/devices.js';
import { pollQueue } from './pollers/queue.js';
import { SearchPoller } from './pollers/searches.js';
import { TrainingPoller } from './pollers/training.js';
import { DeviceRoutes } from './routes/devices.js';
import { type ExportedCandidate, SearchRoutes } from './routes/searches.js';
import { ConsoleStore } from './store.js';
import type { DeviceView, Overview, SearchDetail, WidthsView } from './views.js';

export type { LayerGrid, TableView } from './routes/devices.js';

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

/** Devices and exported models are polled every 5th tick. */
const SLOW_EVERY = 5;

export class Hub extends EventEmitter {
  private readonly logger: Logger;
  private readonly store: ConsoleStore;
  private readonly clients: ConsoleClients;
  private readonly searchPoller?: SearchPoller;
  private readonly trainingPoller?: TrainingPoller;
  private readonly deviceRoutes: DeviceRoutes;
  private readonly searchRoutes: SearchRoutes;
  private jsm: JetStreamManager | undefined;
  private timer: NodeJS.Timeout | undefined;
  private tick = 0;
  private polling: Promise<void> | undefined;

  constructor(private readonly o: HubOptions) {
    super();
    this.setMaxListeners(0);
    this.logger = o.logger ?? nullLogger;
    this.clients = connectClients(o);
    this.store = new ConsoleStore({
      exportsEnabled: o.exportRoot !== undefined && o.exportRoot !== '',
      profilerEnabled: this.clients.profiler !== undefined,
      ...(o.nc ? { natsOpen: () => !o.nc!.isClosed() } : {}),
    });
    // the store's events are the hub's
    this.store.on('overview', (ov) => this.emit('overview', ov));
    this.store.on('search', (id, summary) => this.emit('search', id, summary));
    if (o.controller) this.store.addService('controller', o.controller);
    if (o.weightGenerator) this.store.addService('weight-generator', o.weightGenerator);
    if (o.latencyProfiler) this.store.addService('latency-profiler', o.latencyProfiler);
    if (o.nc) this.store.addService('nats', o.nc.getServer(), true);
    this.deviceRoutes = new DeviceRoutes(
      {
        ...(this.clients.profiler ? { profiler: this.clients.profiler } : {}),
        ...(o.latencyProfiler ? { address: o.latencyProfiler } : {}),
        ...(o.registrationToken ? { registrationToken: o.registrationToken } : {}),
      },
      this.store,
    );
    this.searchRoutes = new SearchRoutes(
      {
        clients: this.clients,
        devices: this.deviceRoutes,
        ...(o.exportRoot ? { exportRoot: o.exportRoot } : {}),
        refreshExports: () => this.pollExports(),
        logger: this.logger,
      },
      this.store,
    );
    if (this.clients.search) {
      this.searchPoller = new SearchPoller(this.clients.search, this.store, (id) =>
        this.searchRoutes.forget(id),
      );
    }
    if (this.clients.wg) {
      this.trainingPoller = new TrainingPoller(this.clients.wg, this.store, this.logger);
    }
  }

  get profilerEnabled(): boolean {
    return this.clients.profiler !== undefined;
  }

  /** First poll (so the first page already has data), then every `pollMs`. */
  async start(): Promise<void> {
    if (this.o.nc) {
      try {
        this.jsm = await jetstreamManager(this.o.nc);
      } catch (err) {
        this.logger.warn('JetStream is not available: no evaluation queue', { err });
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
    if (this.timer) clearInterval(this.timer);
    this.store.closed = true;
    await this.polling?.catch(() => {});
    this.store.close();
    closeClients(this.clients);
    this.removeAllListeners();
  }

  overview(): Overview {
    return this.store.overview();
  }

  private async pollOnce(): Promise<void> {
    if (this.store.closed) return;
    const slow = this.tick % SLOW_EVERY === 0;
    this.tick++;
    await Promise.all([
      this.searchPoller?.poll(),
      this.trainingPoller?.poll(),
      this.jsm ? pollQueue(this.jsm, this.store) : undefined,
      slow && this.clients.profiler ? pollDevices(this.clients.profiler, this.store) : undefined,
      slow ? this.pollExports() : undefined,
    ]);
    this.store.flush(true);
  }

  private async pollExports(): Promise<void> {
    if (!this.o.exportRoot) return;
    this.store.exports = await listExports(this.o.exportRoot).catch(() => []);
  }

  // --- routes --------------------------------------------------------------------------

  searchDetail(id: string, opts: { deviceId?: string } = {}): Promise<SearchDetail> {
    return this.searchRoutes.searchDetail(id, opts);
  }

  widths(id: string, genes: unknown): Promise<WidthsView> {
    return this.searchRoutes.widths(id, genes);
  }

  exportCandidate(id: string, genes: unknown): Promise<ExportedCandidate> {
    return this.searchRoutes.exportCandidate(id, genes);
  }

  devicesNow(): Promise<DeviceView[]> {
    return this.deviceRoutes.devicesNow();
  }

  table(deviceId: string, keyJson: unknown, version: number) {
    return this.deviceRoutes.table(deviceId, keyJson, version);
  }

  registerDevice(name: string, description: string, bearer?: string, authenticated = false) {
    return this.deviceRoutes.registerDevice(name, description, bearer, authenticated);
  }

  uploadTable(deviceId: string, token: string, table: unknown) {
    return this.deviceRoutes.uploadTable(deviceId, token, table);
  }
}
