/**
 * What the profiler stores per device: the record shapes, types only (store.ts keeps them,
 * integrity.ts checks them, so neither imports the other).
 */

/** One stored version of a table. */
export interface TableVersionRecord {
  readonly version: number;
  /** Object name in the tables bucket. */
  readonly object: string;
  readonly rowCount: number;
  /** ISO time the measurement finished (from the table), or empty. */
  readonly measureTime: string;
  /** ISO time of the upload. */
  readonly uploadTime: string;
  /** Hex SHA-256 of the stored object, checked on every read (absent in older records). */
  readonly sha256?: string;
}

/** Every version of one table key of a device. */
export interface TableRecord {
  /** Storage key (see `tableKeyString`). */
  readonly key: string;
  /** Network part of the key (see `networkKeyString`). */
  readonly networkKey: string;
  readonly backend: string;
  readonly batchSize: number;
  /** The `LatencyTableKey` as protobuf JSON, to answer ListDevices without loading tables. */
  readonly keyJson: unknown;
  readonly versions: readonly TableVersionRecord[];
}

export interface DeviceRecord {
  readonly deviceId: string;
  readonly name: string;
  readonly description: string;
  readonly createTime: string;
  /** Hex SHA-256 of the upload token. */
  readonly tokenSha256: string;
  readonly tables: Readonly<Record<string, TableRecord>>;
}
