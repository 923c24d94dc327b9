import { type ServiceError, status } from '@grpc/grpc-js';
import { freePort } from '@metaprune/testkit';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkHealth,
  type GrpcServerHandle,
  grpcClientOptions,
  startGrpcServer,
  type WatchStatus,
  waitForServing,
  watchHealth,
  wrapServerStream,
  wrapUnary,
} from '../src/index.js';
import { callEcho, type EchoRequest, echoClient, echoDefinition } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const echoService = {
  definition: echoDefinition,
  implementation: {
    Echo: wrapUnary<EchoRequest, unknown>(async (call) => {
      if (call.request.delayMs) await sleep(call.request.delayMs);
      return { text: call.request.text };
    }),
    Count: wrapServerStream<EchoRequest, unknown>(async () => {}),
  },
};

describe('startGrpcServer', () => {
  let srv: GrpcServerHandle | undefined;
  afterEach(async () => {
    await srv?.shutdown(500);
    srv = undefined;
  });

  it('listens on a free port and serves Health/Check → SERVING', async () => {
    srv = await startGrpcServer({ services: [echoService] });
    expect(srv.port).toBeGreaterThan(0);
    expect(srv.address).toBe(`127.0.0.1:${srv.port}`);
    expect(srv.serviceNames).toEqual(['test.Echo']);
    expect(await checkHealth(srv.address)).toBe('SERVING');
    expect(await checkHealth(srv.address, { service: 'test.Echo' })).toBe('SERVING');
    const err = (await checkHealth(srv.address, { service: 'nope.Svc' }).catch(
      (e: unknown) => e,
    )) as ServiceError;
    expect(err.code).toBe(status.NOT_FOUND);
    expect(await callEcho(echoClient(srv.address), { text: 'a' })).toEqual({ text: 'a' });
  });

  it('sets per-service status; Watch streams changes', async () => {
    srv = await startGrpcServer({ services: [echoService] });
    const seen: WatchStatus[] = [];
    const cancel = watchHealth(srv.address, (s) => seen.push(s), { service: 'test.Echo' });
    await waitUntil(() => seen.length === 1);
    srv.health.set('test.Echo', 'NOT_SERVING');
    expect(await checkHealth(srv.address, { service: 'test.Echo' })).toBe('NOT_SERVING');
    expect(await checkHealth(srv.address)).toBe('SERVING');
    srv.health.set('test.Echo', 'SERVING');
    await waitUntil(() => seen.length === 3);
    expect(seen).toEqual(['SERVING', 'NOT_SERVING', 'SERVING']);
    cancel();

    const unknown: WatchStatus[] = [];
    const cancel2 = watchHealth(srv.address, (s) => unknown.push(s), { service: 'later.Svc' });
    await waitUntil(() => unknown.length === 1);
    srv.health.set('later.Svc', 'SERVING');
    await waitUntil(() => unknown.length === 2);
    expect(unknown).toEqual(['SERVICE_UNKNOWN', 'SERVING']);
    cancel2();
  });

  it('shutdown: health flips to NOT_SERVING first, in-flight calls complete, then it stops', async () => {
    srv = await startGrpcServer({ services: [echoService], drainDelayMs: 400 });
    const address = srv.address;
    const seen: WatchStatus[] = [];
    const watch: { ended: boolean; err?: ServiceError } = { ended: false };
    watchHealth(address, (s) => seen.push(s), {
      onEnd: (e) => {
        watch.ended = true;
        watch.err = e;
      },
    });
    await waitUntil(() => seen.length === 1);

    const client = echoClient(address);
    const inFlight = callEcho(client, { text: 'slow', delayMs: 800 });
    await sleep(50);
    const t0 = Date.now();
    const done = srv.shutdown(5000);
    // during the drain delay, Check answers NOT_SERVING
    expect(await checkHealth(address)).toBe('NOT_SERVING');
    expect(await checkHealth(address, { service: 'test.Echo' })).toBe('NOT_SERVING');
    await waitUntil(() => seen.includes('NOT_SERVING'));
    expect(await inFlight).toEqual({ text: 'slow' });
    await done;
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(seen).toEqual(['SERVING', 'NOT_SERVING']);
    await waitUntil(() => watch.ended);
    expect(watch.err?.code).toBe(status.UNAVAILABLE);
    // nothing listens any more
    const err = (await checkHealth(address, { timeoutMs: 500 }).catch(
      (e: unknown) => e,
    )) as ServiceError;
    expect(err.code).toBe(status.UNAVAILABLE);
    await srv.shutdown(); // idempotent
    srv = undefined;
  });

  it('shutdown forces after the grace period when a call does not finish', async () => {
    srv = await startGrpcServer({ services: [echoService] });
    const inFlight = callEcho(echoClient(srv.address), { delayMs: 3000 }).catch((e: unknown) => e);
    await sleep(50);
    const t0 = Date.now();
    await srv.shutdown(200);
    expect(Date.now() - t0).toBeLessThan(1500);
    // grpc-js resets the stream: the client sees CANCELLED (or UNAVAILABLE)
    expect([status.CANCELLED, status.UNAVAILABLE]).toContain(
      ((await inFlight) as ServiceError).code,
    );
    srv = undefined;
  });

  it('messages over maxMessageBytes → RESOURCE_EXHAUSTED', async () => {
    srv = await startGrpcServer({ services: [echoService], maxMessageBytes: 1024 });
    const client = echoClient(srv.address, grpcClientOptions());
    const err = (await callEcho(client, { text: 'x'.repeat(4096) }).catch(
      (e: unknown) => e,
    )) as ServiceError;
    expect(err.code).toBe(status.RESOURCE_EXHAUSTED);
    expect(await callEcho(client, { text: 'small' })).toEqual({ text: 'small' });
  });

  it('serves health on a separate plaintext port when asked', async () => {
    const healthPort = await freePort();
    srv = await startGrpcServer({ services: [echoService], healthPort });
    expect(srv.healthPort).toBe(healthPort);
    expect(await checkHealth(`127.0.0.1:${healthPort}`, { service: 'test.Echo' })).toBe('SERVING');
    const done = srv.shutdown(1000);
    await done;
    srv = undefined;
  });

  it('waitForServing resolves for a live server and names the address otherwise', async () => {
    srv = await startGrpcServer({ services: [echoService] });
    await waitForServing(srv.address, { waitMs: 2000 });
    const port = await freePort();
    await expect(waitForServing(`127.0.0.1:${port}`, { waitMs: 300 })).rejects.toThrow(
      new RegExp(`127.0.0.1:${port} did not report SERVING within 300 ms`),
    );
  });

  it('grpcClientOptions sets sizes and keepalive', () => {
    const o = grpcClientOptions({ maxMessageBytes: 10 });
    expect(o['grpc.max_receive_message_length']).toBe(10);
    expect(o['grpc.max_send_message_length']).toBe(10);
    expect(o['grpc.keepalive_time_ms']).toBeGreaterThan(0);
  });
});

async function waitUntil(pred: () => boolean, timeoutMs = 3000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > until) throw new Error('timed out waiting for condition');
    await sleep(10);
  }
}
