/**
 * A promise-based client of LatencyProfilerService, plus the one call a search needs:
 * fetch a device's table once and compile core's predictor locally (thousands of
 * candidates per second, no RPC per candidate).
 */
import {
  type ChannelCredentials,
  type ChannelOptions,
  Metadata,
  type ServiceError,
} from '@grpc/grpc-js';
import {
  buildNetwork,
  type LatencyPredictor,
  type LatencyTable,
  latencyPredictor,
  type Network,
  type NetworkSpec,
} from '@metaprune/core';
import { latency } from '@metaprune/proto';
import { envClient, grpcClientOptions } from '@metaprune/runtime';
import { tableFromProto, tableToProto } from '../latency-table.js';
import { specToProto } from '../spec.js';

export interface LatencyClientOptions {
  credentials?: ChannelCredentials;
  /** Extra channel options (e.g. a TLS server name override). */
  channelOptions?: ChannelOptions;
  /** Deadline per call (default 30 s). */
  timeoutMs?: number;
  /** Sent as `authorization: Bearer <token>` (RegisterDevice when the service requires it). */
  bearerToken?: string;
}

type Unary<Req, Res> = (
  req: Req,
  meta: Metadata,
  opts: { deadline: Date },
  cb: (err: ServiceError | null, res: Res) => void,
) => unknown;

export class LatencyProfilerClient {
  readonly raw: latency.LatencyProfilerServiceClient;
  private readonly timeoutMs: number;
  private readonly bearer: string | undefined;

  constructor(
    readonly address: string,
    opts: LatencyClientOptions = {},
  ) {
    // without explicit credentials: METAPRUNE_TLS_* and METAPRUNE_TOKEN from the environment
    const env = envClient({ ...grpcClientOptions(), ...opts.channelOptions });
    this.raw = new latency.LatencyProfilerServiceClient(
      address,
      opts.credentials ?? env.credentials,
      env.options,
    );
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.bearer = opts.bearerToken;
  }

  private call<Req, Res>(method: Unary<Req, Res>, req: Req): Promise<Res> {
    const meta = new Metadata();
    if (this.bearer) meta.set('authorization', `Bearer ${this.bearer}`);
    return new Promise((resolve, reject) => {
      method.call(
        this.raw,
        req,
        meta,
        { deadline: new Date(Date.now() + this.timeoutMs) },
        (err, res) => (err ? reject(err) : resolve(res)),
      );
    });
  }

  registerDevice(name: string, description = ''): Promise<latency.RegisterDeviceResponse> {
    return this.call(
      this.raw.registerDevice as Unary<
        latency.RegisterDeviceRequest,
        latency.RegisterDeviceResponse
      >,
      {
        name,
        description,
      },
    );
  }

  uploadTable(
    deviceId: string,
    token: string,
    table: LatencyTable | latency.LatencyTable,
  ): Promise<latency.UploadLatencyTableResponse> {
    const wire =
      'rows' in table && 'fingerprint' in table
        ? tableToProto(table)
        : (table as latency.LatencyTable);
    return this.call(
      this.raw.uploadLatencyTable as Unary<
        latency.UploadLatencyTableRequest,
        latency.UploadLatencyTableResponse
      >,
      { deviceId, token, table: wire },
    );
  }

  async getTable(
    deviceId: string,
    key: { network: NetworkSpec; backend?: string; batchSize?: number },
    version = 0,
  ): Promise<LatencyTable> {
    const res = await this.call(
      this.raw.getLatencyTable as Unary<
        latency.GetLatencyTableRequest,
        latency.GetLatencyTableResponse
      >,
      {
        deviceId,
        key: {
          network: specToProto(key.network),
          backend: key.backend ?? '',
          batchSize: key.batchSize ?? 0,
        },
        version,
      },
    );
    if (!res.table) throw new Error('GetLatencyTable answered without a table');
    return tableFromProto(res.table);
  }

  async listDevices(): Promise<latency.Device[]> {
    const all: latency.Device[] = [];
    let pageToken = '';
    do {
      const res = await this.call(
        this.raw.listDevices as Unary<latency.ListDevicesRequest, latency.ListDevicesResponse>,
        { pageSize: 1000, pageToken },
      );
      all.push(...res.devices);
      pageToken = res.nextPageToken;
    } while (pageToken);
    return all;
  }

  /** The device with this name or id, or undefined. */
  async findDevice(nameOrId: string): Promise<latency.Device | undefined> {
    return (await this.listDevices()).find((d) => d.name === nameOrId || d.deviceId === nameOrId);
  }

  predict(
    deviceId: string,
    key: { network: NetworkSpec; backend?: string; batchSize?: number },
    encoding: readonly number[],
    opts: { version?: number; includeLayers?: boolean } = {},
  ): Promise<latency.PredictLatencyResponse> {
    return this.call(
      this.raw.predictLatency as Unary<
        latency.PredictLatencyRequest,
        latency.PredictLatencyResponse
      >,
      {
        deviceId,
        key: {
          network: specToProto(key.network),
          backend: key.backend ?? '',
          batchSize: key.batchSize ?? 0,
        },
        version: opts.version ?? 0,
        encoding: { genes: [...encoding] },
        includeLayers: opts.includeLayers ?? false,
      },
    );
  }

  close(): void {
    this.raw.close();
  }
}

export interface FetchPredictorOptions extends LatencyClientOptions {
  /** Device name or id. */
  device: string;
  network: Network | NetworkSpec;
  /** Empty/undefined: the device's most recently uploaded table for the network. */
  backend?: string;
  /** 0/undefined: any batch size (most recent). */
  batchSize?: number;
  version?: number;
}

/**
 * Fetches a device's table from the profiler at `address` and compiles it: the controller
 * calls this once per search (per latency budget's device) and then
 * `predictor.predict(encoding)` per candidate, or `latencyCostOf(predictor)` as `costOf`.
 */
export async function fetchLatencyPredictor(
  address: string,
  opts: FetchPredictorOptions,
): Promise<{ predictor: LatencyPredictor; table: LatencyTable; deviceId: string }> {
  const client = new LatencyProfilerClient(address, opts);
  try {
    const dev = await client.findDevice(opts.device);
    if (!dev) throw new Error(`latency profiler at ${address} has no device named ${opts.device}`);
    const net = 'layers' in opts.network ? opts.network : buildNetwork(opts.network);
    const table = await client.getTable(
      dev.deviceId,
      {
        network: net.spec,
        ...(opts.backend !== undefined ? { backend: opts.backend } : {}),
        ...(opts.batchSize !== undefined ? { batchSize: opts.batchSize } : {}),
      },
      opts.version ?? 0,
    );
    return { predictor: latencyPredictor(net, table), table, deviceId: dev.deviceId };
  } finally {
    client.close();
  }
}
