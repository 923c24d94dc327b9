import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type ServiceError, status } from '@grpc/grpc-js';
import {
  buildNetwork,
  LatencyPredictor,
  type LatencyTable,
  networkFingerprint,
  widthOf,
} from '@metaprune/core';
import { initBackend, profileLatencyTable, sampleEncodings } from '@metaprune/engine';
import type { latency } from '@metaprune/proto';
import { checkHealth, FIELD_METADATA_KEY, nullLogger } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer, waitFor } from '@metaprune/testkit';
import { fetchLatencyPredictor, LatencyProfilerClient, tableToProto } from '@metaprune/wire';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LatencyProfilerHandle, startLatencyProfiler } from '../src/index.js';

const TINY = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.1, inputSize: 16 });
const OTHER = buildNetwork({ family: 'mobilenetv1', preset: 'small', width: 0.1, inputSize: 16 });

let nats: NatsServerHandle;
let lp: LatencyProfilerHandle;
let client: LatencyProfilerClient;
let measured: LatencyTable;
let foreign: LatencyTable;

/** Awaits a call that must fail; returns the gRPC error. */
async function grpcError(p: Promise<unknown>): Promise<ServiceError> {
  try {
    await p;
  } catch (err) {
    return err as ServiceError;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  nats = await startNatsServer();
  lp = await startLatencyProfiler({ natsUrl: [nats.url], port: 0, logger: nullLogger });
  client = new LatencyProfilerClient(lp.address);
  // A real table measured here on the wasm backend: a tiny network, a coarse grid.
  await initBackend({ prefer: 'wasm' });
  const timing = {
    backend: 'wasm',
    grid: { points: 3 },
    warmup: 1,
    repeats: 3,
    fitEncodings: 3,
    warmupMs: 100,
    networkTiming: { warmup: 1, repeats: 3 },
  } as const;
  measured = (await profileLatencyTable(TINY, timing)).table;
  foreign = (await profileLatencyTable(OTHER, { ...timing, grid: { points: 2 } })).table;
});

afterAll(async () => {
  client?.close();
  await lp?.shutdown();
  await nats?.stop();
});

describe('LatencyProfilerService', () => {
  it('registers devices with unique names and validated fields', async () => {
    const res = await client.registerDevice('lab-wasm-1', 'this machine, wasm');
    expect(res.device?.deviceId).toMatch(/^dev-/);
    expect(res.device?.name).toBe('lab-wasm-1');
    expect(res.token.length).toBeGreaterThanOrEqual(40);
    const dup = await grpcError(client.registerDevice('lab-wasm-1'));
    expect(dup.code).toBe(status.ALREADY_EXISTS);
    const bad = await grpcError(client.registerDevice('no spaces please'));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    expect(bad.metadata.get(FIELD_METADATA_KEY)).toEqual(['name']);
  });

  it('uploads a measured table, versions it, serves it back and predicts from it', async () => {
    const { device, token } = await client.registerDevice('uploader');
    const id = device!.deviceId;
    const up1 = await client.uploadTable(id, token, measured);
    expect(up1).toEqual({ version: 1, rowCount: measured.rows.length });
    const up2 = await client.uploadTable(id, token, { ...measured, constantMs: 0.5 });
    expect(up2.version).toBe(2);

    const latest = await client.getTable(id, { network: TINY.spec, backend: 'wasm', batchSize: 1 });
    expect(latest.version).toBe(2);
    expect(latest.constantMs).toBe(0.5);
    expect(latest.rows).toEqual(measured.rows);
    expect(latest.fingerprint).toBe(networkFingerprint(TINY));
    const v1 = await client.getTable(id, { network: TINY.spec }, 1);
    expect(v1.constantMs).toBe(measured.constantMs);
    expect((await grpcError(client.getTable(id, { network: TINY.spec }, 7))).code).toBe(
      status.NOT_FOUND,
    );
    expect((await grpcError(client.getTable(id, { network: OTHER.spec }))).code).toBe(
      status.NOT_FOUND,
    );

    // prediction = sum of the table rows of the candidate's layers + the constant, exactly
    const rowOf = new Map(latest.rows.map((r) => [`${r.layer}|${r.cin}|${r.cout}`, r.medianMs]));
    const local = new LatencyPredictor(TINY, latest);
    for (const enc of sampleEncodings(TINY, 5, 42)) {
      const res = await client.predict(id, { network: TINY.spec }, enc, { includeLayers: true });
      expect(res.version).toBe(2);
      expect(res.predictedMs).toBe(local.predict(enc));
      expect(res.layers.map((l) => l.layerId)).toEqual(TINY.layers.map((l) => l.name));
      let sum = 0;
      for (const term of res.layers) sum += term.latencyMs;
      expect(res.predictedMs).toBe(sum + 0.5);
      // at grid points the terms are the rows themselves
      for (const [k, l] of TINY.layers.entries()) {
        const cin = widthOf(l.in, enc);
        const cout = l.kind === 'depthwise' ? cin : widthOf(l.out, enc);
        const row = rowOf.get(`${l.name}|${cin}|${cout}`);
        if (row !== undefined) expect(res.layers[k]!.latencyMs).toBe(row);
      }
    }
    const v1Pred = await client.predict(
      id,
      { network: TINY.spec },
      sampleEncodings(TINY, 1, 1)[0]!,
      {
        version: 1,
      },
    );
    expect(v1Pred.version).toBe(1);

    const bad = await grpcError(client.predict(id, { network: TINY.spec }, [1, 2, 3]));
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
    const badGene = await grpcError(
      client.predict(
        id,
        { network: TINY.spec },
        TINY.genes.map((_, i) => (i === 3 ? 31 : 0)),
      ),
    );
    expect(badGene.code).toBe(status.INVALID_ARGUMENT);
    expect(badGene.metadata.get(FIELD_METADATA_KEY)).toEqual(['encoding.genes[3]']);

    // what the controller does: fetch once by device name, predict locally
    const fetched = await fetchLatencyPredictor(lp.address, { device: 'uploader', network: TINY });
    const enc = sampleEncodings(TINY, 1, 7)[0]!;
    expect(fetched.predictor.predict(enc)).toBe(local.predict(enc));
    expect(fetched.deviceId).toBe(id);
  });

  it('refuses uploads without the device token or with a wrong one', async () => {
    const a = await client.registerDevice('auth-a');
    const b = await client.registerDevice('auth-b');
    const id = a.device!.deviceId;
    const missing = await grpcError(client.uploadTable(id, '', measured));
    expect(missing.code).toBe(status.UNAUTHENTICATED);
    const wrong = await grpcError(client.uploadTable(id, 'not-the-token', measured));
    expect(wrong.code).toBe(status.PERMISSION_DENIED);
    const othersToken = await grpcError(client.uploadTable(id, b.token, measured));
    expect(othersToken.code).toBe(status.PERMISSION_DENIED);
    const unknown = await grpcError(client.uploadTable('dev-nope', a.token, measured));
    expect(unknown.code).toBe(status.NOT_FOUND);
    // nothing was stored
    expect((await grpcError(client.getTable(id, { network: TINY.spec }))).code).toBe(
      status.NOT_FOUND,
    );
  });

  it('refuses malformed tables naming the bad row, and tables for another network shape', async () => {
    const { device, token } = await client.registerDevice('validator');
    const id = device!.deviceId;
    const expectBad = async (
      table: LatencyTable | latency.LatencyTable,
      field: string | RegExp,
    ) => {
      const err = await grpcError(client.uploadTable(id, token, table));
      expect(err.code).toBe(status.INVALID_ARGUMENT);
      const got = String(err.metadata.get(FIELD_METADATA_KEY)[0]);
      if (typeof field === 'string') expect(got).toBe(field);
      else expect(got).toMatch(field);
      expect(err.details).toContain(got);
      return err;
    };
    const row = (i: number, patch: Partial<LatencyTable['rows'][number]>): LatencyTable => ({
      ...measured,
      rows: measured.rows.map((r, k) => (k === i ? { ...r, ...patch } : r)),
    });
    await expectBad(row(5, { medianMs: -1 }), 'table.rows[5].median_ms');
    await expectBad(row(6, { spreadMs: Number.NaN }), 'table.rows[6].spread_ms');
    await expectBad(row(7, { cin: 9999 }), 'table.rows[7].cin');
    await expectBad(row(8, { layer: 'stage9.conv' }), 'table.rows[8].layer_id');
    await expectBad(row(9, { kind: 'fc' }), 'table.rows[9].kind');
    await expectBad({ ...measured, rows: measured.rows.slice(1) }, 'table.rows');
    await expectBad({ ...measured, batchSize: 0 }, 'table.key.batch_size');
    // another network's table, under its own key: accepted by shape, so it is stored...
    expect((await client.uploadTable(id, token, foreign)).version).toBe(1);
    // ...but claimed for this network it is refused, by fingerprint or by its rows
    const err = await expectBad({ ...foreign, network: TINY.spec }, 'table.network_fingerprint');
    expect(err.details).toMatch(/another network shape/);
    await expectBad(
      { ...foreign, network: TINY.spec, fingerprint: measured.fingerprint },
      /^table\.rows\[\d+\]\./,
    );
    const wire = tableToProto(measured);
    await expectBad({ ...wire, networkFingerprint: '' }, 'table.network_fingerprint');
    // nothing of TINY was stored for this device
    expect((await grpcError(client.getTable(id, { network: TINY.spec }))).code).toBe(
      status.NOT_FOUND,
    );
  });

  it('lists devices by name, page by page, with their latest tables', async () => {
    const seen: latency.Device[] = [];
    let pageToken = '';
    do {
      const res = await new Promise<latency.ListDevicesResponse>((resolve, reject) =>
        client.raw.listDevices({ pageSize: 2, pageToken }, (e, r) => (e ? reject(e) : resolve(r))),
      );
      expect(res.devices.length).toBeLessThanOrEqual(2);
      seen.push(...res.devices);
      pageToken = res.nextPageToken;
    } while (pageToken);
    const names = seen.map((d) => d.name);
    expect(names).toEqual([...names].sort());
    expect(names).toEqual(expect.arrayContaining(['uploader', 'validator', 'lab-wasm-1']));
    const up = seen.find((d) => d.name === 'uploader')!;
    expect(up.tables).toHaveLength(1);
    expect(up.tables[0]).toMatchObject({ version: 2, rowCount: measured.rows.length });
    expect(up.tables[0]?.key?.backend).toBe('wasm');
    const bad = await grpcError(
      new Promise((resolve, reject) =>
        client.raw.listDevices({ pageSize: 5000, pageToken: '' }, (e, r) =>
          e ? reject(e) : resolve(r),
        ),
      ),
    );
    expect(bad.code).toBe(status.INVALID_ARGUMENT);
  });

  it('can require a registration token', async () => {
    const guarded = await startLatencyProfiler({
      natsUrl: [nats.url],
      port: 0,
      registrationToken: 's3cret',
      devicesBucket: 'lp_guarded_devices',
      tablesBucket: 'lp_guarded_tables',
      logger: nullLogger,
    });
    try {
      const anon = new LatencyProfilerClient(guarded.address);
      const wrong = new LatencyProfilerClient(guarded.address, { bearerToken: 'nope' });
      const right = new LatencyProfilerClient(guarded.address, { bearerToken: 's3cret' });
      expect((await grpcError(anon.registerDevice('g1'))).code).toBe(status.UNAUTHENTICATED);
      expect((await grpcError(wrong.registerDevice('g1'))).code).toBe(status.PERMISSION_DENIED);
      expect((await right.registerDevice('g1')).device?.name).toBe('g1');
      for (const c of [anon, wrong, right]) c.close();
    } finally {
      await guarded.shutdown();
    }
  });
});

describe('latency-profiler process', () => {
  it('starts from its built main, reports SERVING, and exits 0 on SIGTERM', async () => {
    const main = join(import.meta.dirname, '..', 'dist', 'main.js');
    expect(existsSync(main), `${main} (run npm run build)`).toBe(true);
    const child: ChildProcess = spawn(
      process.execPath,
      [main, '--port', '0', '--log-level', 'warn'],
      {
        env: { ...process.env, LATENCY_PROFILER_NATS_URL: nats.url },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const exited = once(child, 'exit');
    try {
      const line = await new Promise<string>((resolve, reject) => {
        const rl = createInterface({ input: child.stdout! });
        rl.once('line', resolve);
        child.once('exit', (code) => reject(new Error(`exited early with ${code}`)));
      });
      const { address } = JSON.parse(line) as { address: string };
      await waitFor(async () => (await checkHealth(address)) === 'SERVING', {
        what: 'the profiler to report SERVING',
      });
      const c = new LatencyProfilerClient(address);
      expect((await c.registerDevice('from-process')).device?.name).toBe('from-process');
      c.close();
      child.kill('SIGTERM');
      const [code] = await exited;
      expect(code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
