/**
 * Persistence of the latency profiler in NATS JetStream:
 * - KV bucket `metaprune_devices` (NATS_NAMES.devicesBucket):
 *   `name.<name>` -> device id (created with `create`, so names are unique across replicas);
 *   `device.<id>` -> JSON {@link DeviceRecord}: the device, the SHA-256 of its upload token
 *   (never the token) and, per table key, every stored version; updated with
 *   compare-and-set on the entry's revision, so concurrent uploads get distinct versions.
 * - Object store `metaprune_latency_tables`: one object per uploaded table version, the
 *   protobuf-encoded `LatencyTable`, named `<device id>/<key>/<upload id>` (never
 *   overwritten; the version -> object mapping lives in the device record).
 */

import { openKv } from '@metaprune/runtime';
import { LATENCY_TABLES_BUCKET, NATS_NAMES } from '@metaprune/wire';
import type { JetStreamClient } from '@nats-io/jetstream';
import { jetstream } from '@nats-io/jetstream';
import type { KV } from '@nats-io/kv';
import { type ObjectStore, Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/transport-node';
import { parseDeviceRecord } from './integrity.js';
import type { DeviceRecord } from './records.js';

/** Bucket of the stored tables (named in runtime, next to the NATS permissions for it). */
export const TABLES_BUCKET = LATENCY_TABLES_BUCKET;

export type { DeviceRecord, TableRecord, TableVersionRecord } from './records.js';

/** Where the profiler keeps devices and tables (a NATS JetStream implementation below). */
export interface LatencyStore {
  /** Reserves `name` for `record` (false when the name is taken). */
  createDevice(record: DeviceRecord): Promise<boolean>;
  getDevice(deviceId: string): Promise<DeviceRecord | undefined>;
  /** Device id of a name. */
  deviceIdOf(name: string): Promise<string | undefined>;
  /** Every registered name, ascending. */
  listNames(): Promise<string[]>;
  /**
   * Applies `change` to the device record atomically (retried on concurrent updates);
   * returns the record written.
   */
  updateDevice(deviceId: string, change: (r: DeviceRecord) => DeviceRecord): Promise<DeviceRecord>;
  putTable(object: string, data: Uint8Array): Promise<void>;
  getTable(object: string): Promise<Uint8Array | undefined>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class NatsLatencyStore implements LatencyStore {
  private constructor(
    private readonly kv: KV,
    private readonly objects: ObjectStore,
  ) {}

  /** Opens (creating when needed) the KV bucket and the object store. */
  static async open(
    nc: NatsConnection,
    opts: { devicesBucket?: string; tablesBucket?: string } = {},
  ): Promise<NatsLatencyStore> {
    const js: JetStreamClient = jetstream(nc);
    const kv = await openKv(js, opts.devicesBucket ?? NATS_NAMES.devicesBucket);
    const objects = await new Objm(js).create(opts.tablesBucket ?? TABLES_BUCKET);
    return new NatsLatencyStore(kv, objects);
  }

  async createDevice(record: DeviceRecord): Promise<boolean> {
    try {
      await this.kv.create(`name.${record.name}`, enc.encode(record.deviceId));
    } catch (err) {
      if (await this.deviceIdOf(record.name)) return false;
      throw err;
    }
    await this.kv.put(`device.${record.deviceId}`, enc.encode(JSON.stringify(record)));
    return true;
  }

  async getDevice(deviceId: string): Promise<DeviceRecord | undefined> {
    const e = await this.kv.get(`device.${deviceId}`);
    if (e?.operation !== 'PUT') return undefined;
    return parseDeviceRecord(`device.${deviceId}`, e.value);
  }

  async deviceIdOf(name: string): Promise<string | undefined> {
    const e = await this.kv.get(`name.${name}`);
    if (e?.operation !== 'PUT') return undefined;
    return dec.decode(e.value);
  }

  async listNames(): Promise<string[]> {
    const names: string[] = [];
    for await (const k of await this.kv.keys('name.>')) names.push(k.slice('name.'.length));
    return names.sort();
  }

  async updateDevice(
    deviceId: string,
    change: (r: DeviceRecord) => DeviceRecord,
  ): Promise<DeviceRecord> {
    for (let attempt = 0; ; attempt++) {
      const e = await this.kv.get(`device.${deviceId}`);
      if (e?.operation !== 'PUT') throw new Error(`device ${deviceId} vanished`);
      const next = change(parseDeviceRecord(`device.${deviceId}`, e.value));
      try {
        await this.kv.update(`device.${deviceId}`, enc.encode(JSON.stringify(next)), e.revision);
        return next;
      } catch (err) {
        if (attempt >= 20) throw err;
        await new Promise((r) => setTimeout(r, 5 + Math.random() * 20));
      }
    }
  }

  async putTable(object: string, data: Uint8Array): Promise<void> {
    await this.objects.putBlob({ name: object }, data);
  }

  async getTable(object: string): Promise<Uint8Array | undefined> {
    return (await this.objects.getBlob(object)) ?? undefined;
  }
}
