/**
 * A locked-down stack, end to end, with real processes on loopback: mutual TLS on every
 * gRPC port (health in plaintext on a separate port for probes), nats-server requiring TLS
 * with client certificates and nkey authentication, bearer tokens on StartTraining /
 * StartSearch, and OTLP/HTTP export of traces and metrics to a receiver in this test. One
 * search must show up as ONE trace spanning the controller, the evaluator and the weight
 * generator.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  followSearch,
  type Stack,
  searchClient,
  startStack,
  type TrainedPruningNet,
  trainOnStack,
} from '@metaprune/cli';
import { costModel } from '@metaprune/core';
import { common, controller, weightgen } from '@metaprune/proto';
import { checkHealth, connectNats, SPAN_NAMES } from '@metaprune/runtime';
import { type NatsServerHandle, startNatsServer, waitFor } from '@metaprune/testkit';
import { networkFromProto } from '@metaprune/wire';
import { createUser } from '@nats-io/nkeys';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOtlpReceiver } from './helpers/otlp.js';
import { makeTestPki, type TestPki } from './helpers/pki.js';

const NETWORK = common.NetworkSpec.fromPartial({
  family: common.NetworkFamily.MOBILENET_V2,
  preset: common.NetworkPreset.SMALL,
  widthMultiplier: 0.25,
  inputSize: 32,
  inputChannels: 1,
  numClasses: 10,
});
const net = networkFromProto(NETWORK);
const BUDGET = Math.round(costModel(net).cost(net.genes.map(() => 30)).macs * 0.7);
const TOKEN = 'e2e-secret-token';

// --- OTLP/JSON ------------------------------------------------------------------------
interface OtlpValue {
  stringValue?: string;
  intValue?: string | number;
  doubleValue?: number;
  boolValue?: boolean;
}
interface OtlpAttr {
  key: string;
  value: OtlpValue;
}
interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  attributes?: OtlpAttr[];
}
interface Span extends OtlpSpan {
  service: string;
}
const KIND = { INTERNAL: 1, SERVER: 2, CLIENT: 3, PRODUCER: 4, CONSUMER: 5 } as const;

function attr(attrs: OtlpAttr[] | undefined, key: string): string | number | boolean | undefined {
  const v = attrs?.find((a) => a.key === key)?.value;
  if (!v) return undefined;
  return (
    v.stringValue ??
    (v.intValue !== undefined ? Number(v.intValue) : undefined) ??
    v.doubleValue ??
    v.boolValue
  );
}

describe('a secured, traced stack (mTLS, NATS TLS + nkey, tokens, OTLP)', () => {
  let home: string;
  let pki: TestPki;
  let nats: NatsServerHandle;
  let stack: Stack;
  let otlp: Awaited<ReturnType<typeof startOtlpReceiver>>;
  let pn: TrainedPruningNet;
  let nkeySeed: string;
  const savedEnv: Record<string, string | undefined> = {};

  const spans = (): Span[] => {
    const out: Span[] = [];
    for (const r of otlp.requests) {
      if (!r.path.endsWith('/v1/traces')) continue;
      const body = JSON.parse(r.body.toString('utf8')) as {
        resourceSpans?: {
          resource?: { attributes?: OtlpAttr[] };
          scopeSpans?: { spans?: OtlpSpan[] }[];
        }[];
      };
      for (const rs of body.resourceSpans ?? []) {
        const service = String(attr(rs.resource?.attributes, 'service.name'));
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans ?? []) out.push({ ...s, service });
        }
      }
    }
    return out;
  };
  const metricNames = (): Map<string, Set<string>> => {
    const out = new Map<string, Set<string>>();
    for (const r of otlp.requests) {
      if (!r.path.endsWith('/v1/metrics')) continue;
      const body = JSON.parse(r.body.toString('utf8')) as {
        resourceMetrics?: {
          resource?: { attributes?: OtlpAttr[] };
          scopeMetrics?: { metrics?: { name: string }[] }[];
        }[];
      };
      for (const rm of body.resourceMetrics ?? []) {
        const service = String(attr(rm.resource?.attributes, 'service.name'));
        for (const sm of rm.scopeMetrics ?? []) {
          for (const m of sm.metrics ?? []) {
            if (!out.has(m.name)) out.set(m.name, new Set());
            out.get(m.name)!.add(service);
          }
        }
      }
    }
    return out;
  };

  const mtls = () =>
    grpc.credentials.createSsl(
      Buffer.from(readText(pki.ca)),
      Buffer.from(readText(pki.key)),
      Buffer.from(readText(pki.cert)),
    );

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'metaprune-secure-'));
    mkdirSync(join(home, 'pki'));
    pki = makeTestPki(join(home, 'pki'));
    otlp = await startOtlpReceiver();

    const user = createUser();
    nkeySeed = new TextDecoder().decode(user.getSeed());
    const conf = join(home, 'nats.conf');
    writeFileSync(
      conf,
      [
        `tls { cert_file: "${pki.cert}", key_file: "${pki.key}", ca_file: "${pki.ca}", verify: true }`,
        `authorization { users: [ { nkey: "${user.getPublicKey()}" } ] }`,
      ].join('\n'),
    );
    nats = await startNatsServer({ jetstream: true, extraArgs: ['-c', conf] });

    const otel = {
      OTEL_EXPORTER_OTLP_ENDPOINT: otlp.url,
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json',
      OTEL_BSP_SCHEDULE_DELAY: '200',
      OTEL_METRIC_EXPORT_INTERVAL: '500',
      OTEL_METRIC_EXPORT_TIMEOUT: '400',
    };
    const natsSec = (p: string) => ({
      [`${p}NATS_NKEY_SEED`]: nkeySeed,
      [`${p}NATS_TLS_CA`]: pki.ca,
      [`${p}NATS_TLS_CERT`]: pki.cert,
      [`${p}NATS_TLS_KEY`]: pki.key,
    });
    const tls = (p: string) => ({
      [`${p}TLS_CERT`]: pki.cert,
      [`${p}TLS_KEY`]: pki.key,
      [`${p}TLS_CA`]: pki.ca,
    });
    stack = await startStack({
      evaluators: 1,
      home,
      natsUrl: nats.url,
      logLevel: 'warn',
      env: {
        'weight-generator': {
          ...otel,
          ...natsSec('WEIGHTGEN_'),
          ...tls('WEIGHTGEN_'),
          WEIGHTGEN_HEALTH_PORT: '0',
          WEIGHTGEN_AUTH_TOKEN: TOKEN,
        },
        'latency-profiler': {
          ...otel,
          ...natsSec('LATENCY_PROFILER_'),
          ...tls('LATENCY_PROFILER_'),
          LATENCY_PROFILER_HEALTH_PORT: '0',
        },
        controller: {
          ...otel,
          ...natsSec('CONTROLLER_'),
          ...tls('CONTROLLER_'),
          CONTROLLER_HEALTH_PORT: '0',
          CONTROLLER_AUTH_TOKEN: TOKEN,
          CONTROLLER_STALL_CHECK: '1s',
        },
        evaluator: {
          ...otel,
          ...natsSec('EVALUATOR_'),
          ...tls('EVALUATOR_'),
          EVALUATOR_ACK_WAIT: '5s',
          EVALUATOR_PULL_EXPIRES: '1s',
        },
      },
    });
    // the clients of this process (trainOnStack, searchClient) read METAPRUNE_TLS_* / _TOKEN
    const clientEnv = {
      METAPRUNE_TLS_CA: pki.ca,
      METAPRUNE_TLS_CERT: pki.cert,
      METAPRUNE_TLS_KEY: pki.key,
      METAPRUNE_TOKEN: TOKEN,
    };
    for (const [k, v] of Object.entries(clientEnv)) {
      savedEnv[k] = process.env[k];
      process.env[k] = v;
    }
    pn = await trainOnStack(stack.weightGenerator.address, {
      network: NETWORK,
      dataset: 'fashion-mnist',
      epochs: 1,
      batchSize: 32,
      learningRate: 0.1,
      momentum: 0.9,
      seed: 1,
      maxStepsPerEpoch: 3,
      validationImages: 500,
    });
  }, 300_000);

  afterAll(async () => {
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    await stack?.stop();
    await nats?.stop();
    await otlp?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  }, 60_000);

  it('one search is one trace: controller → queue → evaluator → weight-generator', async () => {
    const client = searchClient(stack.controller.address);
    let searchId: string;
    try {
      searchId = await new Promise<string>((ok, fail) =>
        client.startSearch(
          controller.StartSearchRequest.fromPartial({
            pruningnetId: pn.pruningnetId,
            budgets: [{ name: 'b', maxMacs: BUDGET }],
            evolution: { populationSize: 4, generations: 2 },
            evaluation: { recalibrationBatches: 2, batchSize: 32, validationImages: 64, seed: 0 },
            seed: 11,
          }),
          (err, res) => (err ? fail(err) : ok(res.searchId)),
        ),
      );
      const s = await followSearch(client, searchId, { address: () => stack.controller.address });
      expect(s.progress?.state).toBe(controller.SearchState.SUCCEEDED);
      expect(s.progress?.evaluated).toBeGreaterThan(0);
    } finally {
      client.close();
    }

    // the trace that holds this search's generations
    const traceOf = () =>
      spans().find(
        (x) =>
          x.name === SPAN_NAMES.searchGeneration &&
          attr(x.attributes, 'metaprune.search.id') === searchId,
      )?.traceId;
    const wanted = (t: Span[]) => {
      const names = new Set(t.map((x) => `${x.service}:${x.name}`));
      return (
        names.has(`evaluator:${SPAN_NAMES.validation}`) &&
        names.has(`weight-generator:${SPAN_NAMES.generateWeights}`)
      );
    };
    /** Spans of `t` whose parent chain does not end at a root of `t`. */
    const dangling = (t: Span[]) => {
      const ids = new Map(t.map((x) => [x.spanId, x]));
      return t.filter((x) => {
        let cur: Span | undefined = x;
        for (let hops = 0; cur?.parentSpanId && hops < 50; hops++) cur = ids.get(cur.parentSpanId);
        return cur === undefined || cur.parentSpanId;
      });
    };
    let trace: Span[] = [];
    // spans arrive in batches from three processes: wait until the trace is complete
    await waitFor(
      () => {
        const id = traceOf();
        trace = id ? spans().filter((x) => x.traceId === id) : [];
        return (wanted(trace) && dangling(trace).length === 0) || undefined;
      },
      { timeoutMs: 30_000, what: 'the spans of the search' },
    ).catch(() => {});
    expect(wanted(trace)).toBe(true);
    expect(dangling(trace).map((x) => `${x.service}:${x.name}`)).toEqual([]);

    // one root: the controller's StartSearch server span
    const roots = trace.filter((x) => !x.parentSpanId);
    expect(roots.map((r) => `${r.service}:${r.name}`)).toEqual([
      'controller:metaprune.controller.v1.SearchService/StartSearch',
    ]);
    expect(new Set(trace.map((x) => x.service))).toEqual(
      new Set(['controller', 'evaluator', 'weight-generator']),
    );
    const byId = new Map(trace.map((x) => [x.spanId, x]));
    const has = (service: string, name: string, kind: number) =>
      trace.some((x) => x.service === service && x.kind === kind && x.name.includes(name));
    expect(has('controller', SPAN_NAMES.searchGeneration, KIND.INTERNAL)).toBe(true);
    expect(has('controller', 'publish', KIND.PRODUCER)).toBe(true);
    expect(has('evaluator', 'process', KIND.CONSUMER)).toBe(true);
    expect(has('evaluator', SPAN_NAMES.evaluate, KIND.INTERNAL)).toBe(true);
    expect(has('evaluator', SPAN_NAMES.bnRecalibration, KIND.INTERNAL)).toBe(true);
    expect(has('evaluator', 'WeightGeneratorService/GenerateWeights', KIND.CLIENT)).toBe(true);
    expect(has('weight-generator', 'WeightGeneratorService/GenerateWeights', KIND.SERVER)).toBe(
      true,
    );
    // the weight generator's server span is a child of the evaluator's client span
    const wgServer = trace.find(
      (x) =>
        x.service === 'weight-generator' &&
        x.kind === KIND.SERVER &&
        x.name.endsWith('/GenerateWeights'),
    )!;
    expect(byId.get(wgServer.parentSpanId!)?.service).toBe('evaluator');
    expect(byId.get(wgServer.parentSpanId!)?.kind).toBe(KIND.CLIENT);
    // the evaluator's consumer span is a child of the controller's producer span
    const consumer = trace.find((x) => x.kind === KIND.CONSUMER)!;
    expect(byId.get(consumer.parentSpanId!)?.kind).toBe(KIND.PRODUCER);
    expect(byId.get(consumer.parentSpanId!)?.service).toBe('controller');

    // training epochs are spans too (in the trace of StartTraining)
    const epochs = spans().filter(
      (x) => x.service === 'weight-generator' && x.name === SPAN_NAMES.trainEpoch,
    );
    expect(epochs.length).toBeGreaterThanOrEqual(1);
    const startTraining = spans().find((x) => x.name.endsWith('/StartTraining'));
    expect(epochs[0]!.traceId).toBe(startTraining?.traceId);
  });

  it('exports the metrics: evaluations, latency, queue lag, training loss/accuracy, progress', async () => {
    const want: [string, string][] = [
      ['evaluations_total', 'evaluator'],
      ['evaluation_duration_ms', 'evaluator'],
      ['queue_lag', 'controller'],
      ['queue_in_flight', 'controller'],
      ['search_generation', 'controller'],
      ['search_evaluated', 'controller'],
      ['training_loss', 'weight-generator'],
      ['training_accuracy', 'weight-generator'],
    ];
    await waitFor(
      () => {
        const m = metricNames();
        return want.every(([name, svc]) => m.get(name)?.has(svc)) || undefined;
      },
      { timeoutMs: 20_000, what: 'all the metrics' },
    ).catch(() => {});
    const m = metricNames();
    for (const [name, svc] of want) expect([...(m.get(name) ?? [])], name).toContain(svc);
  });

  it('health stays reachable in plaintext; the TLS ports refuse plaintext and foreign certificates', async () => {
    for (const svc of [stack.controller, stack.weightGenerator]) {
      const health = svc.info['health'];
      expect(typeof health).toBe('string');
      expect(await checkHealth(health as string)).toBe('SERVING');
      // the main port: plaintext is refused, mutual TLS works
      await expect(checkHealth(svc.address, { timeoutMs: 1500 })).rejects.toMatchObject({
        code: grpc.status.UNAVAILABLE,
      });
      expect(await checkHealth(svc.address, { credentials: mtls() })).toBe('SERVING');
      // TLS without a client certificate, and a certificate of another CA: refused
      const noCert = grpc.credentials.createSsl(Buffer.from(readText(pki.ca)));
      await expect(
        checkHealth(svc.address, { credentials: noCert, timeoutMs: 1500 }),
      ).rejects.toHaveProperty('code');
      const rogue = grpc.credentials.createSsl(
        Buffer.from(readText(pki.ca)),
        Buffer.from(readText(pki.rogueKey)),
        Buffer.from(readText(pki.rogueCert)),
      );
      await expect(
        checkHealth(svc.address, { credentials: rogue, timeoutMs: 1500 }),
      ).rejects.toHaveProperty('code');
    }
  });

  it('mutating calls need the token: missing → UNAUTHENTICATED, wrong → PERMISSION_DENIED', async () => {
    const ctl = new controller.SearchServiceClient(stack.controller.address, mtls());
    const wg = new weightgen.WeightGeneratorServiceClient(stack.weightGenerator.address, mtls());
    const meta = (token?: string) => {
      const m = new grpc.Metadata();
      if (token) m.set('authorization', `Bearer ${token}`);
      return m;
    };
    const code = (fn: (cb: (err: grpc.ServiceError | null) => void) => unknown) =>
      new Promise<number>((ok) => fn((err) => ok(err?.code ?? grpc.status.OK)));
    try {
      const search = controller.StartSearchRequest.fromPartial({ pruningnetId: pn.pruningnetId });
      expect(await code((cb) => ctl.startSearch(search, meta(), cb))).toBe(
        grpc.status.UNAUTHENTICATED,
      );
      expect(await code((cb) => ctl.startSearch(search, meta('wrong'), cb))).toBe(
        grpc.status.PERMISSION_DENIED,
      );
      expect(await code((cb) => ctl.cancelSearch({ searchId: 'x' }, meta('wrong'), cb))).toBe(
        grpc.status.PERMISSION_DENIED,
      );
      // reads need no token
      expect(
        await code((cb) =>
          ctl.listSearches(controller.ListSearchesRequest.fromPartial({}), meta(), cb),
        ),
      ).toBe(grpc.status.OK);
      const train = weightgen.StartTrainingRequest.fromPartial({});
      expect(await code((cb) => wg.startTraining(train, meta(), cb))).toBe(
        grpc.status.UNAUTHENTICATED,
      );
      expect(await code((cb) => wg.startTraining(train, meta('nope'), cb))).toBe(
        grpc.status.PERMISSION_DENIED,
      );
      // the right token gets past authentication to validation
      expect(await code((cb) => wg.startTraining(train, meta(TOKEN), cb))).toBe(
        grpc.status.INVALID_ARGUMENT,
      );
    } finally {
      ctl.close();
      wg.close();
    }
  });

  it('NATS requires TLS with a client certificate and the nkey', async () => {
    const tls = { caFile: pki.ca, certFile: pki.cert, keyFile: pki.key };
    const nc = await connectNats({ servers: nats.url, name: 'ok', nkeySeed, tls });
    expect(nc.isClosed()).toBe(false);
    await nc.close();
    // TLS but no nkey
    await expect(
      connectNats({ servers: nats.url, name: 'no-nkey', tls, timeoutMs: 3000 }),
    ).rejects.toThrow();
    // nkey, TLS without a client certificate
    await expect(
      connectNats({
        servers: nats.url,
        name: 'no-cert',
        nkeySeed,
        tls: { caFile: pki.ca },
        timeoutMs: 3000,
      }),
    ).rejects.toThrow();
    // another user's nkey
    await expect(
      connectNats({
        servers: nats.url,
        name: 'other-nkey',
        nkeySeed: new TextDecoder().decode(createUser().getSeed()),
        tls,
        timeoutMs: 3000,
      }),
    ).rejects.toThrow();
  });
});

function readText(path: string): string {
  return readFileSync(path, 'utf8');
}
