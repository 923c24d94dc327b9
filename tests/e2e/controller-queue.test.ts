import {
  ConflictError,
  KvSearchStore,
  NatsProgressBus,
  SearchManager,
} from '@metaprune/controller';
import type { Encoding } from '@metaprune/core';
import {
  type CandidateEvaluator,
  type EvaluationInput,
  EvaluatorWorker,
  type WeightSource,
} from '@metaprune/evaluator';
import { common, controller, evaluation, weightgen } from '@metaprune/proto';
import { connectNats, ensureDurableConsumer, openKv, publishWithMsgId } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer } from '@metaprune/testkit';
import {
  encodeResult,
  JOBS_STREAM,
  jobIdOf,
  KvMemoStore,
  NATS_NAMES,
  NatsEvaluation,
  networkFromProto,
  type PoolContext,
  RESULTS_STREAM,
  type ResolvedPruningNet,
  resolveEvaluationSettings,
  resultSubject,
  StaticPruningNets,
  specToProto,
} from '@metaprune/wire';
import { type JetStreamManager, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

type StartReq = Parameters<typeof controller.StartSearchRequest.fromPartial>[0];

// Controller + NATS pool + evaluator workers over a real nats-server, in one process. The
// score is scripted (deterministic in the encoding); tests/e2e runs the real engine.
const NET = specToProto(
  networkFromProto(
    common.NetworkSpec.fromPartial({
      family: common.NetworkFamily.MOBILENET_V2,
      preset: common.NetworkPreset.SMALL,
      widthMultiplier: 0.5,
    }),
  ).spec,
);
const PN: ResolvedPruningNet = {
  pruningnetId: 'pn-nats',
  version: 1,
  network: NET,
  geneCount: 24,
  data: { dataset: 'fashion-mnist', seed: 0, validationImages: 0 },
};
const score = (e: Encoding) => {
  let h = 3;
  for (const [i, g] of e.entries()) h = (h * 17 + g * (i + 3)) % 997;
  return (e.reduce((a, b) => a + b, 0) / (30 * e.length)) * 0.7 + h / 5000;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

class Scripted implements CandidateEvaluator {
  calls = 0;
  constructor(readonly delayMs = 20) {}
  async evaluate(input: EvaluationInput) {
    this.calls++;
    await sleep(this.delayMs);
    input.signal.throwIfAborted();
    return {
      top1: score(input.encoding),
      loss: 1,
      images: 16,
      recalibrationMs: 1,
      validationMs: 1,
    };
  }
}
const weights: WeightSource = {
  async generate(req) {
    return {
      header: weightgen.WeightsHeader.fromPartial({ pruningnetId: req.pruningnetId }),
      tensors: new Map(),
      bytes: 0,
    };
  },
  close() {},
};

function request(seed: number, over: StartReq = {}) {
  return controller.StartSearchRequest.fromPartial({
    pruningnetId: PN.pruningnetId,
    budgets: [
      { name: 'a', maxMacs: 14e6 },
      { name: 'b', maxMacs: 22e6 },
    ],
    evolution: { populationSize: 6, generations: 3 },
    evaluation: { recalibrationBatches: 1, batchSize: 8, validationImages: 16 },
    seed,
    ...over,
  });
}

/** The pool context of a search on PN (what the manager builds for a StartSearch). */
function poolContext(searchId: string, validationImages: number, seed: number): PoolContext {
  return {
    searchId,
    pruningnetId: PN.pruningnetId,
    pruningnetVersion: PN.version,
    network: networkFromProto(NET),
    networkProto: NET,
    settings: resolveEvaluationSettings({
      recalibrationBatches: 1,
      batchSize: 8,
      validationImages,
      seed,
    }),
    data: PN.data,
  };
}

describe('controller over NATS JetStream with evaluator workers', () => {
  let server: NatsServerHandle;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    server = await startNatsServer();
    nc = await connectNats({ servers: server.url, name: 'test' });
    jsm = await jetstreamManager(nc);
  });
  afterAll(async () => {
    for (const c of closers.reverse()) await c().catch(() => {});
    await nc?.close();
    await server?.stop();
  });

  async function controllerInstance() {
    const c = await connectNats({ servers: server.url, name: 'controller' });
    const js = jetstream(c);
    const memo = new KvMemoStore(await openKv(js, NATS_NAMES.memoBucket));
    const ev = new NatsEvaluation({ nc: c, memo, stallCheckMs: 300 });
    await ev.start();
    const manager = new SearchManager({
      store: new KvSearchStore(await openKv(js, NATS_NAMES.searchesBucket)),
      pools: ev,
      pruningnets: new StaticPruningNets([PN]),
      bus: new NatsProgressBus(c),
    });
    let closed = false;
    const close = async () => {
      if (closed) return;
      closed = true;
      await manager.close();
      ev.close();
      await c.close();
    };
    closers.push(close);
    return { manager, ev, close };
  }

  const running: (() => Promise<void>)[] = [];
  async function stopWorkers() {
    await Promise.all(running.splice(0).map((f) => f()));
  }

  async function workers(n: number, delayMs = 20) {
    const out: { w: EvaluatorWorker; ev: Scripted }[] = [];
    for (let i = 0; i < n; i++) {
      const c = await connectNats({ servers: server.url, name: `worker-${i}` });
      const ev = new Scripted(delayMs);
      const w = new EvaluatorWorker({
        nc: c,
        evaluator: ev,
        weights,
        ackWaitMs: 2000,
        pullExpiresMs: 1000,
      });
      await w.prepare();
      w.start();
      const stop = async () => {
        await w.stop(200);
        await c.close();
      };
      closers.push(stop);
      running.push(stop);
      out.push({ w, ev });
    }
    return out;
  }

  async function finish(manager: SearchManager, id: string) {
    const seen: controller.SearchProgress[] = [];
    for await (const p of manager.watch(id, new AbortController().signal)) seen.push(p);
    return seen;
  }

  async function resultSubjects(): Promise<Record<string, number>> {
    const info = await jsm.streams.info(RESULTS_STREAM, {
      subjects_filter: `${NATS_NAMES.resultsSubjectPrefix}.>`,
    });
    return info.state.subjects ?? {};
  }

  it('runs a search through the queue: every candidate evaluated exactly once, memo in KV', async () => {
    const ws = await workers(2);
    const { manager, ev } = await controllerInstance();
    const id = await manager.start(request(1));
    const seen = await finish(manager, id);
    expect(seen.at(-1)!.state).toBe(controller.SearchState.SUCCEEDED);
    // live progress inside generations was streamed too
    expect(seen.some((p) => p.generationSize > 0 && p.generationDone > 0)).toBe(true);
    const s = await manager.get(id);
    const evaluated = s.progress!.evaluated;
    expect(evaluated).toBeGreaterThan(6 * 2);
    const subjects = await resultSubjects();
    expect(Object.values(subjects).every((n) => n === 1)).toBe(true);
    expect(Object.keys(subjects)).toHaveLength(evaluated);
    expect(ws.reduce((a, w) => a + w.ev.calls, 0)).toBe(evaluated);
    expect(ev.published).toBe(evaluated);
    for (const b of s.progress!.best) {
      expect(b.best!.top1).toBeCloseTo(score(b.best!.encoding!.genes), 6);
    }
    // the work queue is empty, the memo holds every candidate
    expect((await jsm.streams.info(JOBS_STREAM)).state.messages).toBe(0);
    const memoKv = await openKv(jetstream(nc), NATS_NAMES.memoBucket);
    let memoKeys = 0;
    for await (const _k of await memoKv.keys()) memoKeys++;
    expect(memoKeys).toBe(evaluated);

    // the same search again: answered by the memo, nothing published
    const before = ev.published;
    const again = await manager.start(request(1, { displayName: 'again' }));
    const seen2 = await finish(manager, again);
    expect(seen2.at(-1)!.memoHits).toBe(evaluated);
    expect(ev.published).toBe(before);
    const s2 = await manager.get(again);
    expect(s2.progress!.best.map((b) => b.best!.encoding)).toEqual(
      s.progress!.best.map((b) => b.best!.encoding),
    );
  });

  it('a controller stopped mid-search resumes from KV and republishes nothing evaluated', async () => {
    await workers(1, 150);
    const first = await controllerInstance();
    const id = await first.manager.start(request(7));
    // stop it during generation 1
    for await (const p of first.manager.watch(id, new AbortController().signal)) {
      if (p.generation === 1 && p.generationDone >= 2) break;
    }
    await first.close();
    const second = await controllerInstance();
    expect(await second.manager.resumeAll()).toEqual([id]);
    const seen = await finish(second.manager, id);
    expect(seen.at(-1)!.state).toBe(controller.SearchState.SUCCEEDED);
    const gens = seen.map((p) => p.generation);
    expect(gens[0]).toBe(1); // resumed at generation 1, never went back
    // exactly once: no result subject got two messages
    const subjects = await resultSubjects();
    expect(Object.values(subjects).every((n) => n === 1)).toBe(true);

    // an uninterrupted run with the same seed (served by the memo) ends the same
    const ref = await second.manager.start(request(7, { displayName: 'reference' }));
    await finish(second.manager, ref);
    const [a, b] = [await second.manager.get(id), await second.manager.get(ref)];
    expect(a.progress!.best.map((x) => x.best!.encoding)).toEqual(
      b.progress!.best.map((x) => x.best!.encoding),
    );
  });

  it('KV writes use the expected revision; a search cancelled elsewhere stops its runner', async () => {
    await workers(1, 100);
    const a = await controllerInstance();
    const b = await controllerInstance();
    const id = await a.manager.start(
      request(11, { evolution: { populationSize: 6, generations: 6 } }),
    );
    for await (const p of a.manager.watch(id, new AbortController().signal)) {
      if (p.generation >= 1) break;
    }
    // another controller replica cancels it (it is not running there)
    const cancelled = await b.manager.cancel(id);
    expect(cancelled.progress!.state).toBe(controller.SearchState.CANCELLED);
    // the runner on `a` notices at its next write (revision conflict) and stops
    await expect.poll(() => a.manager.runningIds(), { timeout: 20_000 }).toEqual([]);
    const s = await a.manager.get(id);
    expect(s.progress!.state).toBe(controller.SearchState.CANCELLED);
    expect(s.progress!.generation).toBeLessThan(6);
    // a stale revision is refused
    const store = new KvSearchStore(await openKv(jetstream(nc), NATS_NAMES.searchesBucket));
    const cur = (await store.get(id))!;
    await store.update(cur.record, cur.revision);
    await expect(store.update(cur.record, cur.revision)).rejects.toBeInstanceOf(ConflictError);
  });

  it('a job the broker gave up on becomes a FAILED outcome (max-deliveries advisory)', async () => {
    await stopWorkers();
    const { manager } = await controllerInstance();
    // the shared consumer with a short ack wait and 2 deliveries, and only "crashing"
    // evaluators: they take a job and never ack or heartbeat
    await ensureDurableConsumer(jsm, JOBS_STREAM, {
      durable: NATS_NAMES.evaluatorsConsumer,
      filterSubject: `${NATS_NAMES.jobsSubjectPrefix}.>`,
      ackWaitMs: 400,
      maxDeliver: 2,
    });
    const consumer = await jetstream(nc).consumers.get(JOBS_STREAM, NATS_NAMES.evaluatorsConsumer);
    const id = await manager.start(
      request(3, { evolution: { populationSize: 2, generations: 1, maxFailures: 10 } }),
    );
    let taken = 0;
    const until = Date.now() + 30_000;
    let s = await manager.get(id);
    while (Date.now() < until && s.progress!.state !== controller.SearchState.SUCCEEDED) {
      const m = await consumer.next({ expires: 1000 });
      if (m) taken++;
      s = await manager.get(id);
    }
    expect(s.progress!.state).toBe(controller.SearchState.SUCCEEDED);
    expect(s.progress!.failed).toBe(4);
    expect(s.progress!.evaluated).toBe(0);
    expect(taken).toBe(8); // 4 jobs x 2 deliveries
    const store = new KvSearchStore(await openKv(jetstream(nc), NATS_NAMES.searchesBucket));
    const rec = (await store.get(id))!.record;
    const reasons = Object.values(rec.state.tested).map((t) => t.failed);
    expect(reasons).toHaveLength(4);
    for (const r of reasons) expect(r).toMatch(/^MAX_DELIVERIES_EXCEEDED: /);
    // every job left the work queue
    expect((await jsm.streams.info(JOBS_STREAM)).state.messages).toBe(0);
  });

  it('nats-server killed and restarted mid-search: the search completes, no result lost or doubled', async () => {
    await stopWorkers();
    await workers(2, 150);
    const { manager } = await controllerInstance();
    const id = await manager.start(
      request(21, { evolution: { populationSize: 6, generations: 4 } }),
    );
    for await (const p of manager.watch(id, new AbortController().signal)) {
      if (p.generation >= 1 && p.generationDone >= 1) break;
    }
    await server.kill('SIGKILL');
    await sleep(1500);
    await server.restart();
    let s: controller.Search | undefined;
    const until = Date.now() + 90_000;
    while (Date.now() < until) {
      s = await manager.get(id).catch(() => undefined);
      if (s && s.progress!.state !== controller.SearchState.RUNNING) break;
      await sleep(300);
    }
    expect(s!.progress!.state).toBe(controller.SearchState.SUCCEEDED);
    expect(s!.progress!.generation).toBe(4);
    expect(s!.progress!.failed).toBe(0);
    const subjects = await resultSubjects();
    expect(Object.values(subjects).every((n) => n === 1)).toBe(true);
  });
  it('a generation reports progress only after the memo AND the stored results are read', async () => {
    // A controller killed between a result arriving and its memo write leaves that result in
    // the results stream only. Its successor must not report fewer candidates done than the
    // killed one did (progress going backwards for watchers): its first report already
    // counts the stored results, not only the memo.
    await stopWorkers();
    const { ev } = await controllerInstance();
    const js = jetstream(nc);
    const memo = new KvMemoStore(await openKv(js, NATS_NAMES.memoBucket));
    const ctx = poolContext('s-progress', 16, 99);
    const [a, b, c, d] = [1, 2, 3, 4].map((k) => ({
      encoding: Array.from({ length: PN.geneCount }, (_, i) => (i * k + k) % 30),
      cost: { macs: 1, params: 1 },
    }));
    const stored = async (e: Encoding) => {
      const jobId = jobIdOf(ctx, e);
      const r = evaluation.EvaluationResult.fromPartial({
        jobId,
        searchId: ctx.searchId,
        pruningnetId: ctx.pruningnetId,
        pruningnetVersion: ctx.pruningnetVersion,
        status: evaluation.EvaluationStatus.SUCCEEDED,
        top1: 0.5,
        encoding: { genes: [...e] },
      });
      await publishWithMsgId(js, resultSubject(jobId), encodeResult(r), jobId);
    };
    await memo.put(jobIdOf(ctx, a!.encoding), {
      top1: 0.4,
      loss: 1,
      macs: 1,
      params: 1,
      images: 1,
      evaluatorId: 'x',
      time: new Date().toISOString(),
    });
    await stored(b!.encoding);
    await stored(c!.encoding);
    const reports: [number, number, number][] = [];
    const pool = ev.create(ctx, {
      generation: () => 0,
      onProgress: (done, total, hits) => reports.push([done, total, hits]),
    });
    const outcomes = pool.evaluate([a!, b!, c!, d!]);
    await expect.poll(() => reports.length, { timeout: 10_000 }).toBeGreaterThan(0);
    await stored(d!.encoding); // the last one is answered later
    expect(await outcomes).toEqual([{ top1: 0.4 }, { top1: 0.5 }, { top1: 0.5 }, { top1: 0.5 }]);
    expect(reports[0]).toEqual([3, 4, 1]);
    expect(reports.at(-1)).toEqual([4, 4, 1]);
    // the stored results were written to the memo on the way
    expect((await memo.get(jobIdOf(ctx, b!.encoding)))?.top1).toBe(0.5);
  });
  it('a forged result (top1 7.5, published first) is refused: the genuine one counts and is memoised', async () => {
    await stopWorkers();
    const { ev } = await controllerInstance();
    const js = jetstream(nc);
    const memo = new KvMemoStore(await openKv(js, NATS_NAMES.memoBucket));
    const ctx = poolContext('s-forged', 0, 1234);
    const cand = {
      encoding: Array.from({ length: PN.geneCount }, (_, i) => (i * 7 + 5) % 30),
      cost: { macs: 1, params: 1 },
    };
    const jobId = jobIdOf(ctx, cand.encoding);
    const forged = (over: Partial<evaluation.EvaluationResult>) =>
      encodeResult(
        evaluation.EvaluationResult.fromPartial({
          jobId,
          pruningnetId: ctx.pruningnetId,
          pruningnetVersion: ctx.pruningnetVersion,
          encoding: { genes: cand.encoding },
          status: evaluation.EvaluationStatus.SUCCEEDED,
          top1: 7.5,
          ...over,
        }),
      );
    // the forger answers before any evaluator, under the job id (the dedup key), and again
    // with a plausible top-1 for another PruningNet version
    await publishWithMsgId(js, resultSubject(jobId), forged({}), jobId);
    await publishWithMsgId(
      js,
      resultSubject(jobId),
      forged({ top1: 0.99, pruningnetVersion: 2 }),
      `${jobId}.x`,
    );
    const pool = ev.create(ctx, { generation: () => 0 });
    const outcome = pool.evaluate([cand]);
    await workers(1);
    expect(await outcome).toEqual([{ top1: score(cand.encoding) }]);
    expect(ev.refusedResults).toBeGreaterThanOrEqual(1);
    expect((await memo.get(jobId))?.top1).toBe(score(cand.encoding));
  });

  it('an evaluator refuses a job whose id is not the digest of its content', async () => {
    await stopWorkers();
    const [first] = await workers(1);
    const ev = first!.ev;
    const js = jetstream(nc);
    const ctx = poolContext('s-job', 0, 0);
    const genuine = Array.from({ length: PN.geneCount }, () => 3);
    // the id of a genuine candidate over another candidate's content: its score would be
    // stored (and memoised) under the genuine candidate's id
    const jobId = jobIdOf(ctx, genuine);
    const job = evaluation.EvaluationJob.fromPartial({
      jobId,
      pruningnetId: PN.pruningnetId,
      pruningnetVersion: PN.version,
      network: NET,
      encoding: { genes: genuine.map(() => 29) },
      settings: ctx.settings,
      data: PN.data,
      attempt: 1,
    });
    await publishWithMsgId(
      js,
      `${NATS_NAMES.jobsSubjectPrefix}.${jobId}`,
      evaluation.EvaluationJob.encode(job).finish(),
      jobId,
    );
    await expect
      .poll(async () => (await jsm.streams.info(JOBS_STREAM)).state.messages, { timeout: 10_000 })
      .toBe(0);
    expect(ev.calls).toBe(0);
    const info = await jsm.streams.info(RESULTS_STREAM, { subjects_filter: resultSubject(jobId) });
    expect(info.state.subjects?.[resultSubject(jobId)] ?? 0).toBe(0);
  });
});
