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
  PRESETS,
  sameSpec,
  ValidationError,
} from '@metaprune/core';
import type { latency } from '@metaprune/proto';
import {
  type ClientSecurity,
  FailedPreconditionError,
  InvalidArgumentError,
  UnavailableError,
} from '@metaprune/runtime';
import {
  LatencyProfilerClient,
  networkKeyString,
  specFromProto,
  tableKeyString,
} from '@metaprune/wire';

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

/** A table a device holds, as listed in a missing-table error. */
export interface HeldLatencyTable {
  /** Undefined when this build cannot read the table's key. */
  spec?: NetworkSpec;
  backend: string;
  batchSize: number;
  version: number;
}

/** The network's shape in words: what a table for the search must have been measured for. */
export function describeNetworkShape(network: Network): string {
  const spec = network.spec;
  // MobileNets ignore lastStageFull (latencyTwin): only mention it where it matters
  const last = spec.lastStageFull || latencyTwin(network) ? '' : ', last stage pruned';
  return `${spec.family}, preset ${spec.preset}, width ${spec.width}, input ${spec.inputSize}x${spec.inputSize} with ${spec.inputChannels} channel${spec.inputChannels === 1 ? '' : 's'}, ${spec.numClasses} classes, layout ${spec.layout}${last}`;
}

/**
 * The `metaprune profile` command line that measures the table a search of `network` with
 * query `q` needs on `device`: network flags for every field off the preset's defaults
 * (`--input-channels 1` for a Fashion-MNIST PruningNet of the small preset), `--backend` /
 * `--batch` when the budgets ask for them.
 */
export function profileCommandFor(device: string, network: Network, q: LatencyQuery): string {
  const spec = network.spec;
  const preset = PRESETS[spec.preset];
  const flags = [
    `--device ${device}`,
    `--network ${spec.family}`,
    `--preset ${spec.preset}`,
    `--width ${spec.width}`,
  ];
  if (spec.inputSize !== preset.inputSize) flags.push(`--input-size ${spec.inputSize}`);
  if (spec.inputChannels !== preset.inputChannels)
    flags.push(`--input-channels ${spec.inputChannels}`);
  if (spec.numClasses !== preset.numClasses) flags.push(`--classes ${spec.numClasses}`);
  if (spec.layout !== 'metapruning') flags.push(`--layout ${spec.layout}`);
  // MobileNets ignore the flag (a table for the twin spec is found as well)
  if (!spec.lastStageFull && !latencyTwin(network)) flags.push('--prune-last-stage');
  if (q.backend) flags.push(`--backend ${q.backend}`);
  if (q.batchSize !== 1) flags.push(`--batch ${q.batchSize}`);
  return `metaprune profile ${flags.join(' ')}`;
}

/** How a held table differs from what the search asks for, e.g. `input channels 3, not 1`. */
function tableDifferences(t: HeldLatencyTable, q: LatencyQuery, network: Network): string[] {
  const want = network.spec;
  const diff: string[] = [];
  const cmp = (what: string, has: unknown, needs: unknown) => {
    if (has !== needs) diff.push(`${what} ${String(has)}, not ${String(needs)}`);
  };
  if (t.spec) {
    cmp('network', t.spec.family, want.family);
    cmp('preset', t.spec.preset, want.preset);
    cmp('width', t.spec.width, want.width);
    cmp('input size', t.spec.inputSize, want.inputSize);
    cmp('input channels', t.spec.inputChannels, want.inputChannels);
    cmp('classes', t.spec.numClasses, want.numClasses);
    cmp('layout', t.spec.layout, want.layout);
    if (!latencyTwin(network)) cmp('last stage full', t.spec.lastStageFull, want.lastStageFull);
  }
  if (q.backend) cmp('backend', t.backend, q.backend);
  cmp('batch size', t.batchSize, q.batchSize);
  return diff;
}

const MAX_LISTED_TABLES = 8;

function noTable(
  field: string,
  q: LatencyQuery,
  network: Network,
  deviceName: string,
  has: readonly HeldLatencyTable[],
): FailedPreconditionError {
  const listed = has.slice(-MAX_LISTED_TABLES).map((t) => {
    const key = t.spec ? tableKeyString(t.spec, t.backend, t.batchSize) : '?';
    const diff = tableDifferences(t, q, network);
    return `${key} v${t.version}${diff.length ? ` (${diff.join(', ')})` : ''}`;
  });
  if (has.length > MAX_LISTED_TABLES)
    listed.unshift(`${has.length - MAX_LISTED_TABLES} more, then`);
  return new FailedPreconditionError(
    `${field}.latencyDeviceId: device "${q.device}" has no latency table for ${describeQuery(q, network)}: the search's network is ${describeNetworkShape(network)} (it has ${listed.length ? listed.join('; ') : 'none'}); measure one on that device with \`${profileCommandFor(deviceName, network, q)}\``,
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
        dev.name,
        dev.tables.map((t) => ({
          spec: t.network,
          backend: t.backend,
          batchSize: t.batchSize,
          version: t.version ?? 0,
        })),
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
      const has = dev.tables.map((t): HeldLatencyTable => {
        let spec: NetworkSpec | undefined;
        try {
          spec = specFromProto(t.key?.network);
        } catch {
          // a key this build cannot read: listed as '?'
        }
        return {
          ...(spec ? { spec } : {}),
          backend: t.key?.backend ?? '',
          batchSize: t.key?.batchSize ?? 0,
          version: t.version,
        };
      });
      throw noTable(field, q, network, dev.name || q.device, has);
    }
    return compileLatencyTable(table, dev.deviceId, q, network, field);
  }

  close(): void {
    this.client.close();
  }
}
