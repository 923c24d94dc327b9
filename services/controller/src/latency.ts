/**
 * Latency tables for latency budgets: a search's budgets name a device (and optionally a
 * backend and batch size); the controller fetches that device's table for the search's
 * network from the latency profiler once, compiles core's LatencyPredictor and predicts every
 * generated candidate locally (no RPC per candidate). The table version used is stored with
 * the search, so a resumed search predicts with the same table even after newer uploads.
 */
import { type ServiceError, status } from '@grpc/grpc-js';
import {
  buildNetwork,
  LatencyPredictor,
  type LatencyTable,
  type Network,
  type NetworkSpec,
  ValidationError,
} from '@metaprune/core';
import {
  LatencyProfilerClient,
  networkKeyString,
  specFromProto,
  tableKeyString,
} from '@metaprune/latency-profiler';
import type { latency } from '@metaprune/proto';
import {
  type ClientSecurity,
  FailedPreconditionError,
  InvalidArgumentError,
  UnavailableError,
} from '@metaprune/runtime';

/** Which table a search's latency budgets use (all of them use the same one). */
export interface LatencyQuery {
  /** Device id or name, as the budgets give it. */
  device: string;
  /** Table backend; empty: the device's most recently uploaded table for the network. */
  backend: string;
  /** Batch size of the table, >= 1. */
  batchSize: number;
  /** Table version; 0: the latest. */
  version: number;
}

/** The table a search was started with: stored in the search record (SearchContext). */
export interface LatencyTableRef {
  /** The device as the budgets named it. */
  device: string;
  deviceId: string;
  backend: string;
  batchSize: number;
  version: number;
  /** Network fingerprint of the table. */
  fingerprint: string;
}

export interface ResolvedLatencyTable {
  predictor: LatencyPredictor;
  ref: LatencyTableRef;
}

/** Where latency tables come from: the latency profiler, or a fixed set in tests. */
export interface LatencyTableSource {
  /** Human-readable origin, used in messages ("the latency profiler at host:port"). */
  readonly description: string;
  /**
   * Fetches and compiles the table of `q` for `network`. Errors name `${field}.…`:
   * InvalidArgumentError for an unknown device, FailedPreconditionError when the device
   * has no such table (or it does not fit the network), UnavailableError when the source
   * cannot be reached.
   */
  resolve(q: LatencyQuery, network: Network, field: string): Promise<ResolvedLatencyTable>;
  close?(): void;
}

function sameSpec(a: NetworkSpec, b: NetworkSpec): boolean {
  return (
    a.family === b.family &&
    a.preset === b.preset &&
    a.width === b.width &&
    a.inputSize === b.inputSize &&
    a.inputChannels === b.inputChannels &&
    a.numClasses === b.numClasses &&
    a.layout === b.layout &&
    a.lastStageFull === b.lastStageFull
  );
}

const twins = new WeakMap<Network, Network | null>();

/**
 * The same network with `lastStageFull` flipped, when that changes nothing (MobileNets have
 * no residual stage to keep at full width): same layers, genes and blocks. A PruningNet
 * trained through the API with proto defaults (keep_last_stage_full false) and a table
 * measured by `metaprune profile` (core's default, true) then still meet. Undefined when
 * the flag matters (ResNet-50).
 */
export function latencyTwin(net: Network): Network | undefined {
  let twin = twins.get(net);
  if (twin === undefined) {
    const other = buildNetwork({ ...net.spec, lastStageFull: !net.spec.lastStageFull });
    const shape = (n: Network) => JSON.stringify([n.genes, n.layers, n.blocks]);
    twin = shape(other) === shape(net) ? other : null;
    twins.set(net, twin);
  }
  return twin ?? undefined;
}

/** The network a table of `spec` predicts for: `net`, or its twin when the table names it. */
function networkForTable(net: Network, spec: NetworkSpec): Network {
  if (sameSpec(net.spec, spec)) return net;
  const twin = latencyTwin(net);
  return twin && sameSpec(twin.spec, spec) ? twin : net;
}

function describeQuery(q: LatencyQuery, network: Network): string {
  return `${networkKeyString(network.spec)}${q.backend ? `, backend ${q.backend}` : ''}, batch size ${q.batchSize}${q.version ? `, version ${q.version}` : ''}`;
}

function unknownDevice(field: string, device: string, where: string): InvalidArgumentError {
  return new InvalidArgumentError(
    `${field}.latencyDeviceId`,
    `no device "${device}" is registered on ${where}; register it and upload its table with \`metaprune profile --device ${device} ...\``,
  );
}

function noTable(
  field: string,
  q: LatencyQuery,
  network: Network,
  has: readonly string[],
): FailedPreconditionError {
  return new FailedPreconditionError(
    `${field}.latencyDeviceId: device "${q.device}" has no latency table for ${describeQuery(q, network)} (it has ${has.length ? has.join('; ') : 'none'}); measure one with \`metaprune profile --device ${q.device}\` and the search's network flags`,
  );
}

/** Compiles a fetched table (validated against the network) into the search's predictor. */
export function compileLatencyTable(
  table: LatencyTable,
  deviceId: string,
  q: LatencyQuery,
  network: Network,
  field: string,
): ResolvedLatencyTable {
  let predictor: LatencyPredictor;
  try {
    predictor = new LatencyPredictor(networkForTable(network, table.network), table);
  } catch (err) {
    if (err instanceof ValidationError) {
      throw new FailedPreconditionError(
        `${field}.latencyDeviceId: the latency table of device "${q.device}" (${describeQuery(q, network)}) does not fit the search's network: ${err.message}`,
        { cause: err },
      );
    }
    throw err;
  }
  return {
    predictor,
    ref: {
      device: q.device,
      deviceId,
      backend: table.backend,
      batchSize: table.batchSize,
      version: table.version ?? 0,
      fingerprint: table.fingerprint,
    },
  };
}

/** Tables held in memory: unit tests and single-process use. */
export class StaticLatencyTables implements LatencyTableSource {
  readonly description = 'the in-memory latency tables';
  constructor(
    private readonly devices: readonly {
      deviceId: string;
      name: string;
      /** Each with `version` set; the most recently added last. */
      tables: readonly LatencyTable[];
    }[],
  ) {}

  async resolve(q: LatencyQuery, network: Network, field: string): Promise<ResolvedLatencyTable> {
    const dev = this.devices.find((d) => d.deviceId === q.device || d.name === q.device);
    if (!dev) throw unknownDevice(field, q.device, this.description);
    const twin = latencyTwin(network);
    const fits = dev.tables.filter(
      (t) =>
        (sameSpec(t.network, network.spec) || (twin && sameSpec(t.network, twin.spec))) &&
        (!q.backend || t.backend === q.backend) &&
        t.batchSize === q.batchSize,
    );
    const candidates = q.version ? fits.filter((t) => t.version === q.version) : fits;
    const table = candidates.at(-1);
    if (!table) {
      throw noTable(
        field,
        q,
        network,
        dev.tables.map((t) => `${tableKeyString(t.network, t.backend, t.batchSize)} v${t.version}`),
      );
    }
    return compileLatencyTable(table, dev.deviceId, q, network, field);
  }
}

/** Tables from the latency profiler (latency.v1.LatencyProfilerService at `address`). */
export class GrpcLatencyTables implements LatencyTableSource {
  readonly description: string;
  private readonly client: LatencyProfilerClient;

  constructor(
    readonly address: string,
    opts: { timeoutMs?: number; security?: ClientSecurity } = {},
  ) {
    this.description = `the latency profiler at ${address}`;
    this.client = new LatencyProfilerClient(address, {
      timeoutMs: opts.timeoutMs ?? 30_000,
      ...(opts.security
        ? { credentials: opts.security.credentials, channelOptions: opts.security.options }
        : {}),
    });
  }

  private rpcError(err: unknown, what: string): Error {
    const e = err as ServiceError;
    if (typeof e?.code !== 'number') return err instanceof Error ? err : new Error(String(err));
    if (e.code === status.UNAVAILABLE || e.code === status.DEADLINE_EXCEEDED) {
      return new UnavailableError(`${this.description} is unavailable (${what}: ${e.details})`, {
        cause: err,
      });
    }
    return new FailedPreconditionError(
      `${this.description} refused ${what}: ${status[e.code]}: ${e.details}`,
      { cause: err },
    );
  }

  async resolve(q: LatencyQuery, network: Network, field: string): Promise<ResolvedLatencyTable> {
    let dev: latency.Device | undefined;
    try {
      dev = await this.client.findDevice(q.device);
    } catch (err) {
      throw this.rpcError(err, 'ListDevices');
    }
    if (!dev) throw unknownDevice(field, q.device, this.description);
    let table: LatencyTable | undefined;
    const twin = latencyTwin(network);
    for (const net of twin ? [network, twin] : [network]) {
      try {
        table = await this.client.getTable(
          dev.deviceId,
          { network: net.spec, backend: q.backend, batchSize: q.batchSize },
          q.version,
        );
        break;
      } catch (err) {
        if ((err as ServiceError)?.code !== status.NOT_FOUND) {
          throw this.rpcError(err, 'GetLatencyTable');
        }
      }
    }
    if (!table) {
      const has = dev.tables.map((t) => {
        let net = '?';
        try {
          net = tableKeyString(
            specFromProto(t.key?.network),
            t.key?.backend ?? '',
            t.key?.batchSize ?? 0,
          );
        } catch {
          // a key this build cannot read: leave it as '?'
        }
        return `${net} v${t.version}`;
      });
      throw noTable(field, q, network, has);
    }
    return compileLatencyTable(table, dev.deviceId, q, network, field);
  }

  close(): void {
    this.client.close();
  }
}
