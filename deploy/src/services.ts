/**
 * Checks that tie the manifests to the services' own code: the environment each container
 * gets is made only of settings its service reads (the config schemas in
 * services/<name>/src/config.ts), the values parse with the service's own loader, the
 * service listens where its probes, ports and Service point, exits before Kubernetes kills
 * it, and finds the other services and NATS by names that exist. The KEDA trigger reads
 * the stream and consumer named in NATS_NAMES, on the server the evaluators use.
 */
import { CONTROLLER_CONFIG } from '@metaprune/controller';
import { EVALUATOR_CONFIG } from '@metaprune/evaluator';
import {
  CONFIG_SCHEMA as LATENCY_PROFILER_CONFIG,
  ENV_PREFIX as LATENCY_PROFILER_PREFIX,
} from '@metaprune/latency-profiler';
import { ConfigError, type ConfigSchema, describeSettings, loadConfig } from '@metaprune/runtime';
import {
  CONFIG_SCHEMA as WEIGHTGEN_CONFIG,
  ENV_PREFIX as WEIGHTGEN_PREFIX,
} from '@metaprune/weight-generator';
import { NATS_NAMES } from '@metaprune/wire';
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { KubeObject } from './kustomize.js';
import {
  find,
  ingressAllowed,
  namespaceOf,
  selectorMatches,
  type Workload,
  workloads,
} from './policy.js';
import { describe } from './schemas.js';

type Config = Readonly<Record<string, unknown>>;

export interface ServiceSpec {
  /** Name of the Deployment and of its container. */
  name: string;
  schema: ConfigSchema;
  envPrefix: string;
  /** Settings of the listening interface and port that the probes reach. */
  hostKey: string;
  portKey: string;
  /** Name of that container port. */
  portName: string;
  /** The Service in front of it (none for the evaluators). */
  service?: string;
  /** Settings holding host:port of another service. */
  addressKeys: readonly string[];
  natsKey: string;
  /** How long after SIGTERM the process ends by itself at the latest (its main.ts). */
  exitDeadlineMs(cfg: Config): number;
}

const ms = (cfg: Config, key: string): number => Number(cfg[key]);

export const SERVICES: readonly ServiceSpec[] = Object.freeze([
  {
    name: 'weight-generator',
    schema: WEIGHTGEN_CONFIG,
    envPrefix: WEIGHTGEN_PREFIX,
    hostKey: 'host',
    portKey: 'port',
    portName: 'grpc',
    service: 'weight-generator',
    addressKeys: [],
    natsKey: 'natsUrl',
    // main.ts: onShutdownSignals(..., { graceMs: shutdownGrace + 5000 })
    exitDeadlineMs: (cfg) => ms(cfg, 'shutdownGrace') + 5000,
  },
  {
    name: 'controller',
    schema: CONTROLLER_CONFIG,
    envPrefix: 'CONTROLLER_',
    hostKey: 'host',
    portKey: 'port',
    portName: 'grpc',
    service: 'controller',
    addressKeys: ['weightGenerator'],
    natsKey: 'natsUrl',
    exitDeadlineMs: (cfg) => ms(cfg, 'grace'),
  },
  {
    name: 'evaluator',
    schema: EVALUATOR_CONFIG,
    envPrefix: 'EVALUATOR_',
    hostKey: 'healthHost',
    portKey: 'healthPort',
    portName: 'health',
    addressKeys: ['weightGenerator'],
    natsKey: 'natsUrl',
    exitDeadlineMs: (cfg) => ms(cfg, 'grace'),
  },
  {
    name: 'latency-profiler',
    schema: LATENCY_PROFILER_CONFIG,
    envPrefix: LATENCY_PROFILER_PREFIX,
    hostKey: 'host',
    portKey: 'port',
    portName: 'grpc',
    service: 'latency-profiler',
    addressKeys: [],
    natsKey: 'natsUrl',
    exitDeadlineMs: (cfg) => ms(cfg, 'shutdownGrace') + 5000,
  },
]);

/** Variables a container may carry besides its service's settings. */
const EXTRA_ENV = [/^POD_NAME$/, /^POD_NAMESPACE$/, /^OTEL_[A-Z0-9_]+$/, /^NODE_OPTIONS$/];

export interface EnvEntry {
  source: 'configMap' | 'literal' | 'secret' | 'field' | 'unknown';
  value?: string;
  optional?: boolean;
  /** ConfigMap or Secret it comes from. */
  from?: string;
}

/** The environment of a container as Kubernetes assembles it: envFrom in order, then env. */
export function containerEnv(objects: readonly KubeObject[], c: IContainer): Map<string, EnvEntry> {
  const env = new Map<string, EnvEntry>();
  for (const from of c.envFrom ?? []) {
    const name = from.configMapRef?.name ?? from.secretRef?.name ?? '';
    const source = from.configMapRef ? 'configMap' : 'secret';
    const o = find(objects, from.configMapRef ? 'ConfigMap' : 'Secret', name);
    const data = {
      ...((o?.['data'] as Record<string, string> | undefined) ?? {}),
      ...((o?.['stringData'] as Record<string, string> | undefined) ?? {}),
    };
    for (const [key, value] of Object.entries(data)) {
      env.set(`${from.prefix ?? ''}${key}`, {
        source,
        value: source === 'configMap' ? String(value) : undefined,
        from: name,
      });
    }
  }
  for (const e of c.env ?? []) {
    if (e.value !== undefined) env.set(e.name, { source: 'literal', value: e.value });
    else if (e.valueFrom?.secretKeyRef) {
      env.set(e.name, {
        source: 'secret',
        from: e.valueFrom.secretKeyRef.name ?? '',
        optional: e.valueFrom.secretKeyRef.optional ?? false,
      });
    } else if (e.valueFrom?.configMapKeyRef) {
      const ref = e.valueFrom.configMapKeyRef;
      const data = (find(objects, 'ConfigMap', ref.name ?? '')?.['data'] ?? {}) as Record<
        string,
        string
      >;
      env.set(e.name, {
        source: 'configMap',
        from: ref.name ?? '',
        ...(data[ref.key] !== undefined ? { value: data[ref.key] } : {}),
      });
    } else if (e.valueFrom?.fieldRef || e.valueFrom?.resourceFieldRef) {
      env.set(e.name, { source: 'field', value: 'from-downward-api' });
    } else env.set(e.name, { source: 'literal', value: '' });
  }
  return env;
}

/**
 * "host:port" → the rendered Service it names, when it names one in the render namespace
 * (short name, name.namespace, name.namespace.svc[.cluster.local]). `external` otherwise.
 */
export function resolveAddress(
  objects: readonly KubeObject[],
  address: string,
): { kind: 'external' } | { kind: 'service'; service: string; ok: boolean; canonical: string } {
  const namespace = namespaceOf(objects) ?? 'default';
  const m = /^([a-z0-9.-]+):(\d+)$/.exec(address);
  if (!m) return { kind: 'external' };
  const [name, ns = namespace, ...rest] = m[1]!.split('.');
  const suffix = rest.join('.');
  const inCluster = suffix === '' || suffix === 'svc' || suffix === 'svc.cluster.local';
  if (!inCluster || ns !== namespace || /^\d+$/.test(name ?? '')) return { kind: 'external' };
  const svc = find(objects, 'Service', name!);
  const port = Number(m[2]);
  const ok =
    svc !== undefined &&
    ((svc['spec'] as { ports?: { port: number }[] }).ports ?? []).some((p) => p.port === port);
  return { kind: 'service', service: name!, ok, canonical: `${name}.${ns}:${port}` };
}

/** An address of a rendered Service must name one of its ports, on pods `from` may reach. */
function reachable(
  objects: readonly KubeObject[],
  from: Workload,
  address: string,
  what: string,
  at: string,
  problems: string[],
): void {
  const r = resolveAddress(objects, address);
  if (r.kind !== 'service') return;
  if (!r.ok) {
    problems.push(`${at}: ${what} names no rendered Service port`);
    return;
  }
  const spec = find(objects, 'Service', r.service)!['spec'] as {
    selector?: Record<string, string>;
    ports: { port: number; targetPort?: number | string }[];
  };
  const port = spec.ports.find((p) => p.port === Number(address.split(':').pop()))!;
  for (const to of workloads(objects).filter((x) => selectorMatches(spec.selector, x.labels))) {
    const target =
      typeof port.targetPort === 'string'
        ? to.pod.containers.flatMap((c) => c.ports ?? []).find((p) => p.name === port.targetPort)
            ?.containerPort
        : (port.targetPort ?? port.port);
    if (target !== undefined && !ingressAllowed(objects, from, to, target)) {
      problems.push(
        `${at}: a NetworkPolicy keeps it from ${what} (${describe(to.object)} port ${target})`,
      );
    }
  }
}

function hostPortOfUrl(url: string): string | undefined {
  try {
    const u = new URL(url);
    return `${u.hostname}:${u.port || '4222'}`;
  } catch {
    return undefined;
  }
}

function canonicalHost(objects: readonly KubeObject[], hostPort: string): string {
  const r = resolveAddress(objects, hostPort);
  const host = r.kind === 'service' ? r.canonical.split(':')[0]! : hostPort.split(':')[0]!;
  return host.replace(/\.svc(\.cluster\.local)?$/, '');
}

function workloadOf(objects: readonly KubeObject[], name: string): Workload | undefined {
  return workloads(objects).find(
    (w) => w.object.kind === 'Deployment' && w.object.metadata.name === name,
  );
}

/** The parsed configuration of a service as its container would load it (or the errors). */
export function loadServiceConfig(
  objects: readonly KubeObject[],
  spec: ServiceSpec,
): { cfg?: Config; env: Map<string, EnvEntry>; problems: string[] } {
  const w = workloadOf(objects, spec.name);
  const c = w?.pod.containers.find((x) => x.name === spec.name);
  if (!w || !c) {
    return {
      env: new Map(),
      problems: [`Deployment/${spec.name}: container ${spec.name} missing`],
    };
  }
  const env = containerEnv(objects, c);
  const values: Record<string, string> = {};
  for (const [name, e] of env) {
    if (e.value !== undefined) values[name] = e.value;
    else if (e.source === 'secret' && !e.optional) values[name] = 'secret-from-kubernetes';
  }
  try {
    return {
      cfg: loadConfig(spec.schema, { env: values, envPrefix: spec.envPrefix }),
      env,
      problems: [],
    };
  } catch (err) {
    const msg = err instanceof ConfigError ? err.message : String(err);
    return {
      env,
      problems: [`Deployment/${spec.name}: the service would refuse its config: ${msg}`],
    };
  }
}

/** Everything that ties each service's manifests to the service's own configuration. */
export function checkServiceConfigs(
  objects: readonly KubeObject[],
  services: readonly ServiceSpec[] = SERVICES,
): string[] {
  const problems: string[] = [];
  const prefixes = services.map((s) => s.envPrefix);
  for (const spec of services) {
    const at = `Deployment/${spec.name}`;
    const settings = describeSettings(spec.schema, { envPrefix: spec.envPrefix });
    const known = new Map(settings.map((s) => [s.env, s]));
    const { cfg, env, problems: loadProblems } = loadServiceConfig(objects, spec);
    problems.push(...loadProblems);
    if (!cfg) continue;

    for (const [name, e] of env) {
      const setting = known.get(name);
      if (setting) {
        if (spec.schema[setting.key]?.secret && e.source !== 'secret') {
          problems.push(
            `${at}: ${name} is a secret setting; take it from a Secret, not a ${e.source}`,
          );
        }
        continue;
      }
      if (name.startsWith(spec.envPrefix)) {
        problems.push(
          `${at}: ${name} is not a setting of ${spec.name} (known: ${[...known.keys()].join(', ')})`,
        );
      } else if (prefixes.some((p) => name.startsWith(p))) {
        problems.push(`${at}: ${name} is a setting of another service; ${spec.name} ignores it`);
      } else if (!EXTRA_ENV.some((re) => re.test(name))) {
        problems.push(`${at}: ${name} is read by nothing in this container`);
      }
    }

    // listens on the pod IP, on the port the probes, the container port and the Service use
    const host = String(cfg[spec.hostKey]);
    if (host !== '0.0.0.0' && host !== '::') {
      problems.push(
        `${at}: ${spec.hostKey}=${host}: probes and peers reach the pod IP, listen on 0.0.0.0`,
      );
    }
    const port = Number(cfg[spec.portKey]);
    const w = workloadOf(objects, spec.name)!;
    const c = w.pod.containers.find((x) => x.name === spec.name)!;
    const declared = (c.ports ?? []).find((p) => p.name === spec.portName);
    if (declared?.containerPort !== port) {
      problems.push(
        `${at}: listens on ${port} (${spec.portKey}) but container port ${spec.portName} is ${declared?.containerPort ?? 'missing'}`,
      );
    }
    // with TLS on the main port, the probes use the plaintext health-only port (the kubelet
    // presents no client certificate); it must be declared too
    const tls = cfg['tlsCert'] !== undefined && cfg['tlsCert'] !== '';
    const healthPort = cfg['healthPort'] === undefined ? undefined : Number(cfg['healthPort']);
    const probePort = tls && healthPort !== undefined ? healthPort : port;
    if (tls && healthPort === undefined && spec.portKey !== 'healthPort') {
      problems.push(`${at}: TLS is on (tlsCert) but no healthPort is set for the probes`);
    }
    if (probePort !== port && !(c.ports ?? []).some((p) => p.containerPort === probePort)) {
      problems.push(`${at}: the health port ${probePort} is not a container port`);
    }
    for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
      const probe = c[kind];
      if (probe && probe.grpc?.port !== probePort) {
        problems.push(`${at}: ${kind} must be a gRPC probe on the health port ${probePort}`);
      }
    }
    if (spec.service) {
      const svc = find(objects, 'Service', spec.service);
      const svcPort = (
        (svc?.['spec'] as { ports?: { name?: string; targetPort?: unknown }[] })?.ports ?? []
      ).find((p) => p.name === 'grpc');
      if (!svc || !svcPort)
        problems.push(`${at}: Service ${spec.service} with a port named grpc missing`);
      else if (svcPort.targetPort !== spec.portName && svcPort.targetPort !== port) {
        problems.push(`Service/${spec.service}: port grpc must target ${spec.portName}`);
      }
    }

    // exits by itself before the kubelet's SIGKILL
    const graceS = w.pod.terminationGracePeriodSeconds ?? 30;
    const deadline = spec.exitDeadlineMs(cfg);
    if (graceS * 1000 <= deadline) {
      problems.push(
        `${at}: terminationGracePeriodSeconds ${graceS} s does not cover the shutdown deadline of ${deadline} ms`,
      );
    }

    // other services and NATS by names that exist, and that NetworkPolicies let it reach
    for (const key of spec.addressKeys) {
      reachable(objects, w, String(cfg[key]), `${key}=${String(cfg[key])}`, at, problems);
    }
    const natsUrls = cfg[spec.natsKey];
    for (const url of Array.isArray(natsUrls) ? natsUrls : String(natsUrls).split(',')) {
      const hostPort = hostPortOfUrl(String(url).trim());
      if (hostPort) reachable(objects, w, hostPort, `${spec.natsKey} ${String(url)}`, at, problems);
      else problems.push(`${at}: ${spec.natsKey} ${String(url)} is not a URL`);
    }
  }
  return problems;
}

/** Stream, bucket and subject names (not DNS names such as nats.metaprune.svc). */
const NATS_LIKE =
  /(?<![\w./-])(METAPRUNE_[A-Z0-9_]+|metaprune_[a-z0-9_]+|metaprune\.(?!svc\b)[a-z0-9.]*[a-z0-9])\b/g;

function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) strings(v, out);
  }
  return out;
}

/**
 * The KEDA trigger of the evaluators reads NATS_NAMES.jobsStream /
 * NATS_NAMES.evaluatorsConsumer in the right account, on the server the evaluators use;
 * any other stream, consumer, bucket or subject name in the manifests is one of NATS_NAMES.
 */
export function checkNatsNames(
  objects: readonly KubeObject[],
  names: Readonly<Record<keyof typeof NATS_NAMES, string>> = NATS_NAMES,
): string[] {
  const problems: string[] = [];
  const evaluator = SERVICES.find((s) => s.name === 'evaluator')!;
  const triggers = objects
    .filter((o) => o.kind === 'ScaledObject')
    .flatMap((so) =>
      (
        (so['spec'] as { triggers?: { type?: string; metadata?: Record<string, string> }[] })
          .triggers ?? []
      )
        .filter((t) => t.type === 'nats-jetstream')
        .map((t) => ({ so, meta: t.metadata ?? {} })),
    );
  const forEvaluator = triggers.filter(
    ({ so }) =>
      (so['spec'] as { scaleTargetRef?: { name?: string } }).scaleTargetRef?.name ===
      evaluator.name,
  );
  if (forEvaluator.length !== 1) {
    problems.push(
      `expected one nats-jetstream trigger scaling ${evaluator.name}, found ${forEvaluator.length}`,
    );
  }
  const natsConf = objects
    .filter((o) => o.kind === 'ConfigMap')
    .flatMap((o) => Object.values((o['data'] as Record<string, string> | undefined) ?? {}))
    .find((text) => /^\s*jetstream\s*[{:]/m.test(text));
  const evaluatorCfg = loadServiceConfig(objects, evaluator).cfg;
  for (const { so, meta } of forEvaluator) {
    const at = describe(so);
    if (meta['stream'] !== names.jobsStream) {
      problems.push(
        `${at}: stream ${meta['stream']} is not NATS_NAMES.jobsStream (${names.jobsStream})`,
      );
    }
    if (meta['consumer'] !== names.evaluatorsConsumer) {
      problems.push(
        `${at}: consumer ${meta['consumer']} is not NATS_NAMES.evaluatorsConsumer (${names.evaluatorsConsumer})`,
      );
    }
    if (
      natsConf !== undefined &&
      !/^\s*accounts\s*[{:]/m.test(natsConf) &&
      meta['account'] !== '$G'
    ) {
      problems.push(`${at}: the rendered NATS defines no accounts: account must be "$G"`);
    }
    for (const key of ['lagThreshold', 'activationLagThreshold']) {
      if (meta[key] !== undefined && !/^\d+$/.test(meta[key]!)) {
        problems.push(`${at}: ${key} must be a whole number in a string`);
      }
    }
    const endpoint = meta['natsServerMonitoringEndpoint'] ?? '';
    const r = resolveAddress(objects, endpoint);
    if (!/^[a-z0-9-]+\.[a-z0-9.-]+:\d+$/.test(endpoint)) {
      problems.push(
        `${at}: natsServerMonitoringEndpoint ${endpoint} must be host.namespace[.svc...]:port (KEDA runs in its own namespace)`,
      );
    } else if (r.kind === 'service' && !r.ok) {
      problems.push(
        `${at}: natsServerMonitoringEndpoint ${endpoint} names no rendered Service port`,
      );
    }
    const urls = evaluatorCfg?.[evaluator.natsKey];
    const evaluatorHosts = new Set(
      (Array.isArray(urls) ? urls : String(urls ?? '').split(','))
        .map((u) => hostPortOfUrl(String(u).trim()))
        .filter((h): h is string => h !== undefined)
        .map((h) => canonicalHost(objects, h)),
    );
    const keda = canonicalHost(objects, endpoint);
    if (!evaluatorHosts.has(keda)) {
      problems.push(
        `${at}: KEDA reads ${keda} but the evaluators use ${[...evaluatorHosts].join(', ') || 'no NATS'}`,
      );
    }
  }

  const allowed = Object.values(names);
  for (const o of objects) {
    for (const text of strings(o)) {
      for (const m of text.matchAll(NATS_LIKE)) {
        const found = m[1]!;
        const ok = allowed.some((n) => found === n || found.startsWith(`${n}.`));
        if (!ok) problems.push(`${describe(o)}: ${found} is not one of NATS_NAMES`);
      }
    }
  }
  return problems;
}
