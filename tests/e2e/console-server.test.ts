/**
 * The console's HTTP API against a real nats-server and a real latency profiler (in this
 * process): pages and assets, path safety, the event stream, device registration and
 * table upload forwarded with the device token, and the table view. The controller is
 * configured at an address where nothing listens: it shows as down.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ConsoleHandle,
  defaultWebRoot,
  type Overview,
  startConsole,
} from '@metaprune/console';
import { buildNetwork, type LatencyTable } from '@metaprune/core';
import { type LatencyProfilerHandle, startLatencyProfiler } from '@metaprune/latency-profiler';
import { nullLogger } from '@metaprune/runtime';
import {
  freePort,
  type NatsServerHandle,
  startNatsServer,
  syntheticLatencyTable,
} from '@metaprune/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const NET = buildNetwork({ family: 'mobilenetv1', preset: 'small', width: 0.1, inputSize: 16 });

const table = (): LatencyTable => syntheticLatencyTable(NET);

let nats: NatsServerHandle;
let lp: LatencyProfilerHandle;
let consoleHandle: ConsoleHandle;
let home: string;

async function http(
  path: string,
  init: { method?: string; body?: unknown; token?: string } = {},
): Promise<{ status: number; json: Record<string, unknown>; text: string; headers: Headers }> {
  const res = await fetch(`${consoleHandle.url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...(init.token ? { authorization: `Bearer ${init.token}` } : {}),
    },
    ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
  });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  return { status: res.status, json, text, headers: res.headers };
}

/** A raw GET (fetch would normalise "..", which is what a hostile client does not do). */
function rawGet(path: string): Promise<number> {
  return new Promise((ok, fail) => {
    const u = new URL(consoleHandle.url);
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET' }, (res) => {
      res.resume();
      ok(res.statusCode ?? 0);
    });
    req.on('error', fail);
    req.end();
  });
}

beforeAll(async () => {
  home = mkdtempSync(join(tmpdir(), 'console-server-'));
  const model = join(home, 'exports', 'm1');
  mkdirSync(model, { recursive: true });
  writeFileSync(join(model, 'model.json'), '{"modelTopology":{}}');
  writeFileSync(join(home, 'outside.txt'), 'secret');
  nats = await startNatsServer();
  lp = await startLatencyProfiler({ natsUrl: [nats.url], port: 0, logger: nullLogger });
  consoleHandle = await startConsole({
    port: 0,
    controller: `127.0.0.1:${await freePort()}`,
    latencyProfiler: lp.address,
    natsUrl: [nats.url],
    exportRoot: join(home, 'exports'),
    poll: 200,
    logger: nullLogger,
  });
}, 60_000);

afterAll(async () => {
  await consoleHandle?.close();
  await lp?.shutdown();
  await nats?.stop();
  rmSync(home, { recursive: true, force: true });
});

describe('console HTTP server', () => {
  it('serves the pages and the bundled assets, cross-origin isolated', async () => {
    const page = await http('/');
    expect(page.status).toBe(200);
    expect(page.text).toContain('<script type="module" src="/assets/console.js">');
    expect(page.headers.get('cross-origin-embedder-policy')).toBe('require-corp');
    expect(page.headers.get('cross-origin-opener-policy')).toBe('same-origin');
    const prof = await http('/profiler');
    expect(prof.status).toBe(200);
    expect(prof.text).toContain('/assets/profiler.js');
    for (const asset of ['console.js', 'profiler.js', 'style.css', 'tfjs-backend-wasm-simd.wasm']) {
      const res = await fetch(`${consoleHandle.url}/assets/${asset}`, { method: 'HEAD' });
      expect(res.status, asset).toBe(200);
    }
    expect(
      (await fetch(`${consoleHandle.url}/assets/tfjs-backend-wasm.wasm`)).headers.get(
        'content-type',
      ),
    ).toBe('application/wasm');
    expect(defaultWebRoot()).toMatch(/services\/console\/dist\/web$/);
  });

  it('refuses paths that leave the web root or the export root', async () => {
    expect(await rawGet('/assets/../package.json')).toBe(404);
    expect(await rawGet('/assets/%2e%2e%2fpackage.json')).toBe(404);
    expect(await rawGet('/exports/../outside.txt')).toBe(404);
    expect(await rawGet('/exports/%2e%2e/outside.txt')).toBe(404);
    expect(await rawGet('/exports/m1/model.json')).toBe(200);
    expect(await rawGet('/exports/m1.tar')).toBe(200);
    expect(await rawGet('/exports/%2e%2e.tar')).toBe(404);
    expect((await http('/nope')).status).toBe(404);
  });

  it('reports every configured backend, the unreachable controller as down', async () => {
    const ov = (await http('/api/overview')).json as unknown as Overview;
    const byName = Object.fromEntries(ov.services.map((s) => [s.name, s.ok]));
    expect(byName).toEqual({ controller: false, 'latency-profiler': true, nats: true });
    expect(ov.searches).toEqual([]);
    expect(ov.exportsEnabled).toBe(true);
    expect(ov.exports.map((x) => x.path)).toEqual(['m1']);
    expect(ov.profilerEnabled).toBe(true);
  });

  it('registers a device, forwards an upload with its token, streams the change', async () => {
    const events: Overview[] = [];
    const ac = new AbortController();
    const stream = fetch(`${consoleHandle.url}/api/events`, { signal: ac.signal }).then(
      async (res) => {
        expect(res.headers.get('content-type')).toContain('text/event-stream');
        const reader = res.body!.getReader();
        let buf = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          buf += new TextDecoder().decode(value);
          let end = buf.indexOf('\n\n');
          while (end >= 0) {
            const block = buf.slice(0, end);
            buf = buf.slice(end + 2);
            const ev = /^event: (.*)$/m.exec(block)?.[1];
            const data = /^data: (.*)$/m.exec(block)?.[1];
            if (ev === 'overview' && data) events.push(JSON.parse(data) as Overview);
            end = buf.indexOf('\n\n');
          }
        }
      },
    );
    stream.catch(() => {});

    const reg = await http('/api/devices', {
      method: 'POST',
      body: { name: 'test-browser', description: 'from a test' },
    });
    expect(reg.status).toBe(200);
    const device = reg.json['device'] as { id: string; name: string };
    const token = reg.json['token'] as string;
    expect(device.name).toBe('test-browser');
    expect(token.length).toBeGreaterThan(10);
    const again = await http('/api/devices', { method: 'POST', body: { name: 'test-browser' } });
    expect(again.status).toBe(409);
    expect((await http('/api/devices', { method: 'POST', body: {} })).json['field']).toBe('name');

    const t = table();
    const path = `/api/devices/${device.id}/tables`;
    expect((await http(path, { method: 'POST', body: t })).status).toBe(401);
    expect((await http(path, { method: 'POST', body: t, token: `${token}x` })).status).toBe(403);
    const bad = { ...t, rows: t.rows.map((r, i) => (i === 3 ? { ...r, cout: r.cout + 1 } : r)) };
    const refused = await http(path, { method: 'POST', body: bad, token });
    expect(refused.status).toBe(400);
    expect(String(refused.json['error'])).toMatch(/rows\[3\]/);
    expect((await http(path, { method: 'POST', body: { rows: 'no' }, token })).status).toBe(400);
    const ok = await http(path, { method: 'POST', body: t, token });
    expect(ok.status).toBe(200);
    expect(ok.json).toEqual({ version: 1, rowCount: t.rows.length });

    // the event stream shows the device with its table without a reload
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const last = events[events.length - 1];
      if (last?.devices.some((d) => d.name === 'test-browser' && d.tables.length === 1)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const last = events[events.length - 1]!;
    const dev = last.devices.find((d) => d.name === 'test-browser')!;
    expect(dev.tables[0]).toMatchObject({
      backend: 'wasm',
      batchSize: 1,
      version: 1,
      rowCount: t.rows.length,
    });
    ac.abort();

    // the table as per-layer grids
    const view = await http(
      `/api/devices/${device.id}/table?key=${encodeURIComponent(JSON.stringify(dev.tables[0]!.key))}`,
    );
    expect(view.status).toBe(200);
    const layers = view.json['layers'] as { layer: string; cins: number[]; medianMs: number[][] }[];
    expect(layers.map((l) => l.layer)).toEqual(NET.layers.map((l) => l.name));
    expect(layers[0]!.medianMs.length).toBe(layers[0]!.cins.length);
    expect(view.json['constantMs']).toBe(0.05);
    expect((await http(`/api/devices/${device.id}/table?key=%7B`)).status).toBe(400);
  });

  it('answers search routes with the controller being down as unavailable', async () => {
    const res = await http('/api/searches/s-missing');
    expect(res.status).toBe(503);
    expect(String(res.json['error'])).toMatch(/controller/);
  });
});
