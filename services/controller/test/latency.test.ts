import {
  buildNetwork,
  type Encoding,
  LatencyPredictor,
  type LatencyRow,
  type LatencyTable,
  networkFingerprint,
  planLatencyTable,
  tiedChannels,
  withinBudget,
} from '@metaprune/core';
import { common, controller } from '@metaprune/proto';
import { FailedPreconditionError, InvalidArgumentError } from '@metaprune/runtime';
import {
  InProcessPoolFactory,
  type InProcessScorer,
  MemoryMemoStore,
  networkFromProto,
  StaticPruningNets,
  specToProto,
} from '@metaprune/wire';
import { describe, expect, it } from 'vitest';
import {
  describeNetworkShape,
  type LatencyTableSource,
  latencyRequestOf,
  latencyTwin,
  MemorySearchStore,
  profileCommandFor,
  SearchManager,
  StaticLatencyTables,
} from '../src/index.js';

type StartReq = Parameters<typeof controller.StartSearchRequest.fromPartial>[0];
type BudgetIn = Parameters<typeof common.Budget.fromPartial>[0];

// Latency budgets in the controller: field checks, the table lookup, feasibility against
// the predictor's bounds, generation-time rejection, and resuming with the stored version.
const NET = specToProto(
  networkFromProto(
    common.NetworkSpec.fromPartial({
      family: common.NetworkFamily.MOBILENET_V2,
      preset: common.NetworkPreset.SMALL,
      widthMultiplier: 0.5,
    }),
  ).spec,
);
const net = networkFromProto(NET);

/** A table over a coarse grid: each row a fixed function of (layer, cin, cout). */
function table(version: number, constantMs: number, batchSize = 1): LatencyTable {
  const plan = planLatencyTable(net, { points: 3 });
  const rows: LatencyRow[] = [];
  for (const u of plan.units) {
    const l = u.layer;
    for (const cin of u.cins) {
      for (const cout of tiedChannels(l) ? [cin] : u.couts) {
        rows.push({
          layer: l.name,
          kind: l.kind,
          kernel: l.kernel,
          stride: l.stride,
          inSize: l.inSize,
          cin,
          cout,
          medianMs: 0.002 + 1e-6 * cin * (tiedChannels(l) ? 9 : cout) + 1e-4 * (u.index % 3),
          spreadMs: 0.001,
          repeats: 5,
        });
      }
    }
  }
  return {
    network: net.spec,
    fingerprint: networkFingerprint(net),
    backend: 'wasm',
    batchSize,
    constantMs,
    warmupRuns: 1,
    interpolated: plan.interpolated,
    rows,
    version,
  };
}

const V1 = table(1, 0.2);
const P1 = new LatencyPredictor(net, V1);
const LO = P1.lowerBoundMs();
const HI = P1.upperBoundMs();
/** About a third of the way up: many random candidates are rejected, many fit. */
const MID = LO + (HI - LO) * 0.35;
/** A later upload: every prediction SHIFT higher (small enough that candidates still fit). */
const SHIFT = (HI - LO) * 0.05;
const V2 = table(2, 0.2 + SHIFT);
const P2 = new LatencyPredictor(net, V2);

const tables = (...t: LatencyTable[]) =>
  new StaticLatencyTables([
    { deviceId: 'dev-1', name: 'lab', tables: t },
    { deviceId: 'dev-2', name: 'phone', tables: [] },
  ]);

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
  latency: LatencyTableSource | undefined,
  o: { scorer?: InProcessScorer; store?: MemorySearchStore } = {},
) {
  const store = o.store ?? new MemorySearchStore();
  const pools = new InProcessPoolFactory(
    o.scorer ?? (async (_c, e) => score(e)),
    new MemoryMemoStore(),
  );
  const manager = new SearchManager({
    store,
    pools,
    pruningnets: new StaticPruningNets([
      {
        pruningnetId: 'pn',
        version: 1,
        network: NET,
        geneCount: 24,
        data: { dataset: 'fashion-mnist', seed: 1, validationImages: 500 },
      },
    ]),
    ...(latency ? { latency } : {}),
  });
  return { manager, store, pools };
}

const lat = (over: BudgetIn = {}): BudgetIn => ({
  name: 'lat',
  maxLatencyMs: MID,
  latencyDeviceId: 'lab',
  ...over,
});

function request(budgets: BudgetIn[], over: StartReq = {}): controller.StartSearchRequest {
  return controller.StartSearchRequest.fromPartial({
    pruningnetId: 'pn',
    budgets,
    evolution: { populationSize: 8, generations: 4 },
    evaluation: { recalibrationBatches: 1, batchSize: 16, validationImages: 64 },
    seed: 3,
    ...over,
  });
}

async function finish(manager: SearchManager, id: string): Promise<controller.SearchProgress[]> {
  const seen: controller.SearchProgress[] = [];
  for await (const p of manager.watch(id, new AbortController().signal)) seen.push(p);
  return seen;
}

async function startError(manager: SearchManager, req: controller.StartSearchRequest) {
  return manager.start(req).then(
    () => undefined,
    (e: unknown) => e as Error,
  );
}

describe('latency budget validation', () => {
  const { manager } = setup(tables(V1, V2));
  const cases: [string, BudgetIn[], string][] = [
    ['NaN bound', [lat({ maxLatencyMs: Number.NaN })], 'budgets[0].maxLatencyMs'],
    ['zero bound', [lat({ maxLatencyMs: 0 })], 'budgets[0].maxLatencyMs'],
    ['negative bound', [lat({ maxLatencyMs: -1 })], 'budgets[0].maxLatencyMs'],
    [
      'infinite bound',
      [lat({ maxLatencyMs: Number.POSITIVE_INFINITY })],
      'budgets[0].maxLatencyMs',
    ],
    ['bound above 1e6', [lat({ maxLatencyMs: 2e6 })], 'budgets[0].maxLatencyMs'],
    [
      'no device',
      [{ name: 'm', maxMacs: 20e6 }, lat({ latencyDeviceId: '' })],
      'budgets[1].latencyDeviceId',
    ],
    ['device with spaces', [lat({ latencyDeviceId: 'my phone' })], 'budgets[0].latencyDeviceId'],
    ['bad backend', [lat({ latencyBackend: 'wasm!' })], 'budgets[0].latencyBackend'],
    ['batch size', [lat({ latencyBatchSize: 5000 })], 'budgets[0].latencyBatchSize'],
    [
      'mixed devices',
      [lat(), { name: 'm', maxMacs: 20e6 }, lat({ latencyDeviceId: 'phone' })],
      'budgets[2].latencyDeviceId',
    ],
    ['mixed backends', [lat(), lat({ latencyBackend: 'cpu' })], 'budgets[1].latencyBackend'],
    ['mixed batch sizes', [lat(), lat({ latencyBatchSize: 4 })], 'budgets[1].latencyBatchSize'],
    ['unknown device', [lat({ latencyDeviceId: 'nope' })], 'budgets[0].latencyDeviceId'],
    ['bound below every candidate', [lat({ maxLatencyMs: LO * 0.9 })], 'budgets[0].maxLatencyMs'],
  ];
  for (const [what, budgets, field] of cases) {
    it(`${what} → INVALID_ARGUMENT on ${field}`, async () => {
      const err = await startError(manager, request(budgets));
      expect(err).toBeInstanceOf(InvalidArgumentError);
      expect((err as InvalidArgumentError).field).toBe(field);
    });
  }

  it('a controller without a latency profiler refuses latency budgets, naming the field', async () => {
    const bare = setup(undefined).manager;
    const err = await startError(bare, request([{ name: 'm', maxMacs: 20e6 }, lat()]));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe('budgets[1].maxLatencyMs');
    expect(err!.message).toMatch(/latency profiler/);
    // a device id alone (no bound) is ignored, as the proto says
    const id = await bare.start(
      request([{ name: 'm', maxMacs: 20e6, latencyDeviceId: 'lab' }], {
        evolution: { populationSize: 4, generations: 1 },
      }),
    );
    expect((await finish(bare, id)).at(-1)!.state).toBe(controller.SearchState.SUCCEEDED);
  });

  it('an infeasible bound names the budget and the reachable range', async () => {
    const err = await startError(manager, request([lat({ maxLatencyMs: LO * 0.5 })]));
    expect(err!.message).toContain(
      `[${P2.lowerBoundMs().toFixed(4)}, ${P2.upperBoundMs().toFixed(4)}] ms`,
    );
    expect(err!.message).toMatch(/device "lab".*table version 2/);
    // the bound itself is reachable
    const ok = await manager.start(
      request([lat({ maxLatencyMs: P2.lowerBoundMs() + 1e-9 })], {
        evolution: { populationSize: 2, generations: 1, maxAttempts: 5 },
      }),
    );
    expect(ok).toMatch(/^s/);
    await finish(manager, ok);
  });

  it('a device without a table for the batch size → FAILED_PRECONDITION listing what it has', async () => {
    const err = await startError(manager, request([lat({ latencyBatchSize: 8 })]));
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect(err!.message).toMatch(
      /budgets\[0\]\.latencyDeviceId: device "lab" has no latency table/,
    );
    expect(err!.message).toMatch(/batch size 8/);
    expect(err!.message).toMatch(/wasm\.b1 v2/);
  });

  it('a table for 3 input channels and a 1-channel (Fashion-MNIST) search: names the shape and the profile command', async () => {
    const fmnist = buildNetwork({ ...net.spec, inputChannels: 1 });
    const q = { device: 'lab', backend: '', batchSize: 1, version: 0 };
    const err = await tables(V1)
      .resolve(q, fmnist, 'budgets[0]')
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(err).toBeInstanceOf(FailedPreconditionError);
    const m = err!.message;
    expect(m).toMatch(
      /^budgets\[0\]\.latencyDeviceId: device "lab" has no latency table for mobilenetv2\.small\.w0\.5\.i32x1\.c10\.metapruning\.full0, batch size 1/,
    );
    expect(m).toContain(
      "the search's network is mobilenetv2, preset small, width 0.5, input 32x32 with 1 channel, 10 classes, layout metapruning",
    );
    // what it has, and how that differs
    expect(m).toContain(
      '(it has mobilenetv2.small.w0.5.i32x3.c10.metapruning.full0.wasm.b1 v1 (input channels 3, not 1))',
    );
    expect(m).toMatch(
      /measure one on that device with `metaprune profile --device lab --network mobilenetv2 --preset small --width 0\.5 --input-channels 1`$/,
    );
    // by device id, the command still names the device by name; backend and batch carried
    const err2 = await tables(V1)
      .resolve({ device: 'dev-1', backend: 'wasm', batchSize: 4, version: 0 }, fmnist, 'budgets[2]')
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(err2!.message).toContain('(input channels 3, not 1, batch size 1, not 4)');
    expect(err2!.message).toContain(
      '`metaprune profile --device lab --network mobilenetv2 --preset small --width 0.5 --input-channels 1 --backend wasm --batch 4`',
    );
    // a device with no tables at all
    const err3 = await tables(V1)
      .resolve({ ...q, device: 'phone' }, fmnist, 'budgets[0]')
      .then(
        () => undefined,
        (e: unknown) => e as Error,
      );
    expect(err3!.message).toMatch(
      /\(it has none\); measure one on that device with `metaprune profile --device phone /,
    );
  });

  it('profileCommandFor: flags for every field off the preset defaults', () => {
    const q = { device: 'x', backend: '', batchSize: 1, version: 0 };
    expect(profileCommandFor('lab', net, q)).toBe(
      'metaprune profile --device lab --network mobilenetv2 --preset small --width 0.5',
    );
    const odd = buildNetwork({
      family: 'resnet50',
      preset: 'imagenet',
      width: 0.25,
      inputSize: 96,
      inputChannels: 1,
      numClasses: 10,
      lastStageFull: false,
    });
    expect(profileCommandFor('lab', odd, { ...q, backend: 'cpu' })).toBe(
      'metaprune profile --device lab --network resnet50 --preset imagenet --width 0.25 --input-size 96 --input-channels 1 --classes 10 --prune-last-stage --backend cpu',
    );
    const std = buildNetwork({ ...net.spec, layout: 'standard', lastStageFull: false });
    expect(profileCommandFor('lab', std, q)).toBe(
      'metaprune profile --device lab --network mobilenetv2 --preset small --width 0.5 --layout standard',
    );
    expect(describeNetworkShape(odd)).toBe(
      'resnet50, preset imagenet, width 0.25, input 96x96 with 1 channel, 10 classes, layout metapruning, last stage pruned',
    );
  });

  it('latencyRequestOf: one request for equal budgets, batch 0 meaning 1', () => {
    const budgets = [lat(), { name: 'm', maxMacs: 1e6 }, lat({ latencyBatchSize: 1 })].map((b) =>
      common.Budget.fromPartial(b),
    );
    expect(latencyRequestOf(budgets, true)).toEqual({
      device: 'lab',
      backend: '',
      batchSize: 1,
      version: 0,
      field: 'budgets[0]',
    });
    expect(latencyRequestOf([common.Budget.fromPartial({ maxMacs: 1e6 })], false)).toBeUndefined();
  });
});

describe('searches under latency budgets', () => {
  it('every candidate is predicted with the latest table and meets a budget; results carry the prediction', async () => {
    const { manager, store } = setup(tables(V1, V2));
    const mid2 = MID + SHIFT; // V2 is SHIFT slower everywhere
    const id = await manager.start(
      request([
        lat({ maxLatencyMs: mid2 }),
        { name: 'both', maxMacs: 14e6, maxLatencyMs: mid2 + 0.05, latencyDeviceId: 'lab' },
      ]),
    );
    const seen = await finish(manager, id);
    expect(seen.at(-1)!.state).toBe(controller.SearchState.SUCCEEDED);
    const rec = (await store.get(id))!.record;
    expect(rec.ctx.latency).toEqual({
      device: 'lab',
      deviceId: 'dev-1',
      backend: 'wasm',
      batchSize: 1,
      version: 2,
      fingerprint: networkFingerprint(net),
    });
    const tested = Object.entries(rec.state.tested);
    expect(tested.length).toBeGreaterThan(20);
    for (const [key, t] of tested) {
      const enc = key.split(',').map(Number);
      expect(t.cost.latencyMs).toBe(P2.predict(enc));
      expect(rec.state.budgets.some((b) => withinBudget(t.cost, b))).toBe(true);
    }
    // over-budget candidates were generated and rejected before evaluation
    expect(seen.at(-1)!.rejected).toBeGreaterThan(0);
    const s = await manager.get(id);
    for (const b of s.progress!.best) {
      const c = b.best!;
      expect(c.predictedLatencyMs).toBe(P2.predict(c.encoding!.genes));
      expect(c.predictedLatencyMs).toBeLessThanOrEqual(b.budget!.maxLatencyMs!);
    }
    expect(s.progress!.best[1]!.best!.macs).toBeLessThanOrEqual(14e6);
    expect(s.paretoFront.length).toBeGreaterThan(0);
    for (const c of s.paretoFront) expect(c.predictedLatencyMs).toBe(P2.predict(c.encoding!.genes));
    // a MACs-only search reports no latency
    const plain = await manager.start(
      request([{ name: 'm', maxMacs: 20e6 }], { evolution: { populationSize: 4, generations: 1 } }),
    );
    await finish(manager, plain);
    expect((await manager.get(plain)).progress!.best[0]!.best!.predictedLatencyMs).toBeUndefined();
  });

  it('a table measured with keep_last_stage_full flipped serves MobileNets, not ResNet-50', async () => {
    const twin = latencyTwin(net)!;
    expect(twin.spec.lastStageFull).toBe(!net.spec.lastStageFull);
    expect(twin.layers.map((l) => l.name)).toEqual(net.layers.map((l) => l.name));
    const resnet = buildNetwork({ family: 'resnet50', preset: 'small', width: 0.5 });
    expect(latencyTwin(resnet)).toBeUndefined();
    const other = { ...V1, network: twin.spec, fingerprint: networkFingerprint(twin) };
    const { manager, store } = setup(tables(other));
    const id = await manager.start(
      request([lat()], { evolution: { populationSize: 4, generations: 2 } }),
    );
    expect((await finish(manager, id)).at(-1)!.state).toBe(controller.SearchState.SUCCEEDED);
    const rec = (await store.get(id))!.record;
    expect(rec.ctx.latency?.fingerprint).toBe(networkFingerprint(twin));
    const tested = Object.entries(rec.state.tested);
    expect(tested.length).toBeGreaterThan(4);
    for (const [key, t] of tested)
      expect(t.cost.latencyMs).toBe(P1.predict(key.split(',').map(Number)));
  });

  /** Starts a search on `first` and stops that controller in the middle of generation 2. */
  async function interrupted(first: LatencyTableSource) {
    let calls = 0;
    const a = setup(first, {
      scorer: async (_c, e, signal) => {
        calls++;
        if (calls > 8 * 2 + 3) {
          await new Promise<void>((_r, reject) =>
            signal?.addEventListener('abort', () => reject(signal.reason), { once: true }),
          );
        }
        return score(e);
      },
    });
    const id = await a.manager.start(request([lat()]));
    await expect.poll(() => calls, { timeout: 10_000 }).toBeGreaterThan(8 * 2 + 3);
    await a.manager.close();
    const stored = (await a.store.get(id))!.record;
    expect(stored.status).toBe('RUNNING');
    expect(stored.ctx.latency?.version).toBe(1);
    return { id, store: a.store };
  }

  it('a resumed search predicts with the table version it started with, not a newer upload', async () => {
    const { id, store } = await interrupted(tables(V1));
    const b = setup(tables(V1, V2), { store });
    expect(await b.manager.resumeAll()).toEqual([id]);
    expect((await finish(b.manager, id)).at(-1)!.state).toBe(controller.SearchState.SUCCEEDED);
    const rec = (await store.get(id))!.record;
    expect(rec.state.generation).toBe(4);
    // the resumed controller did generate (and predict) candidates of generations 2 and 3
    expect(Object.values(rec.generationOf).filter((g) => g >= 2).length).toBeGreaterThan(4);
    for (const [key, t] of Object.entries(rec.state.tested)) {
      expect(t.cost.latencyMs).toBe(P1.predict(key.split(',').map(Number)));
    }
    const best = (await b.manager.get(id)).progress!.best[0]!.best!;
    expect(best.predictedLatencyMs).toBeLessThanOrEqual(MID);
    expect(best.predictedLatencyMs).toBe(P1.predict(best.encoding!.genes));
  });

  it('a resumed search fails clearly when its table is gone or no profiler is configured', async () => {
    const gone = await interrupted(tables(V1));
    const b = setup(tables(V2), { store: gone.store });
    await b.manager.resumeAll();
    const last = (await finish(b.manager, gone.id)).at(-1)!;
    expect(last.state).toBe(controller.SearchState.FAILED);
    const s = await b.manager.get(gone.id);
    expect(s.error).toMatch(/latency table the search started with.*version 1.*cannot be fetched/);

    const bare = await interrupted(tables(V1));
    const c = setup(undefined, { store: bare.store });
    await c.manager.resumeAll();
    expect((await finish(c.manager, bare.id)).at(-1)!.state).toBe(controller.SearchState.FAILED);
    expect((await c.manager.get(bare.id)).error).toMatch(/no latency profiler/);
  });
});
