/**
 * The bundled NATS as the manifests configure it, run for real on loopback: the server
 * accepts the rendered nats.conf with the variables the StatefulSet provides, enforces the
 * Secret's credentials, answers the probe paths, and KEDA's exact monitoring query sees the
 * lag of the stream and consumer that the evaluator code creates.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CandidateEvaluator, EvaluatorWorker, type WeightSource } from '@metaprune/evaluator';
import { connectNats } from '@metaprune/runtime';
import { freePort, type NatsServerHandle, startNatsServer, tempDir } from '@metaprune/testkit';
import {
  jobSubject,
  NATS_NAMES,
  NATS_ROLES,
  type NatsRole,
  natsAuthorizationBlock,
} from '@metaprune/wire';
import { jetstream } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEPLOY_DIR,
  type KubeObject,
  loadServiceConfig,
  renderKustomization,
  SERVICES,
} from '../src/index.js';

// biome-ignore lint/suspicious/noExplicitAny: walking untyped rendered YAML
type Json = any;

const passwordVar = (role: NatsRole) => `NATS_PASSWORD_${role.toUpperCase().replace(/-/g, '_')}`;

const objects: KubeObject[] = renderKustomization(join(DEPLOY_DIR, 'overlays', 'local'));
const get = (kind: string, name: string): Json => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} not rendered`);
  return o;
};
const natsContainer = get('StatefulSet', 'nats').spec.template.spec.containers[0];
const conf: string = get('ConfigMap', 'nats-config').data['nats.conf'];
const secret: Record<string, string> = get('Secret', 'metaprune-nats-auth').stringData;
const trigger: Record<string, string> = get('ScaledObject', 'evaluator').spec.triggers[0].metadata;

/** Values the kubelet would give the NATS container (Secret keys, downward API). */
function containerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of natsContainer.env as Json[]) {
    if (e.value !== undefined) env[e.name] = e.value;
    else if (e.valueFrom?.secretKeyRef) {
      expect(e.valueFrom.secretKeyRef.name).toBe('metaprune-nats-auth');
      env[e.name] = secret[e.valueFrom.secretKeyRef.key]!;
    } else if (e.valueFrom?.fieldRef?.fieldPath === 'metadata.name') env[e.name] = 'nats-0';
  }
  return env;
}

let server: NatsServerHandle;
let monitor: number;
let nc: NatsConnection | undefined;
const store = tempDir('metaprune-deploy-nats-');
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  const env = containerEnv();
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  const file = join(store.path, 'nats.conf');
  // the rendered file, with only the store directory (a volume in the pod) moved to a temp
  // dir; the flags move the ports to free loopback ones (flags override the file)
  const storeLine = /^(\s*store_dir:\s*)\/data$/m;
  expect(conf).toMatch(storeLine);
  writeFileSync(file, conf.replace(storeLine, `$1${JSON.stringify(join(store.path, 'data'))}`));
  monitor = await freePort();
  server = await startNatsServer({
    jetstream: false,
    extraArgs: ['-c', file, '-m', String(monitor)],
  });
});

afterAll(async () => {
  await nc?.close();
  await server?.stop();
  store.remove();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
});

describe('bundled NATS', () => {
  it('every $VARIABLE of nats.conf is provided by the StatefulSet', () => {
    // variables are unquoted; "$JS.API..." in quoted subject lists are literals
    const unquoted = conf.replace(/"[^"]*"/g, '""');
    const vars = [...unquoted.matchAll(/\$([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!);
    expect(vars.sort()).toEqual(['POD_NAME', ...NATS_ROLES.map(passwordVar)].sort());
    const provided = (natsContainer.env as { name: string }[]).map((e) => e.name);
    for (const v of vars) expect(provided).toContain(v);
  });

  it('carries the subject permissions of every role (libs/runtime natsPermissions)', () => {
    const users = NATS_ROLES.map((role) => ({
      role,
      user: `metaprune-${role}`,
      password: `$${passwordVar(role)}`,
    }));
    expect(conf).toContain(natsAuthorizationBlock(users).trimEnd());
  });

  it('requires the credentials of the Secret, one user per service', async () => {
    await expect(
      connectNats({ servers: server.url, name: 'anonymous', timeoutMs: 2000 }),
    ).rejects.toThrow(/Authorization/i);
    await expect(
      connectNats({
        servers: server.url,
        name: 'wrong',
        user: 'metaprune-evaluator',
        pass: 'nope',
        timeoutMs: 2000,
      }),
    ).rejects.toThrow(/Authorization/i);
    // an evaluator may not publish evaluation jobs
    const ev = await connectNats({
      servers: server.url,
      name: 'deploy-test-evaluator',
      user: 'metaprune-evaluator',
      pass: secret['evaluator-password']!,
    });
    try {
      await expect(
        jetstream(ev, { timeout: 2000 }).publish(jobSubject(`e${'f'.repeat(40)}`), 'x'),
      ).rejects.toThrow(/[Pp]ermission|timeout|TIMEOUT|no responders/);
    } finally {
      await ev.close();
    }
    nc = await connectNats({
      servers: server.url,
      name: 'deploy-test',
      user: 'metaprune-admin',
      pass: secret['admin-password']!,
    });
    expect(nc.info?.jetstream).toBe(true);
  });

  it('answers the startup, readiness and liveness probe paths with 200', async () => {
    for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) {
      const { path, port } = natsContainer[probe].httpGet;
      expect(port).toBe('monitor');
      const res = await fetch(`http://127.0.0.1:${monitor}${path}`);
      expect(res.status, `${probe} ${path}`).toBe(200);
    }
  });

  it("KEDA's query sees the lag of the evaluators' consumer", async () => {
    expect(nc).toBeDefined();
    // the consumer exactly as an evaluator with the manifest's settings creates it
    const evaluator = SERVICES.find((s) => s.name === 'evaluator')!;
    const { cfg } = loadServiceConfig(objects, evaluator);
    expect(cfg).toBeDefined();
    const worker = new EvaluatorWorker({
      nc: nc!,
      evaluator: {} as unknown as CandidateEvaluator,
      weights: {} as unknown as WeightSource,
      ackWaitMs: Number(cfg!['ackWait']),
      maxAttempts: Number(cfg!['maxAttempts']),
    });
    await worker.prepare();

    const js = jetstream(nc!);
    const jobs = 5;
    for (let i = 0; i < jobs; i++) {
      const id = `e${i.toString(16).padStart(40, '0')}`;
      await js.publish(jobSubject(id), new Uint8Array([i]), { msgID: id });
    }

    // https://github.com/kedacore/keda pkg/scalers/nats_jetstream_scaler.go: GET
    // /jsz?acc=<account>&consumers=true&config=true, then account → stream → consumer,
    // lag = num_pending + num_ack_pending
    const url = `http://127.0.0.1:${monitor}/jsz?acc=${trigger['account']}&consumers=true&config=true`;
    const body = (await (await fetch(url)).json()) as Json;
    const account = (body.account_details ?? []).find((a: Json) => a.name === trigger['account']);
    expect(account, 'account in /jsz').toBeDefined();
    const stream = (account.stream_detail ?? []).find((s: Json) => s.name === trigger['stream']);
    expect(stream?.name).toBe(NATS_NAMES.jobsStream);
    const consumer = (stream.consumer_detail ?? []).find(
      (c: Json) => c.name === trigger['consumer'],
    );
    expect(consumer?.name).toBe(NATS_NAMES.evaluatorsConsumer);
    expect(consumer.num_pending + consumer.num_ack_pending).toBe(jobs);
    expect(jobs / Number(trigger['lagThreshold'])).toBeGreaterThan(1); // would scale past one
  });
});
