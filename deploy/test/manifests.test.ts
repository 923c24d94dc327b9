import { readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { describeSettings, loadConfig } from '@metaprune/runtime';
import { NATS_NAMES, NATS_ROLES } from '@metaprune/wire';
import { describe, expect, it } from 'vitest';
import {
  checkNatsNames,
  checkRendered,
  DEPLOY_DIR,
  EXTERNAL_SECRETS,
  ingressAllowed,
  type KubeObject,
  overlayDirs,
  REPO_ROOT,
  renderKustomization,
  SERVICES,
  validateSchemas,
  type Workload,
  workloads,
} from '../src/index.js';

const overlays = overlayDirs();
// biome-ignore lint/suspicious/noExplicitAny: tests walk and mutate untyped rendered YAML
type Json = any;

const rendered = new Map(overlays.map((dir) => [basename(dir), renderKustomization(dir)]));
const render = (name: string): KubeObject[] => structuredClone(rendered.get(name)!);

function get(objects: KubeObject[], kind: string, name: string): Json {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`${kind}/${name} not rendered`);
  return o as Json;
}
const container = (objects: KubeObject[], name: string): Json =>
  get(objects, 'Deployment', name).spec.template.spec.containers.find(
    (c: { name: string }) => c.name === name,
  );

describe('overlays', () => {
  it('are local, gpu and external-nats', () => {
    expect([...rendered.keys()]).toEqual(['external-nats', 'gpu', 'local']);
  });

  for (const name of ['local', 'gpu', 'external-nats']) {
    it(`${name}: renders, validates against the Kubernetes and KEDA schemas and passes every check`, () => {
      const objects = render(name);
      expect(objects.length).toBeGreaterThan(15);
      expect(validateSchemas(objects)).toEqual([]);
      expect(checkRendered(objects)).toEqual([]);
    });
  }

  it('hold the four services, NATS where it is bundled, and the KEDA scaler', () => {
    for (const [name, objects] of rendered) {
      for (const s of SERVICES) expect(get(objects, 'Deployment', s.name)).toBeDefined();
      const kinds = new Set(objects.map((o) => o.kind));
      for (const kind of [
        'Namespace',
        'ConfigMap',
        'Service',
        'PodDisruptionBudget',
        'ScaledObject',
      ]) {
        expect(kinds, `${name} has ${kind}`).toContain(kind);
      }
      const nats = objects.find((o) => o.kind === 'StatefulSet' && o.metadata.name === 'nats');
      expect(nats !== undefined, name).toBe(name !== 'external-nats');
    }
    const nats = get(render('local'), 'StatefulSet', 'nats');
    expect(nats.spec.volumeClaimTemplates[0].spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(nats.spec.template.spec.containers[0].volumeMounts).toContainEqual({
      name: 'data',
      mountPath: '/data',
    });
  });

  it('the KEDA trigger reads the stream and consumer the evaluators use (NATS_NAMES)', () => {
    for (const [name, objects] of rendered) {
      const so = get(objects, 'ScaledObject', 'evaluator');
      expect(so.spec.scaleTargetRef.name, name).toBe('evaluator');
      const [trigger] = so.spec.triggers;
      expect(trigger.type).toBe('nats-jetstream');
      expect(trigger.metadata.stream).toBe(NATS_NAMES.jobsStream);
      expect(trigger.metadata.consumer).toBe(NATS_NAMES.evaluatorsConsumer);
    }
    expect(
      get(render('local'), 'ScaledObject', 'evaluator').spec.triggers[0].metadata,
    ).toMatchObject({
      natsServerMonitoringEndpoint: 'nats.metaprune.svc.cluster.local:8222',
      account: '$G',
      lagThreshold: '4',
    });
    expect(
      get(render('gpu'), 'ScaledObject', 'evaluator').spec.triggers[0].metadata.lagThreshold,
    ).toBe('8');
    expect(
      get(render('external-nats'), 'ScaledObject', 'evaluator').spec.triggers[0].metadata
        .natsServerMonitoringEndpoint,
    ).toBe('nats.nats.svc.cluster.local:8222');
  });

  it('gpu: one GPU per weight-generator and evaluator pod, CUDA images, tensorflow-gpu backend', () => {
    const objects = render('gpu');
    for (const name of ['weight-generator', 'evaluator']) {
      const c = container(objects, name);
      expect(c.resources.limits['nvidia.com/gpu']).toBe('1');
      expect(c.resources.requests['nvidia.com/gpu']).toBe('1');
      expect(c.image).toBe(`metaprune/${name}:0.1.0-gpu`);
      expect(get(objects, 'Deployment', name).spec.template.spec.tolerations).toContainEqual({
        key: 'nvidia.com/gpu',
        operator: 'Exists',
        effect: 'NoSchedule',
      });
    }
    expect(get(objects, 'ConfigMap', 'evaluator-config').data.EVALUATOR_BACKEND).toBe(
      'tensorflow-gpu',
    );
    expect(get(objects, 'ConfigMap', 'weight-generator-config').data.WEIGHTGEN_BACKEND).toBe(
      'tensorflow-gpu',
    );
    expect(get(objects, 'Deployment', 'evaluator').spec.strategy.rollingUpdate).toEqual({
      maxSurge: 0,
      maxUnavailable: 1,
    });
    for (const name of ['controller', 'latency-profiler']) {
      expect(container(objects, name).resources.limits['nvidia.com/gpu']).toBeUndefined();
      expect(container(objects, name).image).toBe(`metaprune/${name}:0.1.0`);
    }
  });

  it('local: dev images and credentials, the checkpoint PVC mounted where the service writes', () => {
    const objects = render('local');
    for (const s of SERVICES)
      expect(container(objects, s.name).image).toBe(`metaprune/${s.name}:dev`);
    expect(Object.keys(get(objects, 'Secret', 'metaprune-nats-auth').stringData).sort()).toEqual(
      NATS_ROLES.map((r) => `${r}-password`).sort(),
    );
    const wg = get(objects, 'Deployment', 'weight-generator');
    expect(wg.spec.strategy.type).toBe('Recreate');
    const data = wg.spec.template.spec.volumes.find((v: { name: string }) => v.name === 'data');
    expect(data.persistentVolumeClaim.claimName).toBe('weight-generator-data');
    const cm = get(objects, 'ConfigMap', 'weight-generator-config').data;
    const mount = container(objects, 'weight-generator').volumeMounts.find(
      (m: { name: string }) => m.name === 'data',
    ).mountPath;
    expect(cm.WEIGHTGEN_CHECKPOINT_ROOT.startsWith(`${mount}/`)).toBe(true);
    expect(cm.WEIGHTGEN_EXPORT_ROOT.startsWith(`${mount}/`)).toBe(true);
    expect(
      get(objects, 'PersistentVolumeClaim', 'weight-generator-data').spec.resources.requests
        .storage,
    ).toBe('5Gi');
  });

  it('only the local overlay ships Secrets; the others expect the documented ones', () => {
    const docs = readFileSync(join(REPO_ROOT, 'docs', 'deploy.md'), 'utf8');
    for (const [name, objects] of rendered) {
      const secrets = objects.filter((o) => o.kind === 'Secret').map((o) => o.metadata.name);
      expect(secrets, name).toEqual(
        name === 'local' ? ['metaprune-nats-auth', 'metaprune-tokens', 'metaprune-tls'] : [],
      );
    }
    for (const secret of EXTERNAL_SECRETS) {
      expect(docs).toMatch(new RegExp(`kubectl -n metaprune create secret generic ${secret}`));
    }
  });
});

describe('gRPC NetworkPolicies', () => {
  it('each API answers only its callers (and labelled clients)', () => {
    const objects = render('gpu');
    const all = workloads(objects);
    const w = (name: string) => all.find((x) => x.object.metadata.name === name)!;
    const stranger = { ...w('evaluator'), labels: { app: 'someone-else' } };
    const client = { ...stranger, labels: { 'metaprune.io/client': 'true' } };
    const grpcPort = (name: string) =>
      w(name).pod.containers[0]!.ports!.find((p) => p.name === 'grpc')!.containerPort;
    const allowed = (from: Workload, to: string) =>
      ingressAllowed(objects, from, w(to), grpcPort(to));
    expect(allowed(w('controller'), 'weight-generator')).toBe(true);
    expect(allowed(w('evaluator'), 'weight-generator')).toBe(true);
    expect(allowed(w('controller'), 'latency-profiler')).toBe(true);
    expect(allowed(client, 'controller')).toBe(true);
    expect(allowed(stranger, 'weight-generator')).toBe(false);
    expect(allowed(stranger, 'controller')).toBe(false);
    expect(allowed(stranger, 'latency-profiler')).toBe(false);
    expect(allowed(w('evaluator'), 'controller')).toBe(false);
  });
});

describe('manifests agree with the services', () => {
  it('the env prefixes in SERVICES are the ones each service reads', () => {
    for (const s of SERVICES) {
      const sources = ['main.ts', 'config.ts']
        .map((f) => readFileSync(join(REPO_ROOT, 'services', s.name, 'src', f), 'utf8'))
        .join('\n');
      expect(sources, s.name).toContain(`ENV_PREFIX = '${s.envPrefix}'`);
    }
  });

  it('the shutdown deadlines in SERVICES are the ones each main.ts gives runServiceMain', () => {
    for (const s of SERVICES) {
      const main = readFileSync(join(REPO_ROOT, 'services', s.name, 'src', 'main.ts'), 'utf8');
      // runServiceMain({ ..., graceMs: (config) => config.shutdownGrace + 5000, ... })
      const m = /graceMs: \((\w+)\) => \1\.(\w+)(?: \+ (\d+))?/.exec(main);
      expect(m, `${s.name}: graceMs in main.ts`).not.toBeNull();
      const defaults = loadConfig(s.schema, { env: {} }) as Record<string, unknown>;
      expect(s.exitDeadlineMs(defaults), s.name).toBe(
        Number(defaults[m![2]!]) + Number(m![3] ?? 0),
      );
    }
  });

  it('every ConfigMap key of a service is one of its settings, and the ConfigMaps set the essentials', () => {
    const objects = render('gpu');
    for (const s of SERVICES) {
      const known = new Set(
        describeSettings(s.schema, { envPrefix: s.envPrefix }).map((r) => r.env),
      );
      const data = get(objects, 'ConfigMap', `${s.name}-config`).data as Record<string, string>;
      for (const key of Object.keys(data)) expect(known, `${s.name}: ${key}`).toContain(key);
      expect(data[`${s.envPrefix}NATS_URL`]).toBe('nats://nats:4222');
      const hostEnv = describeSettings(s.schema, { envPrefix: s.envPrefix }).find(
        (r) => r.key === s.hostKey,
      )!.env;
      expect(data[hostEnv]).toBe('0.0.0.0');
    }
  });

  it('secret settings come from Secrets: one NATS user per service, tokens required', () => {
    const objects = render('gpu');
    for (const s of SERVICES) {
      const env = container(objects, s.name).env as {
        name: string;
        value?: string;
        valueFrom?: Json;
      }[];
      const entry = (n: string) => env.find((e) => e.name === `${s.envPrefix}${n}`);
      expect(entry('NATS_USER')?.value).toBe(`metaprune-${s.name}`);
      expect(entry('NATS_PASS')?.valueFrom?.secretKeyRef).toEqual({
        name: 'metaprune-nats-auth',
        key: `${s.name}-password`,
      });
    }
    // every mutating RPC is authenticated: the tokens are required, not optional
    for (const [service, name, key] of [
      ['weight-generator', 'WEIGHTGEN_AUTH_TOKEN', 'weightgen-auth-token'],
      ['controller', 'CONTROLLER_AUTH_TOKEN', 'controller-auth-token'],
      ['latency-profiler', 'LATENCY_PROFILER_REGISTRATION_TOKEN', 'registration-token'],
    ] as const) {
      const token = container(objects, service).env.find((e: { name: string }) => e.name === name);
      expect(token?.valueFrom.secretKeyRef, name).toEqual({ name: 'metaprune-tokens', key });
    }
    // mutual TLS on every service (the evaluator: as a client)
    for (const s of SERVICES) {
      const data = get(objects, 'ConfigMap', `${s.name}-config`).data;
      expect(data[`${s.envPrefix}TLS_CERT`], s.name).toBe('/etc/metaprune/tls/tls.crt');
      expect(data[`${s.envPrefix}TLS_CA`], s.name).toBe('/etc/metaprune/tls/ca.crt');
    }
    const nats = get(objects, 'StatefulSet', 'nats').spec.template.spec.containers[0];
    for (const role of NATS_ROLES) {
      const v = `NATS_PASSWORD_${role.toUpperCase().replace(/-/g, '_')}`;
      expect(nats.env.find((e: { name: string }) => e.name === v)?.valueFrom.secretKeyRef).toEqual({
        name: 'metaprune-nats-auth',
        key: `${role}-password`,
      });
    }
  });
});

/** Applies `mutate` to a copy of the local render and returns the problems found. */
function problemsAfter(mutate: (objects: KubeObject[]) => void, overlay = 'local'): string[] {
  const objects = render(overlay);
  mutate(objects);
  return checkRendered(objects);
}

describe('the checks catch broken manifests', () => {
  const cases: [string, (o: KubeObject[]) => void, RegExp][] = [
    [
      'a schema violation',
      (o) => {
        get(o, 'Deployment', 'controller').spec.replicas = 'one';
      },
      /Deployment\/controller: .*replicas must be integer/,
    ],
    [
      'a missing probe',
      (o) => {
        delete container(o, 'evaluator').livenessProbe;
      },
      /container evaluator: no livenessProbe/,
    ],
    [
      'a probe on the wrong port',
      (o) => {
        container(o, 'controller').readinessProbe.grpc.port = 50051;
      },
      /readinessProbe port 50051 is not a declared container port/,
    ],
    [
      'a probe on the mutual-TLS port (the kubelet has no client certificate)',
      (o) => {
        container(o, 'weight-generator').livenessProbe.grpc.port = 50051;
      },
      /weight-generator.*livenessProbe must be a gRPC probe on the health port 50060/,
    ],
    [
      'TLS without a plaintext health port',
      (o) => {
        delete get(o, 'ConfigMap', 'controller-config').data.CONTROLLER_HEALTH_PORT;
      },
      /TLS is on \(tlsCert\) but no healthPort is set/,
    ],
    [
      'missing limits',
      (o) => {
        delete container(o, 'latency-profiler').resources.limits;
      },
      /container latency-profiler: no memory limit/,
    ],
    [
      'a writable root filesystem',
      (o) => {
        container(o, 'weight-generator').securityContext.readOnlyRootFilesystem = false;
      },
      /readOnlyRootFilesystem must be true/,
    ],
    [
      'running as root',
      (o) => {
        const pod = get(o, 'Deployment', 'controller').spec.template.spec;
        pod.securityContext.runAsNonRoot = false;
        delete container(o, 'controller').securityContext.runAsNonRoot;
      },
      /container controller: runAsNonRoot must be true/,
    ],
    [
      'capabilities kept',
      (o) => {
        container(o, 'evaluator').securityContext.capabilities.drop = ['NET_RAW'];
      },
      /capabilities must drop ALL/,
    ],
    [
      'service links left on',
      (o) => {
        delete get(o, 'Deployment', 'latency-profiler').spec.template.spec.enableServiceLinks;
      },
      /enableServiceLinks must be false/,
    ],
    [
      'a Service targeting a port no container has',
      (o) => {
        get(o, 'Service', 'weight-generator').spec.ports[0].targetPort = 'http';
      },
      /Service\/weight-generator: port grpc targets http/,
    ],
    [
      'a Service selecting nothing',
      (o) => {
        get(o, 'Service', 'controller').spec.selector = { 'app.kubernetes.io/name': 'ctrl' };
      },
      /Service\/controller: selector matches no pod template/,
    ],
    [
      'a PodDisruptionBudget that blocks drains',
      (o) => {
        get(o, 'PodDisruptionBudget', 'latency-profiler').spec.minAvailable = 2;
      },
      /allows no voluntary disruption of Deployment\/latency-profiler/,
    ],
    [
      'a workload without a PodDisruptionBudget',
      (o) => {
        o.splice(
          o.findIndex((x) => x.kind === 'PodDisruptionBudget' && x.metadata.name === 'controller'),
          1,
        );
      },
      /Deployment\/controller: covered by 0 PodDisruptionBudgets/,
    ],
    [
      'replicas on a KEDA-scaled Deployment',
      (o) => {
        get(o, 'Deployment', 'evaluator').spec.replicas = 2;
      },
      /sets spec.replicas; kubectl apply would fight the autoscaler/,
    ],
    [
      'the RWO checkpoint volume with a rolling update',
      (o) => {
        get(o, 'Deployment', 'weight-generator').spec.strategy = { type: 'RollingUpdate' };
      },
      /ReadWriteOnce PVC weight-generator-data: needs replicas 1 and strategy Recreate/,
    ],
    [
      'a missing Secret',
      (o) => {
        o.splice(
          o.findIndex((x) => x.kind === 'Secret'),
          1,
        );
        container(o, 'controller').env[1].valueFrom.secretKeyRef.name = 'nats-creds';
      },
      /Secret nats-creds is neither rendered nor a documented external Secret/,
    ],
    [
      'an env var the service does not read',
      (o) => {
        get(o, 'ConfigMap', 'evaluator-config').data.EVALUATOR_ACKWAIT = '10s';
      },
      /EVALUATOR_ACKWAIT is not a setting of evaluator/,
    ],
    [
      "another service's setting",
      (o) => {
        get(o, 'ConfigMap', 'controller-config').data.WEIGHTGEN_PORT = '1';
      },
      /WEIGHTGEN_PORT is a setting of another service/,
    ],
    [
      'a value the service would refuse',
      (o) => {
        get(o, 'ConfigMap', 'evaluator-config').data.EVALUATOR_BACKEND = 'cuda';
      },
      /the service would refuse its config: .*EVALUATOR_BACKEND/,
    ],
    [
      'a secret in a ConfigMap',
      (o) => {
        get(o, 'ConfigMap', 'weight-generator-config').data.WEIGHTGEN_AUTH_TOKEN = 'abc';
        const env = container(o, 'weight-generator').env as { name: string }[];
        env.splice(
          env.findIndex((e) => e.name === 'WEIGHTGEN_AUTH_TOKEN'),
          1,
        );
      },
      /WEIGHTGEN_AUTH_TOKEN is a secret setting; take it from a Secret, not a configMap/,
    ],
    [
      'a service listening on loopback',
      (o) => {
        get(o, 'ConfigMap', 'controller-config').data.CONTROLLER_HOST = '127.0.0.1';
      },
      /host=127.0.0.1: probes and peers reach the pod IP/,
    ],
    [
      'a port setting that differs from the container port',
      (o) => {
        get(o, 'ConfigMap', 'latency-profiler-config').data.LATENCY_PROFILER_PORT = '50060';
      },
      /listens on 50060 \(port\) but container port grpc is 50053/,
    ],
    [
      'a grace period shorter than the shutdown',
      (o) => {
        get(o, 'Deployment', 'weight-generator').spec.template.spec.terminationGracePeriodSeconds =
          30;
      },
      /terminationGracePeriodSeconds 30 s does not cover the shutdown deadline of 65000 ms/,
    ],
    [
      'a wrong weight generator address',
      (o) => {
        get(o, 'ConfigMap', 'evaluator-config').data.EVALUATOR_WEIGHT_GENERATOR =
          'weight-generator:50052';
      },
      /weightGenerator=weight-generator:50052 names no rendered Service port/,
    ],
    [
      'a NATS URL naming no Service',
      (o) => {
        get(o, 'ConfigMap', 'controller-config').data.CONTROLLER_NATS_URL = 'nats://nat:4222';
      },
      /natsUrl nats:\/\/nat:4222 names no rendered Service port/,
    ],
    [
      'a wrong stream in the KEDA trigger',
      (o) => {
        get(o, 'ScaledObject', 'evaluator').spec.triggers[0].metadata.stream = 'METAPRUNE_JOBS';
      },
      /stream METAPRUNE_JOBS is not NATS_NAMES.jobsStream/,
    ],
    [
      'a wrong consumer in the KEDA trigger',
      (o) => {
        get(o, 'ScaledObject', 'evaluator').spec.triggers[0].metadata.consumer = 'evaluator';
      },
      /consumer evaluator is not NATS_NAMES.evaluatorsConsumer/,
    ],
    [
      'a KEDA account the NATS config does not have',
      (o) => {
        get(o, 'ScaledObject', 'evaluator').spec.triggers[0].metadata.account = 'METAPRUNE';
      },
      /account must be "\$G"/,
    ],
    [
      'KEDA watching another server than the evaluators use',
      (o) => {
        get(o, 'ScaledObject', 'evaluator').spec.triggers[0].metadata.natsServerMonitoringEndpoint =
          'nats.metaprune.svc.cluster.local:4222';
        get(o, 'ConfigMap', 'evaluator-config').data.EVALUATOR_NATS_URL =
          'nats://nats-headless:4222';
      },
      /KEDA reads nats.metaprune but the evaluators use nats-headless.metaprune/,
    ],
    [
      'a KEDA endpoint without the namespace',
      (o) => {
        get(o, 'ScaledObject', 'evaluator').spec.triggers[0].metadata.natsServerMonitoringEndpoint =
          'nats:8222';
      },
      /must be host.namespace\[.svc...\]:port/,
    ],
    [
      'a misspelt NATS name anywhere',
      (o) => {
        get(o, 'ConfigMap', 'latency-profiler-config').data.LATENCY_PROFILER_DEVICES_BUCKET =
          'metaprune_device';
      },
      /metaprune_device is not one of NATS_NAMES/,
    ],
    [
      'a NetworkPolicy that shuts the services out of NATS',
      (o) => {
        get(o, 'NetworkPolicy', 'nats').spec.ingress[0].from[0].podSelector.matchLabels = {
          'app.kubernetes.io/name': 'controller',
        };
      },
      /Deployment\/evaluator: a NetworkPolicy keeps it from natsUrl nats:\/\/nats:4222 \(StatefulSet\/nats port 4222\)/,
    ],
    [
      'a NetworkPolicy naming a port the pods lack',
      (o) => {
        get(o, 'NetworkPolicy', 'nats').spec.ingress[1].ports[0].port = 'metrics';
      },
      /NetworkPolicy\/nats: port metrics is not a container port of StatefulSet\/nats/,
    ],
    [
      'a latest image',
      (o) => {
        container(o, 'controller').image = 'metaprune/controller:latest';
      },
      /needs an explicit tag or digest/,
    ],
    [
      'objects in two namespaces',
      (o) => {
        get(o, 'Service', 'controller').metadata.namespace = 'default';
      },
      /spread over namespaces/,
    ],
  ];
  for (const [what, mutate, expected] of cases) {
    it(what, () => {
      const problems = problemsAfter(mutate);
      expect(problems.join('\n')).toMatch(expected);
    });
  }

  it('checkNatsNames compares with the names it is given', () => {
    const objects = render('local');
    expect(checkNatsNames(objects)).toEqual([]);
    const problems = checkNatsNames(objects, { ...NATS_NAMES, evaluatorsConsumer: 'workers' });
    expect(problems.join('\n')).toMatch(
      /consumer evaluators is not NATS_NAMES.evaluatorsConsumer \(workers\)/,
    );
  });

  it('the deploy directory is the one next to this test', () => {
    expect(DEPLOY_DIR).toBe(join(import.meta.dirname, '..'));
  });
});
