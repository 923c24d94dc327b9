/**
 * LatencyProfilerService: device registry, authenticated uploads of latency tables,
 * versioned storage, and prediction from a stored table with core's compiled predictor.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { Metadata } from '@grpc/grpc-js';
import {
  buildNetwork,
  LatencyPredictor,
  type LatencyTable,
  type Network,
  ValidationError,
  validateEncoding,
  validateLatencyTable,
} from '@metaprune/core';
import { latency } from '@metaprune/proto';
import {
  AlreadyExistsError,
  type GrpcServiceRegistration,
  InvalidArgumentError,
  type Logger,
  NotFoundError,
  nullLogger,
  PermissionDeniedError,
  requireNumber,
  tracedUnary,
  UnauthenticatedError,
} from '@metaprune/runtime';
import {
  networkKeyString,
  specFromProto,
  tableFromProto,
  tableKeyString,
  wireField,
} from '@metaprune/wire';
import { decodeStoredTable, StoredDataCorruptError, sha256Hex } from './integrity.js';
import type { DeviceRecord, LatencyStore, TableRecord, TableVersionRecord } from './store.js';

/** 1–64 of [A-Za-z0-9._-], not starting or ending with a dot, no two dots in a row. */
export const DEVICE_NAME_PATTERN = /^(?!.*\.\.)(?!\.)(?!.*\.$)[A-Za-z0-9._-]{1,64}$/;
const MAX_DESCRIPTION = 1024;
const MAX_BACKEND = 32;
const DEFAULT_PAGE_SIZE = 50;

export interface LatencyProfilerServiceOptions {
  store: LatencyStore;
  logger?: Logger;
  /**
   * When set, RegisterDevice requires gRPC metadata `authorization: Bearer <token>` with
   * this value (missing: UNAUTHENTICATED, wrong: PERMISSION_DENIED). Uploads always need
   * the device's own token.
   */
  registrationToken?: string;
  /** Compiled predictors kept in memory (default 16). */
  predictorCacheSize?: number;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

function sameSecret(given: string, wantSha256Hex: string): boolean {
  const want = Buffer.from(wantSha256Hex, 'hex');
  const got = sha256(given);
  return want.length === got.length && timingSafeEqual(want, got);
}

/** Core validation errors -> INVALID_ARGUMENT naming the wire field. */
function asInvalid(err: unknown): never {
  if (err instanceof ValidationError) {
    throw new InvalidArgumentError(wireField(err.field), err.message.slice(err.field.length + 2));
  }
  throw err;
}

function requireString(field: string, v: string, max: number): string {
  if (typeof v !== 'string' || v.length === 0) throw new InvalidArgumentError(field, 'required');
  if (v.length > max) throw new InvalidArgumentError(field, `at most ${max} characters`);
  return v;
}

function bearer(meta: Metadata): string | undefined {
  const v = meta.get('authorization')[0];
  if (typeof v !== 'string') return undefined;
  const m = /^Bearer\s+(.+)$/i.exec(v.trim());
  return m?.[1];
}

function deviceToProto(r: DeviceRecord): latency.Device {
  return latency.Device.fromPartial({
    deviceId: r.deviceId,
    name: r.name,
    description: r.description,
    createTime: new Date(r.createTime),
    tables: Object.values(r.tables)
      .sort((a, b) => a.key.localeCompare(b.key))
      .map((t) => {
        const v = t.versions[t.versions.length - 1] as TableVersionRecord;
        return {
          key: latency.LatencyTableKey.fromJSON(t.keyJson),
          version: v.version,
          rowCount: v.rowCount,
          ...(v.measureTime ? { measureTime: new Date(v.measureTime) } : {}),
        };
      }),
  });
}

interface ResolvedTable {
  record: TableRecord;
  version: TableVersionRecord;
}

/** The service's handlers; register with `startGrpcServer({ services: [registration] })`. */
export function createLatencyProfilerService(opts: LatencyProfilerServiceOptions): {
  registration: GrpcServiceRegistration;
  handlers: latency.LatencyProfilerServiceServer;
} {
  const { store } = opts;
  const logger = opts.logger ?? nullLogger;
  const cacheSize = opts.predictorCacheSize ?? 16;
  const predictors = new Map<string, LatencyPredictor>();

  async function device(deviceId: string): Promise<DeviceRecord> {
    requireString('device_id', deviceId, 128);
    // ids are "dev-<uuid>"; anything else cannot name a device (nor a storage key)
    if (!/^[A-Za-z0-9_-]+$/.test(deviceId)) {
      throw new InvalidArgumentError('device_id', 'is not a device id (letters, digits, _ and -)');
    }
    const r = await store.getDevice(deviceId);
    if (!r) throw new NotFoundError(`device ${deviceId} is not registered`);
    return r;
  }

  /** The stored table matching a (possibly partial) key and version. */
  function resolve(
    r: DeviceRecord,
    key: latency.LatencyTableKey | undefined,
    version: number,
  ): { resolved: ResolvedTable; net: Network } {
    if (!key) throw new InvalidArgumentError('key', 'required');
    let spec: ReturnType<typeof specFromProto>;
    try {
      spec = specFromProto(key.network, 'key.network');
    } catch (err) {
      asInvalid(err);
    }
    if (key.backend.length > MAX_BACKEND)
      throw new InvalidArgumentError('key.backend', `at most ${MAX_BACKEND} characters`);
    requireNumber('key.batch_size', key.batchSize, { min: 0, max: 4096, integer: true });
    requireNumber('version', version, { min: 0, integer: true });
    const netKey = networkKeyString(spec);
    const candidates = Object.values(r.tables).filter(
      (t) =>
        t.networkKey === netKey &&
        (key.backend === '' || t.backend === key.backend) &&
        (key.batchSize === 0 || t.batchSize === key.batchSize),
    );
    const latestOf = (t: TableRecord) => t.versions[t.versions.length - 1] as TableVersionRecord;
    const record = candidates.sort((a, b) =>
      latestOf(b).uploadTime.localeCompare(latestOf(a).uploadTime),
    )[0];
    const what = `${netKey} backend ${key.backend || '(any)'} batch ${key.batchSize || '(any)'}`;
    if (!record) throw new NotFoundError(`device ${r.name} has no latency table for ${what}`);
    const v = version === 0 ? latestOf(record) : record.versions.find((x) => x.version === version);
    if (!v) {
      throw new NotFoundError(
        `device ${r.name} has no version ${version} of its table for ${what} (latest ${latestOf(record).version})`,
      );
    }
    return { resolved: { record, version: v }, net: buildNetwork(spec) };
  }

  async function loadTable(
    r: DeviceRecord,
    t: ResolvedTable,
  ): Promise<{ proto: latency.LatencyTable; table: LatencyTable }> {
    const bytes = await store.getTable(t.version.object);
    if (!bytes) throw new NotFoundError(`table object ${t.version.object} is missing`);
    const { proto, table } = decodeStoredTable(t.version.object, bytes, t.version.sha256);
    return { proto: { ...proto, deviceId: r.deviceId, version: t.version.version }, table };
  }

  async function predictor(r: DeviceRecord, t: ResolvedTable, net: Network) {
    const id = t.version.object;
    let p = predictors.get(id);
    if (p) {
      predictors.delete(id);
      predictors.set(id, p); // most recently used last
      return p;
    }
    const { table } = await loadTable(r, t);
    p = new LatencyPredictor(net, table, { validate: false }); // validated by loadTable
    predictors.set(id, p);
    while (predictors.size > cacheSize) predictors.delete(predictors.keys().next().value as string);
    return p;
  }

  const handlers: latency.LatencyProfilerServiceServer = {
    registerDevice: tracedUnary(
      async (call) => {
        if (opts.registrationToken !== undefined) {
          const given = bearer(call.metadata);
          if (given === undefined)
            throw new UnauthenticatedError(
              'registering a device needs authorization: Bearer <token>',
            );
          if (!sameSecret(given, sha256(opts.registrationToken).toString('hex')))
            throw new PermissionDeniedError('wrong registration token');
        }
        const { name, description } = call.request;
        if (!DEVICE_NAME_PATTERN.test(name))
          throw new InvalidArgumentError('name', `must match ${DEVICE_NAME_PATTERN}`);
        if (description.length > MAX_DESCRIPTION)
          throw new InvalidArgumentError('description', `at most ${MAX_DESCRIPTION} characters`);
        const token = randomBytes(32).toString('base64url');
        const record: DeviceRecord = {
          deviceId: `dev-${randomUUID()}`,
          name,
          description,
          createTime: new Date().toISOString(),
          tokenSha256: sha256(token).toString('hex'),
          tables: {},
        };
        if (!(await store.createDevice(record)))
          throw new AlreadyExistsError(`a device named ${name} is already registered`);
        logger.info('device registered', { deviceId: record.deviceId, name });
        return { device: deviceToProto(record), token };
      },
      { logger },
    ),

    uploadLatencyTable: tracedUnary(
      async (call) => {
        const req = call.request;
        if (!req.token)
          throw new UnauthenticatedError('token: the device upload token is required');
        const r = await device(req.deviceId);
        if (!sameSecret(req.token, r.tokenSha256))
          throw new PermissionDeniedError(`token: wrong upload token for device ${r.name}`);
        if (!req.table) throw new InvalidArgumentError('table', 'required');
        const backend = req.table.key?.backend ?? '';
        if (backend.length > MAX_BACKEND || !/^[A-Za-z0-9_-]+$/.test(backend))
          throw new InvalidArgumentError('table.key.backend', 'required: 1..32 of [A-Za-z0-9_-]');
        let table: LatencyTable;
        try {
          table = tableFromProto(req.table);
          validateLatencyTable(buildNetwork(table.network), table);
        } catch (err) {
          asInvalid(err);
        }
        const key = tableKeyString(table.network, table.backend, table.batchSize);
        const object = `${r.deviceId}/${key}/${randomUUID()}`;
        const stored = latency.LatencyTable.encode({
          ...req.table,
          deviceId: r.deviceId,
          version: 0,
        }).finish();
        await store.putTable(object, stored);
        let version = 0;
        await store.updateDevice(r.deviceId, (cur) => {
          const prev = cur.tables[key];
          version = (prev?.versions[prev.versions.length - 1]?.version ?? 0) + 1;
          const entry: TableVersionRecord = {
            version,
            object,
            rowCount: table.rows.length,
            measureTime: table.measuredAt ?? '',
            uploadTime: new Date().toISOString(),
            sha256: sha256Hex(stored),
          };
          const rec: TableRecord = {
            key,
            networkKey: networkKeyString(table.network),
            backend: table.backend,
            batchSize: table.batchSize,
            keyJson: latency.LatencyTableKey.toJSON(req.table!.key!),
            versions: [...(prev?.versions ?? []), entry],
          };
          return { ...cur, tables: { ...cur.tables, [key]: rec } };
        });
        logger.info('latency table stored', {
          deviceId: r.deviceId,
          key,
          version,
          rows: table.rows.length,
        });
        return { version, rowCount: table.rows.length };
      },
      { logger },
    ),

    getLatencyTable: tracedUnary(
      async (call) => {
        const r = await device(call.request.deviceId);
        const { resolved } = resolve(r, call.request.key, call.request.version);
        return { table: (await loadTable(r, resolved)).proto };
      },
      { logger },
    ),

    listDevices: tracedUnary(
      async (call) => {
        const size =
          call.request.pageSize === 0
            ? DEFAULT_PAGE_SIZE
            : requireNumber('page_size', call.request.pageSize, {
                min: 1,
                max: 1000,
                integer: true,
              });
        let after = '';
        if (call.request.pageToken) {
          after = Buffer.from(call.request.pageToken, 'base64url').toString('utf8');
          if (!DEVICE_NAME_PATTERN.test(after))
            throw new InvalidArgumentError('page_token', 'not a token from a previous response');
        }
        const names = (await store.listNames()).filter((n) => n > after);
        const page = names.slice(0, size);
        const devices: latency.Device[] = [];
        for (const name of page) {
          const id = await store.deviceIdOf(name);
          try {
            const rec = id ? await store.getDevice(id) : undefined;
            if (rec) devices.push(deviceToProto(rec));
          } catch (err) {
            // one bad record must not hide every other device
            if (!(err instanceof StoredDataCorruptError)) throw err;
            logger.warn('skipping a corrupted device record in the listing', {
              name,
              reason: err.message,
            });
          }
        }
        const more = names.length > size;
        return {
          devices,
          nextPageToken: more
            ? Buffer.from(page[page.length - 1] as string).toString('base64url')
            : '',
        };
      },
      { logger },
    ),

    predictLatency: tracedUnary(
      async (call) => {
        const req = call.request;
        const r = await device(req.deviceId);
        const { resolved, net } = resolve(r, req.key, req.version);
        const genes = req.encoding?.genes;
        if (!genes) throw new InvalidArgumentError('encoding', 'required');
        try {
          validateEncoding(net, genes, 'encoding.genes');
        } catch (err) {
          asInvalid(err);
        }
        const p = await predictor(r, resolved, net);
        const predictedMs = p.predict(genes);
        return {
          predictedMs,
          version: resolved.version.version,
          layers: req.includeLayers
            ? p.explain(genes).layers.map((l) => ({
                layerId: l.layer,
                cin: l.cin,
                cout: l.cout,
                latencyMs: l.ms,
              }))
            : [],
        };
      },
      { logger },
    ),
  };

  return {
    handlers,
    registration: {
      definition: latency.LatencyProfilerServiceService,
      implementation: handlers as unknown as GrpcServiceRegistration['implementation'],
    },
  };
}
