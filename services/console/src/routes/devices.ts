/**
 * The console's device commands: a device's latency tables as per-layer grids, device
 * registration and table upload (from the browser profiler), and latency predictors for
 * the search views. Everything goes through the latency profiler's API.
 */
import {
  buildNetwork,
  type LatencyPredictor,
  type LatencyTable,
  latencyPredictor,
  type Network,
  type ValidationError,
} from '@metaprune/core';
import { latency } from '@metaprune/proto';
import {
  LatencyProfilerClient,
  specFromProto,
  tableKeyString,
  tableToProto,
} from '@metaprune/wire';
import { HttpError, httpErrorOf } from '../backends.js';
import { pollDevices } from '../pollers/devices.js';
import type { ConsoleStore } from '../store.js';
import { type DeviceView, deviceView } from '../views.js';

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

export interface DeviceRoutesOptions {
  profiler?: LatencyProfilerClient;
  /** The profiler's address (RegisterDevice opens a client with the caller's token). */
  address?: string;
  /** Bearer token sent with RegisterDevice when the browser gives none. */
  registrationToken?: string;
}

export class DeviceRoutes {
  private readonly predictors = new Map<
    string,
    { at: number; predictor: LatencyPredictor; table: LatencyTable }
  >();

  constructor(
    private readonly o: DeviceRoutesOptions,
    private readonly store: ConsoleStore,
  ) {}

  private requireProfiler(): LatencyProfilerClient {
    if (!this.o.profiler)
      throw new HttpError(404, 'this console has no latency profiler configured');
    return this.o.profiler;
  }

  /** A latency predictor of `net` on a device (cached for 30 s). */
  async predictorFor(
    deviceId: string,
    net: Network,
    backend = '',
    batchSize = 0,
  ): Promise<{ predictor: LatencyPredictor; table: LatencyTable }> {
    const profiler = this.requireProfiler();
    const key = `${deviceId}|${tableKeyString(net.spec, backend, batchSize)}`;
    const hit = this.predictors.get(key);
    if (hit && Date.now() - hit.at < 30_000) return hit;
    let table: LatencyTable;
    try {
      table = await profiler.getTable(deviceId, { network: net.spec, backend, batchSize });
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

  async devicesNow(): Promise<DeviceView[]> {
    if (this.o.profiler) await pollDevices(this.o.profiler, this.store);
    this.store.flush(true);
    return this.store.devices;
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
    const client = new LatencyProfilerClient(this.o.address!, {
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
