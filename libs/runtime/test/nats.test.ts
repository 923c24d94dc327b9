import { type NatsServerHandle, startNatsServer, waitFor } from '@metaprune/testkit';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectNats,
  createHeaders,
  createLogger,
  ensureDurableConsumer,
  ensureWorkQueueStream,
  FailedPreconditionError,
  keepWorking,
  openKv,
  publishWithMsgId,
} from '../src/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const enc = (s: string) => new TextEncoder().encode(s);

describe('NATS JetStream against a real nats-server', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const logLines: string[] = [];

  beforeAll(async () => {
    server = await startNatsServer({ jetstream: true });
    nc = await connectNats({
      servers: server.url,
      name: 'runtime-test',
      reconnectTimeWaitMs: 100,
      logger: createLogger({ service: 'test', level: 'debug', write: (l) => logLines.push(l) }),
    });
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    await nc?.close();
    await server?.stop();
  });

  it('ensureWorkQueueStream creates, is idempotent and concurrent-safe, and updates', async () => {
    const opts = { name: 'JOBS1', subjects: ['jobs1.>'], duplicateWindowMs: 60_000 };
    const infos = await Promise.all([1, 2, 3].map(() => ensureWorkQueueStream(jsm, opts)));
    for (const info of infos) {
      expect(info.config.retention).toBe('workqueue');
      expect(info.config.storage).toBe('file');
      expect(info.config.duplicate_window).toBe(60_000 * 1_000_000);
    }
    const again = await ensureWorkQueueStream(jsm, opts);
    expect(again.created).toEqual(infos[0]!.created);
    const updated = await ensureWorkQueueStream(jsm, {
      ...opts,
      duplicateWindowMs: 30_000,
      maxAgeMs: 3_600_000,
    });
    expect(updated.config.duplicate_window).toBe(30_000 * 1_000_000);
    expect(updated.config.max_age).toBe(3_600_000 * 1_000_000);
  });

  it('refuses to reuse a stream with another retention policy', async () => {
    await jsm.streams.add({ name: 'LIMITS1', subjects: ['limits1.>'] });
    await expect(
      ensureWorkQueueStream(jsm, {
        name: 'LIMITS1',
        subjects: ['limits1.>'],
        duplicateWindowMs: 1000,
      }),
    ).rejects.toBeInstanceOf(FailedPreconditionError);
  });

  it('publishWithMsgId: the same id twice stores one message', async () => {
    await ensureWorkQueueStream(jsm, {
      name: 'DEDUP',
      subjects: ['dedup.>'],
      duplicateWindowMs: 60_000,
    });
    const js = jetstream(nc);
    const a = await publishWithMsgId(js, 'dedup.job', enc('one'), 'job-1');
    const b = await publishWithMsgId(js, 'dedup.job', enc('one again'), 'job-1');
    const c = await publishWithMsgId(js, 'dedup.job', enc('two'), 'job-2', {
      expectStream: 'DEDUP',
    });
    expect(a.duplicate).toBe(false);
    expect(b.duplicate).toBe(true);
    expect(b.seq).toBe(a.seq);
    expect(c.duplicate).toBe(false);
    expect((await jsm.streams.info('DEDUP')).state.messages).toBe(2);
  });

  it('durable pull consumer: fetch + ack removes the job; nak redelivers', async () => {
    await ensureWorkQueueStream(jsm, {
      name: 'WORK',
      subjects: ['work.>'],
      duplicateWindowMs: 60_000,
    });
    const cOpts = {
      durable: 'evaluators',
      filterSubject: 'work.eval',
      ackWaitMs: 5000,
      maxDeliver: 3,
    };
    const [ci] = await Promise.all([
      ensureDurableConsumer(jsm, 'WORK', cOpts),
      ensureDurableConsumer(jsm, 'WORK', cOpts),
    ]);
    expect(ci.config.ack_policy).toBe('explicit');
    expect(ci.config.durable_name).toBe('evaluators');
    expect(ci.config.max_deliver).toBe(3);
    const js = jetstream(nc);
    const headers = createHeaders();
    headers.set('traceparent', '00-abc-def-01');
    await publishWithMsgId(js, 'work.eval', enc('cand-A'), 'A', { headers });
    await publishWithMsgId(js, 'work.eval', enc('cand-B'), 'B');

    const consumer = await js.consumers.get('WORK', 'evaluators');
    const batch = await consumer.fetch({ max_messages: 2, expires: 2000 });
    const got: string[] = [];
    for await (const m of batch) {
      got.push(m.string());
      if (m.string() === 'cand-A') {
        expect(m.headers?.get('traceparent')).toBe('00-abc-def-01');
        expect(m.info.deliveryCount).toBe(1);
        await m.ackAck();
      } else {
        m.nak(); // give it back
      }
    }
    expect(got).toEqual(['cand-A', 'cand-B']);
    const again = await consumer.next({ expires: 3000 });
    expect(again?.string()).toBe('cand-B');
    expect(again?.info.deliveryCount).toBe(2);
    expect(again?.info.redelivered).toBe(true);
    // nak with a delay: not redelivered before the delay
    const t0 = Date.now();
    again!.nak(700);
    const third = await consumer.next({ expires: 3000 });
    expect(third?.string()).toBe('cand-B');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
    expect(third?.info.deliveryCount).toBe(3);
    // max_deliver reached: after another nak nothing is delivered any more
    third!.nak();
    expect(await consumer.next({ expires: 1000 })).toBeNull();
    await third!.term();
    // the acked job is gone from the work queue
    const info = await jsm.streams.info('WORK');
    expect(info.state.messages).toBeLessThanOrEqual(1);
  });

  it('an unacked job is redelivered after ack wait; in-progress heartbeats prevent that', async () => {
    await ensureWorkQueueStream(jsm, {
      name: 'SLOW',
      subjects: ['slow.>'],
      duplicateWindowMs: 60_000,
    });
    await ensureDurableConsumer(jsm, 'SLOW', {
      durable: 'w',
      filterSubject: 'slow.job',
      ackWaitMs: 600,
      maxDeliver: 5,
    });
    const js = jetstream(nc);
    const consumer = await js.consumers.get('SLOW', 'w');

    await publishWithMsgId(js, 'slow.job', enc('hb'), 'hb');
    const m1 = await consumer.next({ expires: 2000 });
    expect(m1?.string()).toBe('hb');
    const stop = keepWorking(m1!, 200);
    // 3 × ack wait passes without redelivery
    expect(await consumer.next({ expires: 1800 })).toBeNull();
    stop();
    await m1!.ackAck();

    await publishWithMsgId(js, 'slow.job', enc('silent'), 'silent');
    const m2 = await consumer.next({ expires: 2000 });
    expect(m2?.string()).toBe('silent');
    const redelivered = await consumer.next({ expires: 3000 });
    expect(redelivered?.string()).toBe('silent');
    expect(redelivered?.info.deliveryCount).toBe(2);
    await redelivered!.ackAck();
  });

  it('refuses a consumer whose filter subject differs', async () => {
    await ensureWorkQueueStream(jsm, {
      name: 'FILT',
      subjects: ['filt.>'],
      duplicateWindowMs: 1000,
    });
    await ensureDurableConsumer(jsm, 'FILT', {
      durable: 'f',
      filterSubject: 'filt.a',
      ackWaitMs: 1000,
      maxDeliver: 2,
    });
    const updated = await ensureDurableConsumer(jsm, 'FILT', {
      durable: 'f',
      filterSubject: 'filt.a',
      ackWaitMs: 2000,
      maxDeliver: 4,
    });
    expect(updated.config.max_deliver).toBe(4);
    expect(updated.config.ack_wait).toBe(2000 * 1_000_000);
    await expect(
      ensureDurableConsumer(jsm, 'FILT', {
        durable: 'f',
        filterSubject: 'filt.b',
        ackWaitMs: 1000,
        maxDeliver: 2,
      }),
    ).rejects.toThrow(/filters filt.a, expected filt.b/);
  });

  it('KV data and queued jobs survive SIGKILL of the server + restart; the client reconnects', async () => {
    const js = jetstream(nc);
    const kv = await openKv(js, 'searches', { history: 5 });
    await kv.put('search.s1', enc('{"generation":3}'));
    await kv.put('search.s1', enc('{"generation":4}'));
    await ensureWorkQueueStream(jsm, {
      name: 'PERSIST',
      subjects: ['persist.>'],
      duplicateWindowMs: 60_000,
    });
    await publishWithMsgId(js, 'persist.job', enc('queued'), 'q1');

    const port = server.port;
    await server.kill('SIGKILL');
    await waitFor(() => logLines.some((l) => l.includes('NATS disconnected')), {
      what: 'a disconnect log line',
    });
    await server.restart();
    expect(server.port).toBe(port);
    await waitFor(() => logLines.some((l) => l.includes('NATS reconnected')), {
      timeoutMs: 15_000,
      what: 'the client to reconnect',
    });

    const entry = await waitFor(async () => (await kv.get('search.s1')) ?? undefined, {
      timeoutMs: 15_000,
      what: 'the KV entry after restart',
    });
    expect(entry.string()).toBe('{"generation":4}');
    expect(entry.revision).toBe(2);
    const kv2 = await openKv(js, 'searches', { history: 5 });
    const hist: string[] = [];
    for await (const e of await kv2.history({ key: 'search.s1' })) hist.push(e.string());
    expect(hist).toEqual(['{"generation":3}', '{"generation":4}']);
    expect((await jsm.streams.info('PERSIST')).state.messages).toBe(1);
    // dedup window persists too
    const dup = await publishWithMsgId(js, 'persist.job', enc('queued'), 'q1');
    expect(dup.duplicate).toBe(true);
  });

  it('connects with user/password and fails clearly with a wrong one', async () => {
    const secured = await startNatsServer({ user: 'svc', pass: 'pw' });
    try {
      const ok = await connectNats({
        servers: secured.url,
        name: 'auth-ok',
        user: 'svc',
        pass: 'pw',
      });
      await ok.flush();
      await ok.close();
      await expect(
        connectNats({ servers: secured.url, name: 'auth-bad', user: 'svc', pass: 'wrong' }),
      ).rejects.toThrow(/Authorization/i);
    } finally {
      await secured.stop();
    }
  });
});

void sleep;
