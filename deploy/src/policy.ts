/**
 * Policy checks on rendered manifests, beyond what the schemas say: every container has
 * probes, resources and a non-root read-only security context (the "restricted" Pod Security
 * Standard and then some), references resolve (ConfigMaps, Secrets, volumes, ports, Service
 * selectors, PodDisruptionBudgets, KEDA targets), and no setting silently breaks a rollout.
 * Each function returns a list of problems, empty when all is well.
 */
import type { IContainer } from 'kubernetes-models/v1/Container';
import type { IPodSpec } from 'kubernetes-models/v1/PodSpec';
import type { IProbe } from 'kubernetes-models/v1/Probe';
import { type KubeObject, parseImage, podSpecsOf } from './kustomize.js';
import { describe } from './schemas.js';

export const WORKLOAD_KINDS = new Set(['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'Pod']);
export const PART_OF = 'metaprune';

export interface Workload {
  object: KubeObject;
  pod: IPodSpec;
  /** Labels of the pod template. */
  labels: Record<string, string>;
}

export function workloads(objects: readonly KubeObject[]): Workload[] {
  const out: Workload[] = [];
  for (const o of objects) {
    if (!WORKLOAD_KINDS.has(o.kind)) continue;
    const [pod] = podSpecsOf(o);
    if (!pod) continue;
    const template = (
      o['spec'] as { template?: { metadata?: { labels?: Record<string, string> } } }
    )?.template;
    const labels =
      o.kind === 'Pod' ? (o.metadata.labels ?? {}) : (template?.metadata?.labels ?? {});
    out.push({ object: o, pod: pod as unknown as IPodSpec, labels });
  }
  return out;
}

export function find(
  objects: readonly KubeObject[],
  kind: string,
  name: string,
): KubeObject | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name);
}

/** CPU in cores, memory and storage in bytes ("500m", "2", "4Gi", "1e3"). NaN if malformed. */
export function parseQuantity(q: unknown): number {
  if (typeof q === 'number') return q;
  if (typeof q !== 'string') return Number.NaN;
  const m =
    /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei))?$/.exec(
      q.trim(),
    );
  if (!m) return Number.NaN;
  const base = Number(m[1]);
  if (m[2]) return base * 10 ** Number(m[2].slice(1));
  const factor: Record<string, number> = {
    m: 1e-3,
    k: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
    P: 1e15,
    E: 1e18,
    Ki: 2 ** 10,
    Mi: 2 ** 20,
    Gi: 2 ** 30,
    Ti: 2 ** 40,
    Pi: 2 ** 50,
    Ei: 2 ** 60,
  };
  return base * (m[3] ? factor[m[3]]! : 1);
}

export function selectorMatches(
  selector: Record<string, string> | undefined,
  labels: Record<string, string>,
): boolean {
  const entries = Object.entries(selector ?? {});
  return entries.length > 0 && entries.every(([k, v]) => labels[k] === v);
}

function probePort(probe: IProbe): number | string | undefined {
  return (
    probe.grpc?.port ??
    probe.httpGet?.port ??
    probe.tcpSocket?.port ??
    (probe.exec ? '' : undefined)
  );
}

/** Whether a port (number or name) refers to a declared container port. */
function portDeclared(container: IContainer, port: number | string): boolean {
  return (container.ports ?? []).some((p) =>
    typeof port === 'number' ? p.containerPort === port : p.name === port,
  );
}

export interface PolicyOptions {
  /**
   * Secrets the overlay expects to exist in the cluster without rendering them (created by
   * the operator, see docs/deploy.md). A reference to any other missing Secret is an error.
   */
  externalSecrets?: readonly string[];
}

/** Everything a pod and its containers must satisfy; one line per problem. */
export function checkWorkloads(objects: readonly KubeObject[], opts: PolicyOptions = {}): string[] {
  const problems: string[] = [];
  const external = new Set(opts.externalSecrets ?? []);
  const configMaps = new Map(
    objects.filter((o) => o.kind === 'ConfigMap').map((o) => [o.metadata.name, o]),
  );
  const secrets = new Map(
    objects.filter((o) => o.kind === 'Secret').map((o) => [o.metadata.name, o]),
  );
  const secretKeys = (s: KubeObject): Set<string> =>
    new Set([
      ...Object.keys((s['data'] as Record<string, string> | undefined) ?? {}),
      ...Object.keys((s['stringData'] as Record<string, string> | undefined) ?? {}),
    ]);

  const checkSecretRef = (
    where: string,
    name: string | undefined,
    key: string | undefined,
    optional: boolean | undefined,
  ): void => {
    if (!name) {
      problems.push(`${where}: Secret reference without a name`);
      return;
    }
    const secret = secrets.get(name);
    if (secret) {
      if (key !== undefined && !optional && !secretKeys(secret).has(key)) {
        problems.push(`${where}: Secret ${name} has no key ${key}`);
      }
    } else if (!optional && !external.has(name)) {
      problems.push(
        `${where}: Secret ${name} is neither rendered nor a documented external Secret`,
      );
    }
  };

  for (const w of workloads(objects)) {
    const at = describe(w.object);
    const pod = w.pod;
    const podSc = pod.securityContext ?? {};
    if (pod.enableServiceLinks !== false) {
      problems.push(
        `${at}: enableServiceLinks must be false (service links inject <SERVICE>_PORT variables that collide with settings)`,
      );
    }
    if (pod.automountServiceAccountToken !== false) {
      problems.push(`${at}: automountServiceAccountToken must be false`);
    }
    if (pod.hostNetwork || pod.hostPID || pod.hostIPC) {
      problems.push(`${at}: host namespaces are not allowed`);
    }
    if (podSc.seccompProfile?.type !== 'RuntimeDefault') {
      problems.push(`${at}: pod securityContext.seccompProfile.type must be RuntimeDefault`);
    }
    if (podSc.runAsUser === 0 || podSc.runAsGroup === 0) {
      problems.push(`${at}: pod must not run as uid/gid 0`);
    }
    if (w.object.metadata.labels?.['app.kubernetes.io/part-of'] !== PART_OF) {
      problems.push(`${at}: label app.kubernetes.io/part-of=${PART_OF} missing`);
    }
    if (w.labels['app.kubernetes.io/part-of'] !== PART_OF) {
      problems.push(`${at}: pod template label app.kubernetes.io/part-of=${PART_OF} missing`);
    }
    const selector = (w.object['spec'] as { selector?: { matchLabels?: Record<string, string> } })
      ?.selector?.matchLabels;
    if (w.object.kind !== 'Pod' && !selectorMatches(selector, w.labels)) {
      problems.push(`${at}: spec.selector does not match the pod template labels`);
    }

    const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
    for (const v of pod.volumes ?? []) {
      if (v.hostPath) problems.push(`${at}: hostPath volume ${v.name} is not allowed`);
      if (v.configMap?.name && !configMaps.has(v.configMap.name) && !v.configMap.optional) {
        problems.push(`${at}: volume ${v.name}: ConfigMap ${v.configMap.name} is not rendered`);
      }
      if (v.secret) {
        checkSecretRef(
          `${at}: volume ${v.name}`,
          v.secret.secretName,
          undefined,
          v.secret.optional,
        );
      }
      if (v.persistentVolumeClaim) {
        const claim = v.persistentVolumeClaim.claimName;
        const pvc = find(objects, 'PersistentVolumeClaim', claim);
        if (!pvc) problems.push(`${at}: volume ${v.name}: PVC ${claim} is not rendered`);
        const modes = (pvc?.['spec'] as { accessModes?: string[] } | undefined)?.accessModes ?? [];
        const spec = w.object['spec'] as {
          replicas?: number;
          strategy?: { type?: string };
        };
        if (
          w.object.kind === 'Deployment' &&
          modes.includes('ReadWriteOnce') &&
          ((spec.replicas ?? 1) > 1 || spec.strategy?.type !== 'Recreate')
        ) {
          problems.push(
            `${at}: mounts ReadWriteOnce PVC ${claim}: needs replicas 1 and strategy Recreate (a second pod on another node cannot attach it)`,
          );
        }
      }
    }
    const claimTemplates = new Set(
      (
        (w.object['spec'] as { volumeClaimTemplates?: { metadata?: { name?: string } }[] })
          ?.volumeClaimTemplates ?? []
      ).map((t) => t.metadata?.name),
    );

    for (const c of pod.containers) {
      const cat = `${at}: container ${c.name}`;
      const sc = c.securityContext ?? {};
      // image: explicit tag or digest, never :latest
      const img = parseImage(c.image ?? '');
      if (!c.image) problems.push(`${cat}: no image`);
      else if (img.digest === undefined && (img.tag === undefined || img.tag === 'latest')) {
        problems.push(`${cat}: image ${c.image} needs an explicit tag or digest (not latest)`);
      }
      // probes, pointing at declared ports
      for (const kind of ['startupProbe', 'readinessProbe', 'livenessProbe'] as const) {
        const probe = c[kind];
        if (!probe) {
          problems.push(`${cat}: no ${kind}`);
          continue;
        }
        const port = probePort(probe);
        if (port === undefined) problems.push(`${cat}: ${kind} has no handler`);
        else if (port !== '' && !portDeclared(c, port)) {
          problems.push(`${cat}: ${kind} port ${port} is not a declared container port`);
        }
      }
      // resources: requests and limits for cpu and memory, requests <= limits
      const req = (c.resources?.requests ?? {}) as Record<string, unknown>;
      const lim = (c.resources?.limits ?? {}) as Record<string, unknown>;
      for (const r of ['cpu', 'memory']) {
        if (req[r] === undefined) problems.push(`${cat}: no ${r} request`);
        if (lim[r] === undefined) problems.push(`${cat}: no ${r} limit`);
      }
      for (const [r, value] of Object.entries(req)) {
        const q = parseQuantity(value);
        if (Number.isNaN(q)) problems.push(`${cat}: request ${r}=${String(value)} is malformed`);
        if (lim[r] !== undefined && q > parseQuantity(lim[r])) {
          problems.push(`${cat}: request ${r} exceeds its limit`);
        }
      }
      for (const [r, value] of Object.entries(lim)) {
        if (Number.isNaN(parseQuantity(value))) {
          problems.push(`${cat}: limit ${r}=${String(value)} is malformed`);
        }
      }
      // extended resources (GPUs): the limit is what the scheduler counts; a request must equal it
      for (const r of new Set([...Object.keys(req), ...Object.keys(lim)])) {
        if (!r.includes('/')) continue;
        if (lim[r] === undefined) problems.push(`${cat}: ${r} needs a limit`);
        else if (req[r] !== undefined && parseQuantity(req[r]) !== parseQuantity(lim[r])) {
          problems.push(`${cat}: ${r} request must equal its limit`);
        }
      }
      // security context
      if (sc.allowPrivilegeEscalation !== false) {
        problems.push(`${cat}: allowPrivilegeEscalation must be false`);
      }
      if (sc.readOnlyRootFilesystem !== true) {
        problems.push(`${cat}: readOnlyRootFilesystem must be true`);
      }
      if (sc.privileged) problems.push(`${cat}: privileged is not allowed`);
      if (!(sc.capabilities?.drop ?? []).includes('ALL')) {
        problems.push(`${cat}: capabilities must drop ALL`);
      }
      if ((sc.capabilities?.add ?? []).length > 0) {
        problems.push(`${cat}: capabilities.add is not allowed`);
      }
      if ((sc.runAsNonRoot ?? podSc.runAsNonRoot) !== true) {
        problems.push(`${cat}: runAsNonRoot must be true`);
      }
      if (sc.runAsUser === 0) problems.push(`${cat}: must not run as uid 0`);
      // mounts resolve; /tmp is writable scratch (the root filesystem is read-only)
      for (const m of c.volumeMounts ?? []) {
        if (!volumes.has(m.name) && !claimTemplates.has(m.name)) {
          problems.push(`${cat}: volumeMount ${m.name} has no volume`);
        }
      }
      const tmp = (c.volumeMounts ?? []).find((m) => m.mountPath === '/tmp');
      if (!tmp || !volumes.get(tmp.name)?.emptyDir) {
        problems.push(`${cat}: /tmp must be an emptyDir mount (the root filesystem is read-only)`);
      }
      // ports: named, unique
      const portNames = new Set<string>();
      for (const p of c.ports ?? []) {
        if (!p.name) problems.push(`${cat}: port ${p.containerPort} has no name`);
        else if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(p.name) || p.name.length > 15) {
          problems.push(`${cat}: port name ${p.name} is not a valid IANA service name`);
        } else if (portNames.has(p.name)) problems.push(`${cat}: port name ${p.name} repeated`);
        else portNames.add(p.name);
      }
      // environment: names unique and valid, references resolve
      const envNames = new Set<string>();
      for (const e of c.env ?? []) {
        if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(e.name)) {
          problems.push(`${cat}: env name ${e.name} is not a valid identifier`);
        }
        if (envNames.has(e.name)) problems.push(`${cat}: env ${e.name} is set twice`);
        envNames.add(e.name);
        const cmRef = e.valueFrom?.configMapKeyRef;
        if (cmRef) {
          const cm = configMaps.get(cmRef.name ?? '');
          const data = (cm?.['data'] as Record<string, string> | undefined) ?? {};
          if (!cmRef.optional && !(cmRef.key in data)) {
            problems.push(`${cat}: env ${e.name}: ConfigMap ${cmRef.name} has no key ${cmRef.key}`);
          }
        }
        const sRef = e.valueFrom?.secretKeyRef;
        if (sRef) checkSecretRef(`${cat}: env ${e.name}`, sRef.name, sRef.key, sRef.optional);
      }
      for (const from of c.envFrom ?? []) {
        if (from.configMapRef) {
          const name = from.configMapRef.name ?? '';
          const cm = configMaps.get(name);
          if (!cm && !from.configMapRef.optional) {
            problems.push(`${cat}: envFrom ConfigMap ${name} is not rendered`);
          }
          for (const key of Object.keys((cm?.['data'] as Record<string, string>) ?? {})) {
            if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) {
              problems.push(`${cat}: ConfigMap ${name} key ${key} is not a valid env name`);
            }
          }
        }
        if (from.secretRef) {
          checkSecretRef(
            `${cat}: envFrom`,
            from.secretRef.name,
            undefined,
            from.secretRef.optional,
          );
        }
      }
    }
  }
  return problems;
}

/** Services select pods and target their declared ports; gRPC ports are named. */
export function checkServices(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  const all = workloads(objects);
  for (const svc of objects.filter((o) => o.kind === 'Service')) {
    const at = describe(svc);
    const spec = svc['spec'] as {
      selector?: Record<string, string>;
      ports?: { name?: string; port: number; targetPort?: number | string }[];
    };
    const selected = all.filter((w) => selectorMatches(spec.selector, w.labels));
    if (selected.length === 0) {
      problems.push(`${at}: selector matches no pod template`);
      continue;
    }
    for (const port of spec.ports ?? []) {
      if (!port.name) problems.push(`${at}: port ${port.port} has no name`);
      const target = port.targetPort ?? port.port;
      for (const w of selected) {
        if (!w.pod.containers.some((c) => portDeclared(c, target))) {
          problems.push(
            `${at}: port ${port.name ?? port.port} targets ${target}, not a container port of ${describe(w.object)}`,
          );
        }
      }
    }
  }
  for (const w of all.filter((x) => x.object.kind === 'StatefulSet')) {
    const serviceName = (w.object['spec'] as { serviceName?: string }).serviceName ?? '';
    const svc = find(objects, 'Service', serviceName);
    if (!svc || (svc['spec'] as { clusterIP?: string }).clusterIP !== 'None') {
      problems.push(`${describe(w.object)}: serviceName ${serviceName} is not a headless Service`);
    }
  }
  return problems;
}

/**
 * Every Deployment / StatefulSet is covered by exactly one PodDisruptionBudget that still
 * lets a node drain proceed (a budget that allows no disruption blocks cluster upgrades).
 */
export function checkDisruptionBudgets(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  const pdbs = objects.filter((o) => o.kind === 'PodDisruptionBudget');
  for (const w of workloads(objects)) {
    if (!['Deployment', 'StatefulSet'].includes(w.object.kind)) continue;
    const at = describe(w.object);
    const covering = pdbs.filter((p) =>
      selectorMatches(
        (p['spec'] as { selector?: { matchLabels?: Record<string, string> } }).selector
          ?.matchLabels,
        w.labels,
      ),
    );
    if (covering.length !== 1) {
      problems.push(`${at}: covered by ${covering.length} PodDisruptionBudgets, expected 1`);
      continue;
    }
    const pdb = covering[0]!;
    const spec = pdb['spec'] as {
      minAvailable?: number | string;
      maxUnavailable?: number | string;
    };
    const scaled = scaledObjectFor(objects, w.object);
    const replicas = scaled
      ? ((scaled['spec'] as { minReplicaCount?: number }).minReplicaCount ?? 0)
      : ((w.object['spec'] as { replicas?: number }).replicas ?? 1);
    const blocks =
      spec.maxUnavailable === 0 ||
      spec.maxUnavailable === '0%' ||
      spec.minAvailable === '100%' ||
      (typeof spec.minAvailable === 'number' && spec.minAvailable >= replicas);
    if (blocks) {
      problems.push(
        `${describe(pdb)}: allows no voluntary disruption of ${at} (${replicas} replicas): node drains would hang`,
      );
    }
  }
  return problems;
}

export function scaledObjectFor(
  objects: readonly KubeObject[],
  target: KubeObject,
): KubeObject | undefined {
  return objects.find((o) => {
    if (o.kind !== 'ScaledObject') return false;
    const ref = (o['spec'] as { scaleTargetRef?: { name?: string; kind?: string } }).scaleTargetRef;
    return ref?.name === target.metadata.name && (ref.kind ?? 'Deployment') === target.kind;
  });
}

/** KEDA ScaledObjects target a rendered workload that leaves `replicas` to them. */
export function checkScaledObjects(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  for (const so of objects.filter((o) => o.kind === 'ScaledObject')) {
    const at = describe(so);
    const spec = so['spec'] as {
      scaleTargetRef?: { name?: string; kind?: string };
      minReplicaCount?: number;
      maxReplicaCount?: number;
      triggers?: unknown[];
    };
    const kind = spec.scaleTargetRef?.kind ?? 'Deployment';
    const target = find(objects, kind, spec.scaleTargetRef?.name ?? '');
    if (!target) {
      problems.push(`${at}: scaleTargetRef ${kind}/${spec.scaleTargetRef?.name} is not rendered`);
    } else if ((target['spec'] as { replicas?: number }).replicas !== undefined) {
      problems.push(
        `${at}: ${describe(target)} sets spec.replicas; kubectl apply would fight the autoscaler`,
      );
    }
    if ((spec.minReplicaCount ?? 0) > (spec.maxReplicaCount ?? 100)) {
      problems.push(`${at}: minReplicaCount exceeds maxReplicaCount`);
    }
    if (!Array.isArray(spec.triggers) || spec.triggers.length === 0) {
      problems.push(`${at}: no triggers`);
    }
  }
  return problems;
}

/** Every namespaced object sits in the one namespace; every object is labelled part-of. */
export function checkNamespaceAndLabels(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  const namespaces = objects.filter((o) => o.kind === 'Namespace').map((o) => o.metadata.name);
  const used = new Set(
    objects.filter((o) => o.kind !== 'Namespace').map((o) => o.metadata.namespace ?? '(none)'),
  );
  if (used.size !== 1) {
    problems.push(`objects are spread over namespaces ${[...used].join(', ')}; expected one`);
  }
  const [ns] = [...used];
  if (namespaces.length > 0 && ns !== undefined && !namespaces.includes(ns)) {
    problems.push(`objects are in namespace ${ns} but the rendered Namespace is ${namespaces}`);
  }
  for (const o of objects) {
    if (o.metadata.labels?.['app.kubernetes.io/part-of'] !== PART_OF) {
      problems.push(`${describe(o)}: label app.kubernetes.io/part-of=${PART_OF} missing`);
    }
  }
  return problems;
}

/** Namespace of the rendered objects (the one most of them use). */
export function namespaceOf(objects: readonly KubeObject[]): string | undefined {
  return objects.find((o) => o.metadata.namespace !== undefined)?.metadata.namespace;
}

interface NetworkPolicyPeer {
  podSelector?: { matchLabels?: Record<string, string> };
  namespaceSelector?: { matchLabels?: Record<string, string> };
  ipBlock?: unknown;
}
interface NetworkPolicySpec {
  podSelector?: { matchLabels?: Record<string, string> };
  policyTypes?: string[];
  ingress?: { from?: NetworkPolicyPeer[]; ports?: { port?: number | string }[] }[];
}

/** The workloads a NetworkPolicy applies to (an empty podSelector selects all). */
function selectedBy(objects: readonly KubeObject[], np: KubeObject): Workload[] {
  const labels = (np['spec'] as NetworkPolicySpec).podSelector?.matchLabels ?? {};
  return workloads(objects).filter((w) =>
    Object.entries(labels).every(([k, v]) => w.labels[k] === v),
  );
}

/**
 * Whether NetworkPolicies let pods of `from` (same namespace) connect to container port
 * `port` of `to`. Pods no policy selects for ingress accept everything.
 */
export function ingressAllowed(
  objects: readonly KubeObject[],
  from: Workload,
  to: Workload,
  port: number,
): boolean {
  const policies = objects.filter((o) => {
    if (o.kind !== 'NetworkPolicy') return false;
    if (!selectedBy(objects, o).some((x) => x.object === to.object)) return false;
    const types = (o['spec'] as NetworkPolicySpec).policyTypes ?? ['Ingress'];
    return types.includes('Ingress');
  });
  if (policies.length === 0) return true;
  const portName = to.pod.containers
    .flatMap((c) => c.ports ?? [])
    .find((p) => p.containerPort === port)?.name;
  return policies.some((np) =>
    ((np['spec'] as NetworkPolicySpec).ingress ?? []).some((rule) => {
      const portOk =
        !rule.ports ||
        rule.ports.some((p) => p.port === undefined || p.port === port || p.port === portName);
      const peerOk =
        !rule.from ||
        rule.from.some(
          (peer) =>
            peer.ipBlock === undefined &&
            peer.namespaceSelector === undefined &&
            Object.entries(peer.podSelector?.matchLabels ?? {}).every(
              ([k, v]) => from.labels[k] === v,
            ),
        );
      return portOk && peerOk;
    }),
  );
}

/** NetworkPolicies select pods and name ports those pods declare. */
export function checkNetworkPolicies(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  for (const np of objects.filter((o) => o.kind === 'NetworkPolicy')) {
    const selected = selectedBy(objects, np);
    if (selected.length === 0) problems.push(`${describe(np)}: selects no pod`);
    for (const rule of (np['spec'] as NetworkPolicySpec).ingress ?? []) {
      for (const p of rule.ports ?? []) {
        if (p.port === undefined) continue;
        for (const w of selected) {
          if (!w.pod.containers.some((c) => portDeclared(c, p.port!))) {
            problems.push(
              `${describe(np)}: port ${p.port} is not a container port of ${describe(w.object)}`,
            );
          }
        }
      }
    }
  }
  return problems;
}
