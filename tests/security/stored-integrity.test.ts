/**
 * Stored records are validated before they are trusted (issue 15), against a real latency
 * profiler on a real nats-server: a garbled device record is skipped (and reported) by
 * ListDevices instead of failing it; a stored table that was overwritten (checksum) or
 * filled with NaN is refused with DATA_LOSS, never served or answered with INTERNAL.
 */
import { status } from '@grpc/grpc-js';
import { buildNetwork, type LatencyTable } from '@metaprune/core';
import {
  type LatencyProfilerHandle,
  NatsLatencyStore,
  startLatencyProfiler,
} from '@metaprune/latency-profiler';
import { latency } from '@metaprune/proto';
import { connectNats, nullLogger, openKv } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer, syntheticLatencyTable } from '@metaprune/testkit';
import { LatencyProfilerClient, NATS_NAMES, tableToProto } from '@metaprune/wire';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const NET = buildNetwork({ family: 'mobilenetv1', preset: 'small', width: 0.1, inputSize: 16 });
const KEY = { network: NET.spec, backend: 'wasm', batchSize: 1 };

const table = (): LatencyTable => syntheticLatencyTable(NET);

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (e: { code?: number }) => e.code,
  );

let nats: NatsServerHandle;
let nc: NatsConnection;
let lp: LatencyProfilerHandle;
let client: LatencyProfilerClient;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ servers: nats.url, name: 'sec-integrity' });
  lp = await startLatencyProfiler({ natsUrl: [nats.url], port: 0, logger: nullLogger });
  client = new LatencyProfilerClient(lp.address);
}, 60_000);

afterAll(async () => {
  client?.close();
  await lp?.shutdown();
  await nc?.close();
  await nats?.stop();
});

describe('stored latency data is validated on read', () => {
  it('a garbled device record is skipped by ListDevices, the others are listed', async () => {
    const a = await client.registerDevice('dev-a');
    const b = await client.registerDevice('dev-b');
    const kv = await openKv(jetstream(nc), NATS_NAMES.devicesBucket);
    await kv.put(`device.${b.device!.deviceId}`, '{"deviceId": 7, "tables": null');
    const names = (await client.listDevices()).map((d) => d.name);
    expect(names).toEqual(['dev-a']);
    expect(a.device!.name).toBe('dev-a');
    // the device itself answers DATA_LOSS, not INTERNAL
    expect(await codeOf(client.getTable(b.device!.deviceId, KEY))).toBe(status.DATA_LOSS);
  });

  it('an overwritten table (checksum) or a NaN table is refused with DATA_LOSS', async () => {
    const reg = await client.registerDevice('dev-c');
    const id = reg.device!.deviceId;
    await client.uploadTable(id, reg.token, table());
    const enc = buildNetwork(NET.spec).genes.map(() => 10);
    expect((await client.predict(id, KEY, enc)).predictedMs).toBeGreaterThan(0);

    const store = await NatsLatencyStore.open(nc);
    const rec = (await store.getDevice(id))!;
    const object = Object.values(rec.tables)[0]!.versions[0]!.object;
    // bytes replaced behind the profiler's back (the checksum catches it)
    const good = table();
    const nan: LatencyTable = {
      ...good,
      rows: good.rows.map((r) => ({ ...r, medianMs: Number.NaN })),
    };
    await store.putTable(object, new TextEncoder().encode('garbage, not a protobuf table'));
    expect(await codeOf(client.getTable(id, KEY))).toBe(status.DATA_LOSS);

    // a second version without a checksum (as older records are), NaN rows: still refused
    await client.uploadTable(id, reg.token, table());
    await store.updateDevice(id, (r) => {
      const t = Object.values(r.tables)[0]!;
      const versions = t.versions.map(({ sha256: _s, ...v }) => v);
      return { ...r, tables: { [t.key]: { ...t, versions } } };
    });
    const rec2 = (await store.getDevice(id))!;
    const object2 = Object.values(rec2.tables)[0]!.versions[1]!.object;
    await store.putTable(object2, latency.LatencyTable.encode(tableToProto(nan)).finish());
    expect(await codeOf(client.getTable(id, KEY))).toBe(status.DATA_LOSS);
    expect(await codeOf(client.predict(id, KEY, enc, { version: 2 }))).toBe(status.DATA_LOSS);
  });
});
