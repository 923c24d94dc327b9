/**
 * Stored records and tables are checked when read (issue 15): the KV bucket and object
 * store are writable by whoever holds the profiler's NATS credentials, and bytes rot. A bad
 * record or table is refused with DATA_LOSS naming it (a list skips it and reports it), never
 * served (NaN rows) and never an INTERNAL error.
 */
import { createHash } from 'node:crypto';
import { status } from '@grpc/grpc-js';
import { buildNetwork, type LatencyTable, validateLatencyTable } from '@metaprune/core';
import { latency } from '@metaprune/proto';
import { MetapruneError } from '@metaprune/runtime';
import { tableFromProto } from '@metaprune/wire';
import type { DeviceRecord } from './records.js';

/** A stored device record or table is unreadable or fails its checks. */
export class StoredDataCorruptError extends MetapruneError {
  readonly grpcCode = status.DATA_LOSS;
  constructor(
    readonly what: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${what} is corrupted and was refused: ${reason}`, options);
  }
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Parses and checks a device record read from the bucket. */
export function parseDeviceRecord(key: string, bytes: Uint8Array): DeviceRecord {
  let r: DeviceRecord;
  try {
    r = JSON.parse(new TextDecoder().decode(bytes)) as DeviceRecord;
  } catch (err) {
    throw new StoredDataCorruptError(`device record ${key}`, 'not valid JSON', { cause: err });
  }
  const ok =
    r !== null &&
    typeof r === 'object' &&
    typeof r.deviceId === 'string' &&
    typeof r.name === 'string' &&
    typeof r.description === 'string' &&
    typeof r.tokenSha256 === 'string' &&
    /^[0-9a-f]{64}$/.test(r.tokenSha256) &&
    r.tables !== null &&
    typeof r.tables === 'object' &&
    Object.values(r.tables).every(
      (t) =>
        t !== null &&
        typeof t === 'object' &&
        typeof t.networkKey === 'string' &&
        Array.isArray(t.versions) &&
        t.versions.length > 0 &&
        t.versions.every(
          (v) =>
            Number.isSafeInteger(v?.version) &&
            typeof v.object === 'string' &&
            typeof v.uploadTime === 'string',
        ),
    );
  if (!ok) throw new StoredDataCorruptError(`device record ${key}`, 'not a device record');
  return r;
}

/**
 * Decodes a stored table: its checksum (recorded at upload; absent in records of older
 * versions), the protobuf, and the same validation as an upload (finite, positive rows for
 * every layer of its network).
 */
export function decodeStoredTable(
  object: string,
  bytes: Uint8Array,
  sha256: string | undefined,
): { proto: latency.LatencyTable; table: LatencyTable } {
  if (sha256 !== undefined && sha256Hex(bytes) !== sha256) {
    throw new StoredDataCorruptError(`latency table ${object}`, 'it fails its checksum');
  }
  try {
    const proto = latency.LatencyTable.decode(bytes);
    const table = tableFromProto(proto);
    validateLatencyTable(buildNetwork(table.network), table);
    return { proto, table };
  } catch (err) {
    throw new StoredDataCorruptError(
      `latency table ${object}`,
      err instanceof Error ? err.message : String(err),
      { cause: err },
    );
  }
}
