/**
 * The console's write guard (issue 15) against a real console and a real latency profiler
 * that requires a registration token: DNS rebinding, CSRF (text/plain, foreign Origin),
 * unauthenticated callers borrowing the console's token, oversize and null bodies, and
 * unbounded event streams are refused.
 */
import { request } from 'node:http';
import { type ConsoleHandle, startConsole } from '@metaprune/console';
import { type LatencyProfilerHandle, startLatencyProfiler } from '@metaprune/latency-profiler';
import { nullLogger } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer } from '@metaprune/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const TOKEN = 'console-access-token-for-tests';
const REGISTRATION = 'profiler-registration-token';

let nats: NatsServerHandle;
let lp: LatencyProfilerHandle;
let web: ConsoleHandle;

/** A raw request (fetch would not let a test set Host, or stream a lying body). */
function raw(
  path: string,
  o: { method?: string; headers?: Record<string, string | number>; body?: string | Buffer } = {},
): Promise<{ status: number; text: string }> {
  const u = new URL(web.url);
  return new Promise((ok, fail) => {
    const req = request(
      { host: u.hostname, port: u.port, path, method: o.method ?? 'GET', headers: o.headers },
      (res) => {
        let text = '';
        res.on('data', (d) => {
          text += d;
        });
        res.on('end', () => ok({ status: res.statusCode ?? 0, text }));
        res.on('error', () => ok({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', fail);
    if (o.body !== undefined) req.write(o.body);
    req.end();
  });
}

const json = (extra: Record<string, string> = {}) => ({
  'content-type': 'application/json',
  ...extra,
});
const register = (name: string, headers: Record<string, string>, body?: string) =>
  raw('/api/devices', { method: 'POST', headers, body: body ?? JSON.stringify({ name }) });
const deviceNames = async () =>
  (
    (await (await fetch(`${web.url}/api/devices`)).json()) as { devices: { name: string }[] }
  ).devices
    .map((d) => d.name)
    .sort();

beforeAll(async () => {
  nats = await startNatsServer();
  lp = await startLatencyProfiler({
    natsUrl: [nats.url],
    port: 0,
    registrationToken: REGISTRATION,
    logger: nullLogger,
  });
  web = await startConsole({
    port: 0,
    latencyProfiler: lp.address,
    accessToken: TOKEN,
    registrationToken: REGISTRATION,
    maxEventStreams: 2,
    poll: 200,
    logger: nullLogger,
  });
}, 60_000);

afterAll(async () => {
  await web?.close();
  await lp?.shutdown();
  await nats?.stop();
});

describe('console write guard', () => {
  it('answers only to its own host names (DNS rebinding)', async () => {
    expect((await raw('/api/overview', { headers: { host: 'evil.example:8080' } })).status).toBe(
      421,
    );
    expect((await raw('/api/overview')).status).toBe(200);
  });

  it('refuses cross-site writes: text/plain bodies, foreign origins, missing or wrong token', async () => {
    const plain = await register('csrf-plain', { 'content-type': 'text/plain' });
    expect(plain.status).toBe(415);
    const foreign = await register('csrf-origin', json({ origin: 'http://evil.example' }));
    expect(foreign.status).toBe(403);
    // an unauthenticated caller cannot borrow the console's registration token
    expect((await register('borrower', json())).status).toBe(401);
    expect((await register('guesser', json({ 'x-metaprune-token': `${TOKEN}x` }))).status).toBe(
      403,
    );
    expect(await deviceNames()).toEqual([]);
    // the same request with the token goes through, with the console's registration token
    const ok = await register('owner', json({ 'x-metaprune-token': TOKEN }));
    expect(ok.status, ok.text).toBe(200);
    expect(await deviceNames()).toEqual(['owner']);
  });

  it('checks the token before reading a body, and bounds bodies while reading', async () => {
    // a 120 MB body announced: refused at once, nothing buffered
    const big = await register('big', json({ 'content-length': String(120 * 1024 * 1024) }), '{');
    expect(big.status).toBe(401);
    const tooLong = await register(
      'big',
      json({ 'x-metaprune-token': TOKEN, 'content-length': String(120 * 1024 * 1024) }),
      '{',
    );
    expect(tooLong.status).toBe(413);
    // chunked (no length): the limit applies while reading
    const chunked = await raw('/api/devices', {
      method: 'POST',
      headers: json({ 'x-metaprune-token': TOKEN, 'transfer-encoding': 'chunked' }),
      body: `{"name":"${'x'.repeat(100 * 1024)}"}`,
    });
    expect(chunked.status).toBe(413);
    const nullBody = await register('null', json({ 'x-metaprune-token': TOKEN }), 'null');
    expect(nullBody.status).toBe(400);
    expect(nullBody.text).toMatch(/JSON object/);
  });

  it('caps concurrent event streams', async () => {
    const ac = new AbortController();
    const open = () => fetch(`${web.url}/api/events`, { signal: ac.signal });
    try {
      const [a, b] = await Promise.all([open(), open()]);
      expect([a.status, b.status]).toEqual([200, 200]);
      expect((await open()).status).toBe(503);
    } finally {
      ac.abort();
    }
  });
});
