import * as grpc from '@grpc/grpc-js';
import { type Encoding, withinBudget } from '@metaprune/core';
import { common, controller } from '@metaprune/proto';
import { FIELD_METADATA_KEY, InvalidArgumentError, startGrpcServer } from '@metaprune/runtime';
import {
  InProcessPoolFactory,
  type InProcessScorer,
  MemoryMemoStore,
  networkFromProto,
  type ResolvedPruningNet,
  StaticPruningNets,
  specToProto,
} from '@metaprune/wire';
import { describe, expect, it } from 'vitest';
import { MemorySearchStore, SearchManager, searchServiceImplementation } from '../src/index.js';

type StartReq = Parameters<typeof controller.StartSearchRequest.fromPartial>[0];

// The W2-like network at a tiny width: 24 genes, cheap cost model.
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
  pruningnetId: 'pn-test',
  version: 2,
  network: NET,
  geneCount: 24,
  data: { dataset: 'fashion-mnist', seed: 1, validationImages: 500 },
};

/** A deterministic stand-in score: wider is better, with an encoding-dependent wobble. */
const score = (e: Encoding): number => {
  let s = 0;
  let h = 7;
  for (const [i, g] of e.entries()) {
    s += g;
    h = (h * 31 + g * (i + 1)) % 1000;
  }
  return Math.min(1, (s / (30 * e.length)) * 0.8 + h / 10_000);
};

function setup(
  scorer: InProcessScorer = async (_c, e) => score(e),
  store = new MemorySearchStore(),
) {
  const memo = new MemoryMemoStore();
  const pools = new InProcessPoolFactory(scorer, memo);
  const manager = new SearchManager({
    store,
    pools,
    pruningnets: new StaticPruningNets([{ ...PN, version: 1 }, PN]),
    memo,
  });
  return { manager, pools, memo, store };
}

const MFLOPS = 1e6;
function request(over: StartReq = {}): controller.StartSearchRequest {
  return controller.StartSearchRequest.fromPartial({
    pruningnetId: 'pn-test',
    budgets: [
      { name: 'small', maxMacs: 12 * MFLOPS },
      { name: 'big', maxMacs: 20 * MFLOPS },
    ],
    evolution: { populationSize: 8, generations: 4 },
    evaluation: { recalibrationBatches: 2, batchSize: 16, validationImages: 64 },
    seed: 11,
    ...over,
  });
}

async function finish(manager: SearchManager, id: string): Promise<controller.SearchProgress[]> {
  const seen: controller.SearchProgress[] = [];
  for await (const p of manager.watch(id, new AbortController().signal)) seen.push(p);
  return seen;
}

describe('SearchManager with an in-process pool', () => {
  it('runs a multi-budget search to the end: best per budget, Pareto front, progress', async () => {
    const { manager, pools } = setup();
    const id = await manager.start(request());
    const seen = await finish(manager, id);
    const last = seen.at(-1)!;
    expect(last.state).toBe(controller.SearchState.SUCCEEDED);
    expect(last.generation).toBe(4);
    // one snapshot per generation at least, generations never go backwards
    const gens = seen.map((p) => p.generation);
    expect([...gens].sort((a, b) => a - b)).toEqual(gens);
    expect(new Set(gens)).toEqual(new Set([0, 1, 2, 3, 4]));
    const search = await manager.get(id);
    expect(search.request?.pruningnetVersion).toBe(2); // 0 resolved to the latest
    expect(search.request?.network).toEqual(NET);
    const best = search.progress!.best;
    expect(best).toHaveLength(2);
    for (const b of best) {
      const c = b.best!;
      expect(c.macs).toBeLessThanOrEqual(b.budget!.maxMacs!);
      expect(c.top1).toBeCloseTo(score(c.encoding!.genes), 12);
      expect(c.evaluationId).toMatch(/^e[0-9a-f]{40}$/);
    }
    expect(best[1]!.best!.top1).toBeGreaterThanOrEqual(best[0]!.best!.top1);
    const front = search.paretoFront;
    expect(front.length).toBeGreaterThan(0);
    for (let i = 1; i < front.length; i++) {
      expect(front[i]!.macs).toBeGreaterThan(front[i - 1]!.macs);
      expect(front[i]!.top1).toBeGreaterThan(front[i - 1]!.top1);
    }
    // 2 budgets x population 8 per generation, each scored once
    expect(search.progress!.evaluated).toBe(pools.scored.size);
    expect([...pools.scored.values()].every((n) => n === 1)).toBe(true);
    expect(pools.scored.size).toBeGreaterThan(4 * 8);
  });

  it('a second search with the same seed reuses the memo and finds the same bests', async () => {
    const { manager, pools } = setup();
    const a = await manager.start(request());
    await finish(manager, a);
    const scoredAfterA = pools.scored.size;
    const b = await manager.start(request({ displayName: 'again' }));
    const seen = await finish(manager, b);
    expect(pools.scored.size).toBe(scoredAfterA); // nothing evaluated twice
    expect(seen.at(-1)!.memoHits).toBe(scoredAfterA);
    const [sa, sb] = [await manager.get(a), await manager.get(b)];
    expect(sb.progress!.best.map((x) => x.best?.encoding)).toEqual(
      sa.progress!.best.map((x) => x.best?.encoding),
    );
  });

  it('GetEvaluations answers from the memo with the evaluation ids of the search', async () => {
    const { manager, memo } = setup();
    const id = await manager.start(request());
    await finish(manager, id);
    const search = await manager.get(id);
    const front = search.paretoFront;
    const net = networkFromProto(NET);
    const uniform = net.genes.map(() => 0);
    const res = await manager.evaluations(
      controller.GetEvaluationsRequest.fromPartial({
        searchId: id,
        encodings: [...front.map((c) => c.encoding!), { genes: uniform }],
      }),
    );
    expect(res.evaluations).toHaveLength(front.length + 1);
    front.forEach((c, i) => {
      const e = res.evaluations[i]!;
      expect(e.found).toBe(true);
      expect(e.evaluationId).toBe(c.evaluationId);
      expect(e.top1).toBeCloseTo(score(c.encoding!.genes), 12);
    });
    const last = res.evaluations.at(-1)!;
    expect(last.found).toBe(memo.entries.has(last.evaluationId));
    expect(last.encoding?.genes).toEqual(uniform);
    const err = await manager
      .evaluations(
        controller.GetEvaluationsRequest.fromPartial({ searchId: id, encodings: [{ genes: [1] }] }),
      )
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe('encodings[0].genes');
    await expect(
      manager.evaluations(controller.GetEvaluationsRequest.fromPartial({ searchId: 'nope' })),
    ).rejects.toThrow(/not found/);
  });

  it('a controller stopped mid-generation resumes and ends like an uninterrupted run', async () => {
    const reference = setup();
    const refId = await reference.manager.start(request({ seed: 5 }));
    await finish(reference.manager, refId);
    const refBest = (await reference.manager.get(refId)).progress!.best.map((b) => b.best);

    // first controller: stops (shutdown) in the middle of generation 2
    let calls = 0;
    let release!: () => void;
    const stuck = new Promise<void>((r) => {
      release = r;
    });
    const first = setup(async (_c, e, signal) => {
      calls++;
      if (calls > 2 * 8 * 2 + 3) {
        // hang until the runner is aborted
        await new Promise<void>((_r, reject) => {
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
          void stuck;
        });
      }
      return score(e);
    });
    const id = await first.manager.start(request({ seed: 5 }));
    await expect.poll(() => calls, { timeout: 10_000 }).toBeGreaterThan(2 * 8 * 2 + 3);
    await first.manager.close();
    release();
    const stored = await first.store.get(id);
    expect(stored!.record.status).toBe('RUNNING');
    expect(stored!.record.state.generation).toBe(2);

    // second controller on the same store: resumes, re-proposes the same generation 2
    const second = setup(async (_c, e) => score(e), first.store);
    expect(await second.manager.resumeAll()).toEqual([id]);
    const seen = await finish(second.manager, id);
    expect(seen.at(-1)!.state).toBe(controller.SearchState.SUCCEEDED);
    const best = (await second.manager.get(id)).progress!.best.map((b) => b.best);
    expect(best.map((b) => b?.encoding)).toEqual(refBest.map((b) => b?.encoding));
    expect(best.map((b) => b?.top1)).toEqual(refBest.map((b) => b?.top1));
  });

  it('cancel stops a running search, keeps its bests, and ends watchers', async () => {
    let calls = 0;
    const { manager } = setup(async (_c, e, signal) => {
      calls++;
      if (calls > 20) {
        await new Promise((_r, reject) =>
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true }),
        );
      }
      return score(e);
    });
    const id = await manager.start(request());
    const watching = finish(manager, id);
    await expect.poll(() => calls, { timeout: 10_000 }).toBeGreaterThan(20);
    const s = await manager.cancel(id);
    expect(s.progress!.state).toBe(controller.SearchState.CANCELLED);
    expect(s.progress!.generation).toBe(1);
    expect(s.progress!.best[0]!.best).toBeDefined();
    expect(s.endTime).toBeInstanceOf(Date);
    const seen = await watching;
    expect(seen.at(-1)!.state).toBe(controller.SearchState.CANCELLED);
    // cancelling again is a no-op
    expect((await manager.cancel(id)).progress!.state).toBe(controller.SearchState.CANCELLED);
  });

  it('fails with a clear reason once failures exceed the failure budget', async () => {
    const { manager } = setup(async () => {
      throw new Error('poison');
    });
    const id = await manager.start(
      request({ evolution: { populationSize: 4, generations: 3, maxFailures: 5 } }),
    );
    const seen = await finish(manager, id);
    expect(seen.at(-1)!.state).toBe(controller.SearchState.FAILED);
    const s = await manager.get(id);
    expect(s.error).toMatch(
      /evaluations failed, more than the failure budget \(maxFailures 5\).*poison/,
    );
  });

  it('lists newest first with paging and a state filter', async () => {
    const { manager } = setup();
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      ids.push(await manager.start(request({ evolution: { populationSize: 2, generations: 1 } })));
      await new Promise((r) => setTimeout(r, 5));
    }
    for (const id of ids) await finish(manager, id);
    const p1 = await manager.list(controller.ListSearchesRequest.fromPartial({ pageSize: 2 }));
    expect(p1.searches.map((s) => s.searchId)).toEqual([ids[2], ids[1]]);
    expect(p1.searches[0]!.paretoFront).toEqual([]);
    const p2 = await manager.list(
      controller.ListSearchesRequest.fromPartial({ pageSize: 2, pageToken: p1.nextPageToken }),
    );
    expect(p2.searches.map((s) => s.searchId)).toEqual([ids[0]]);
    expect(p2.nextPageToken).toBe('');
    const none = await manager.list(
      controller.ListSearchesRequest.fromPartial({ state: controller.SearchState.RUNNING }),
    );
    expect(none.searches).toEqual([]);
    // a token or state that is not ours is refused, not ignored
    for (const [req, field] of [
      [{ pageToken: '!!!' }, 'pageToken'],
      [{ pageToken: Buffer.from('0').toString('base64url') }, 'pageToken'],
      [{ pageToken: `${p1.nextPageToken}x` }, 'pageToken'],
      [{ state: 99 as controller.SearchState }, 'state'],
    ] as const) {
      const err = await manager
        .list(controller.ListSearchesRequest.fromPartial(req))
        .catch((e: unknown) => e);
      expect(err, JSON.stringify(req)).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe(field);
    }
  });
});

describe('StartSearch validation', () => {
  const { manager } = setup();
  const cases: [string, StartReq, string][] = [
    ['no PruningNet', { pruningnetId: '' }, 'pruningnetId'],
    ['unknown PruningNet', { pruningnetId: 'nope' }, 'pruningnetId'],
    ['unknown version', { pruningnetVersion: 9 }, 'pruningnetVersion'],
    ['no budget', { budgets: [] }, 'budgets'],
    [
      'infeasible max MACs',
      { budgets: [common.Budget.fromPartial({ maxMacs: 1000 })] },
      'budgets[0].maxMacs',
    ],
    [
      'infeasible min MACs',
      {
        budgets: [
          { name: '', maxMacs: 20e6 },
          { name: '', minMacs: 1e12 },
        ],
      },
      'budgets[1].minMacs',
    ],
    [
      'min above max',
      { budgets: [{ name: '', minMacs: 8e6, maxMacs: 7e6 }] },
      'budgets[0].minMacs',
    ],
    [
      'latency without profiler',
      { budgets: [{ name: '', maxLatencyMs: 3, latencyDeviceId: 'd' }] },
      'budgets[0].maxLatencyMs',
    ],
    ['population', { evolution: { populationSize: 20_000 } }, 'evolution.populationSize'],
    [
      'mutants + crossovers',
      { evolution: { populationSize: 10, mutants: 6, crossovers: 6 } },
      'evolution.crossovers',
    ],
    [
      'NaN mutation probability',
      { evolution: { mutationProbability: Number.NaN } },
      'evolution.mutationProbability',
    ],
    [
      'mutation probability above 1',
      { evolution: { mutationProbability: 1.5 } },
      'evolution.mutationProbability',
    ],
    ['parents above keep', { evolution: { keepBest: 3, parents: 4 } }, 'evolution.parents'],
    ['batch size', { evaluation: { batchSize: 5000 } }, 'evaluation.batchSize'],
    ['display name', { displayName: 'x'.repeat(129) }, 'displayName'],
    [
      'network mismatch',
      { network: common.NetworkSpec.fromPartial({ ...NET, widthMultiplier: 1 }) },
      'network',
    ],
    [
      'unset family',
      { network: common.NetworkSpec.fromPartial({ preset: common.NetworkPreset.SMALL }) },
      'network.family',
    ],
    [
      'width out of range',
      { network: common.NetworkSpec.fromPartial({ ...NET, widthMultiplier: 3.5 }) },
      'network.width_multiplier',
    ],
  ];
  for (const [what, over, field] of cases) {
    it(`${what} → INVALID_ARGUMENT on ${field}`, async () => {
      const err = await manager.start(request(over)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe(field);
    });
  }

  it('accepts a network equal to the PruningNet one and fills defaults', async () => {
    const id = await manager.start(
      request({
        network: common.NetworkSpec.fromPartial({
          family: common.NetworkFamily.MOBILENET_V2,
          preset: common.NetworkPreset.SMALL,
          widthMultiplier: 0.5,
        }),
        evolution: { populationSize: 6, generations: 1 },
      }),
    );
    const s = await manager.get(id);
    expect(s.request!.evolution).toMatchObject({
      populationSize: 6,
      keepBest: 6,
      parents: 6,
      mutants: 3,
      crossovers: 3,
      mutationProbability: 0.1,
      maxAttempts: 1000,
      maxFailures: 1,
    });
    await finish(manager, id);
  });

  it('the budgets it accepts are met by every candidate it evaluates', async () => {
    const { manager: m, store } = setup();
    const id = await m.start(request());
    await finish(m, id);
    const rec = (await store.get(id))!.record;
    for (const t of Object.values(rec.state.tested)) {
      expect(rec.state.budgets.some((b) => withinBudget(t.cost, b))).toBe(true);
    }
  });
});

describe('SearchService over gRPC', () => {
  it('maps errors to status codes and streams progress', async () => {
    const { manager } = setup();
    const server = await startGrpcServer({
      port: 0,
      services: [
        {
          definition: controller.SearchServiceService,
          implementation: searchServiceImplementation(manager),
        },
      ],
    });
    const client = new controller.SearchServiceClient(
      server.address,
      grpc.credentials.createInsecure(),
    );
    try {
      const bad = await new Promise<grpc.ServiceError>((resolve) =>
        client.startSearch(
          request({ budgets: [common.Budget.fromPartial({ maxMacs: 10 })] }),
          (err) => resolve(err!),
        ),
      );
      expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(bad.metadata.get(FIELD_METADATA_KEY)).toEqual(['budgets[0].maxMacs']);
      expect(bad.details).toMatch(/cannot be met by any candidate/);

      const missing = await new Promise<grpc.ServiceError>((resolve) =>
        client.getSearch({ searchId: 'nope' }, (err) => resolve(err!)),
      );
      expect(missing.code).toBe(grpc.status.NOT_FOUND);

      const started = await new Promise<controller.StartSearchResponse>((resolve, reject) =>
        client.startSearch(request(), (err, res) => (err ? reject(err) : resolve(res))),
      );
      const stream = client.watchSearch({ searchId: started.searchId });
      const seen: controller.SearchProgress[] = [];
      for await (const msg of stream as AsyncIterable<controller.WatchSearchResponse>) {
        seen.push(msg.progress!);
      }
      expect(seen.at(-1)!.state).toBe(controller.SearchState.SUCCEEDED);
      const got = await new Promise<controller.GetSearchResponse>((resolve, reject) =>
        client.getSearch({ searchId: started.searchId }, (err, res) =>
          err ? reject(err) : resolve(res),
        ),
      );
      expect(got.search!.paretoFront.length).toBeGreaterThan(0);
    } finally {
      client.close();
      await server.shutdown(1000);
    }
  });
});
