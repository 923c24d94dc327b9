/**
 * A small renderer for the subset of kustomize that deploy/ uses, so the manifests can be
 * rendered and checked where no kustomize or kubectl binary exists. It refuses anything
 * outside that subset instead of guessing:
 *
 * - `resources`: local YAML files and directories holding a kustomization.yaml;
 * - `namespace`: set on every namespaced object (a Namespace object must carry that name);
 * - `patches` with a `target`: strategic-merge patches (maps merge, `null` deletes a key,
 *   lists with a merge key in built-in kinds merge by that key, other lists are replaced;
 *   a list inside a custom resource cannot be strategic-merged here, use a JSON patch) or
 *   JSON 6902 patches (`add`, `replace`, `remove`, `test`);
 * - `images`: `name` with `newName`, `newTag` and/or `digest`.
 *
 * Output follows kustomize's default ("legacy") order: namespaces first, then service
 * accounts, config maps, secrets, services, storage, workloads, the rest.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse, parseAllDocuments, stringify } from 'yaml';

export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
    [key: string]: unknown;
  };
  [key: string]: unknown;
}

export class KustomizeError extends Error {
  override readonly name = 'KustomizeError';
}

interface Target {
  group?: string;
  version?: string;
  kind?: string;
  name?: string;
  namespace?: string;
  labelSelector?: string;
}

interface PatchEntry {
  path?: string;
  patch?: string;
  target?: Target;
}

interface ImageRule {
  name: string;
  newName?: string;
  newTag?: string;
  digest?: string;
}

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const SUPPORTED_FIELDS = new Set([
  'apiVersion',
  'kind',
  'namespace',
  'resources',
  'patches',
  'images',
]);

/** Kinds that have no namespace (those a kustomization here could plausibly hold). */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'Node',
  'PersistentVolume',
  'StorageClass',
  'CSIDriver',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PriorityClass',
  'RuntimeClass',
  'IngressClass',
  'MutatingWebhookConfiguration',
  'ValidatingWebhookConfiguration',
  'APIService',
  'ClusterTriggerAuthentication',
]);

/** Kinds whose schema kustomize knows, so strategic merge uses their list merge keys. */
const BUILTIN_GROUPS = new Set([
  '',
  'apps',
  'batch',
  'policy',
  'autoscaling',
  'networking.k8s.io',
  'rbac.authorization.k8s.io',
  'storage.k8s.io',
  'scheduling.k8s.io',
]);

const isRecord = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

export function groupOf(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0
    ? { group: '', version: apiVersion }
    : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

export function objectId(o: KubeObject): string {
  return `${o.apiVersion}/${o.kind}/${o.metadata.namespace ?? '~'}/${o.metadata.name}`;
}

function readYamlDocs(file: string): unknown[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: unknown[] = [];
  for (const doc of docs) {
    if (doc.errors.length > 0) {
      throw new KustomizeError(`${file}: ${doc.errors.map((e) => e.message).join('; ')}`);
    }
    const value: unknown = doc.toJS();
    if (value !== null && value !== undefined) out.push(value);
  }
  return out;
}

function asObject(value: unknown, where: string): KubeObject {
  if (
    !isRecord(value) ||
    typeof value['apiVersion'] !== 'string' ||
    typeof value['kind'] !== 'string' ||
    !isRecord(value['metadata']) ||
    typeof value['metadata']['name'] !== 'string'
  ) {
    throw new KustomizeError(`${where}: not a Kubernetes object (apiVersion, kind, metadata.name)`);
  }
  return value as KubeObject;
}

function kustomizationFile(dir: string): string {
  for (const name of KUSTOMIZATION_FILES) {
    const file = join(dir, name);
    if (existsSync(file)) return file;
  }
  throw new KustomizeError(`${dir}: no kustomization.yaml`);
}

/** Renders the kustomization in `dir` (and, recursively, the ones it includes). */
export function renderKustomization(dir: string): KubeObject[] {
  const root = resolve(dir);
  const file = kustomizationFile(root);
  const k: unknown = parse(readFileSync(file, 'utf8'));
  if (!isRecord(k)) throw new KustomizeError(`${file}: not a mapping`);
  for (const key of Object.keys(k)) {
    if (!SUPPORTED_FIELDS.has(key)) {
      throw new KustomizeError(`${file}: field "${key}" is not supported by this renderer`);
    }
  }
  if (k['kind'] !== undefined && k['kind'] !== 'Kustomization') {
    throw new KustomizeError(`${file}: kind ${String(k['kind'])} is not supported`);
  }

  let objects: KubeObject[] = [];
  for (const entry of list(k['resources'], `${file}: resources`)) {
    if (typeof entry !== 'string') throw new KustomizeError(`${file}: resources: not a path`);
    if (/^[a-z]+:\/\//i.test(entry) || entry.startsWith('github.com/')) {
      throw new KustomizeError(`${file}: remote resource ${entry} is not supported`);
    }
    const path = resolve(root, entry);
    if (!existsSync(path)) throw new KustomizeError(`${file}: resource ${entry} does not exist`);
    if (statSync(path).isDirectory()) objects.push(...renderKustomization(path));
    else
      objects.push(...readYamlDocs(path).map((d, i) => asObject(d, `${path} document ${i + 1}`)));
  }
  const seen = new Set<string>();
  for (const o of objects) {
    const id = objectId(o);
    if (seen.has(id)) throw new KustomizeError(`${file}: ${id} is defined twice`);
    seen.add(id);
  }

  for (const [i, raw] of list(k['patches'], `${file}: patches`).entries()) {
    objects = applyPatchEntry(objects, raw, root, `${file}: patches[${i}]`);
  }

  const namespace = k['namespace'];
  if (namespace !== undefined) {
    if (typeof namespace !== 'string') throw new KustomizeError(`${file}: namespace: not a string`);
    for (const o of objects) {
      if (o.kind === 'Namespace') {
        if (o.metadata.name !== namespace) {
          throw new KustomizeError(
            `${file}: Namespace ${o.metadata.name} differs from namespace ${namespace} (renaming a Namespace object is not supported)`,
          );
        }
      } else if (!CLUSTER_SCOPED.has(o.kind)) {
        o.metadata.namespace = namespace;
      }
    }
  }

  for (const raw of list(k['images'], `${file}: images`)) {
    if (!isRecord(raw) || typeof raw['name'] !== 'string') {
      throw new KustomizeError(`${file}: images: every entry needs a name`);
    }
    applyImageRule(objects, raw as unknown as ImageRule);
  }
  return objects;
}

function list(value: unknown, where: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new KustomizeError(`${where}: not a list`);
  return value;
}

function applyPatchEntry(
  objects: KubeObject[],
  raw: unknown,
  root: string,
  where: string,
): KubeObject[] {
  if (!isRecord(raw)) throw new KustomizeError(`${where}: not a mapping`);
  const entry = raw as PatchEntry;
  if (!isRecord(entry.target)) {
    throw new KustomizeError(`${where}: give a target (patches without one are not supported)`);
  }
  let text: string;
  if (typeof entry.path === 'string') {
    const path = resolve(root, entry.path);
    if (!existsSync(path)) throw new KustomizeError(`${where}: ${entry.path} does not exist`);
    text = readFileSync(path, 'utf8');
  } else if (typeof entry.patch === 'string') {
    text = entry.patch;
  } else {
    throw new KustomizeError(`${where}: needs path or patch`);
  }
  const docs = parseAllDocuments(text);
  if (docs.length !== 1 || (docs[0]?.errors.length ?? 0) > 0) {
    throw new KustomizeError(`${where}: a patch must be exactly one YAML document`);
  }
  const patch: unknown = docs[0]!.toJS();
  const matched = objects.filter((o) => matchesTarget(o, entry.target!));
  if (matched.length === 0) {
    throw new KustomizeError(`${where}: target ${JSON.stringify(entry.target)} matches nothing`);
  }
  return objects.map((o) => {
    if (!matched.includes(o)) return o;
    if (Array.isArray(patch)) return jsonPatch(o, patch, where);
    if (!isRecord(patch)) throw new KustomizeError(`${where}: patch is neither a map nor a list`);
    const builtin = BUILTIN_GROUPS.has(groupOf(o.apiVersion).group);
    const { metadata: patchMeta, ...rest } = patch;
    // the patch's own apiVersion/kind/name only identify it; the target decides what it hits
    const body: Record<string, unknown> = { ...rest };
    delete body['apiVersion'];
    delete body['kind'];
    if (isRecord(patchMeta)) {
      const { name: _name, namespace: _ns, ...metaRest } = patchMeta;
      if (Object.keys(metaRest).length > 0) body['metadata'] = metaRest;
    }
    const merged = strategicMerge(o, body, [], builtin, o.kind, where);
    return asObject(merged, where);
  });
}

function matchesTarget(o: KubeObject, t: Target): boolean {
  const { group, version } = groupOf(o.apiVersion);
  const anchored = (pattern: string, value: string): boolean =>
    new RegExp(`^(?:${pattern})$`).test(value);
  if (t.group !== undefined && t.group !== group) return false;
  if (t.version !== undefined && t.version !== version) return false;
  if (t.kind !== undefined && t.kind !== o.kind) return false;
  if (t.name !== undefined && !anchored(t.name, o.metadata.name)) return false;
  if (t.namespace !== undefined && !anchored(t.namespace, o.metadata.namespace ?? '')) return false;
  if (t.labelSelector !== undefined) {
    for (const term of t.labelSelector.split(',').map((s) => s.trim())) {
      const m = /^([^=!]+)=(.*)$/.exec(term);
      if (!m) throw new KustomizeError(`labelSelector term "${term}": only key=value is supported`);
      if (o.metadata.labels?.[m[1]!.trim()] !== m[2]!.trim()) return false;
    }
  }
  return true;
}

/** Merge key of a list in a built-in kind, by field name (and, for ports, the owner). */
function mergeKey(path: readonly string[], kind: string): string | undefined {
  const field = path[path.length - 1];
  switch (field) {
    case 'containers':
    case 'initContainers':
    case 'ephemeralContainers':
    case 'env':
    case 'volumes':
    case 'imagePullSecrets':
      return 'name';
    case 'volumeMounts':
      return 'mountPath';
    case 'volumeDevices':
      return 'devicePath';
    case 'hostAliases':
      return 'ip';
    case 'topologySpreadConstraints':
      return 'topologyKey';
    case 'ports':
      return kind === 'Service' && path.length === 2 ? 'port' : 'containerPort';
    default:
      return undefined;
  }
}

/** Lists that a strategic merge would union instead of replace: not supported here. */
const UNION_LISTS = new Set(['finalizers']);

export function strategicMerge(
  base: unknown,
  patch: unknown,
  path: string[],
  builtin: boolean,
  kind: string,
  where: string,
): unknown {
  const at = path.length > 0 ? path.join('.') : '(root)';
  if (isRecord(patch)) {
    for (const key of Object.keys(patch)) {
      if (key.startsWith('$')) {
        throw new KustomizeError(`${where}: directive ${key} at ${at} is not supported`);
      }
    }
    const out: Record<string, unknown> = isRecord(base) ? { ...base } : {};
    for (const [key, value] of Object.entries(patch)) {
      if (value === null) delete out[key];
      else out[key] = strategicMerge(out[key], value, [...path, key], builtin, kind, where);
    }
    return out;
  }
  if (Array.isArray(patch)) {
    const field = path[path.length - 1] ?? '';
    if (UNION_LISTS.has(field)) {
      throw new KustomizeError(`${where}: patching ${at} (a merged list) is not supported`);
    }
    if (!Array.isArray(base)) return structuredClone(patch);
    if (!builtin) {
      throw new KustomizeError(
        `${where}: ${at} is a list inside a custom resource; use a JSON 6902 patch for it`,
      );
    }
    const key = mergeKey(path, kind);
    if (key === undefined) return structuredClone(patch);
    const out: unknown[] = base.map((item) => structuredClone(item));
    for (const item of patch) {
      if (!isRecord(item) || item[key] === undefined) {
        throw new KustomizeError(`${where}: every item of ${at} needs its merge key "${key}"`);
      }
      const index = out.findIndex((b) => isRecord(b) && b[key] === item[key]);
      if (index < 0) out.push(structuredClone(item));
      else out[index] = strategicMerge(out[index], item, [...path, '[]'], builtin, kind, where);
    }
    return out;
  }
  return patch;
}

function decodePointer(pointer: string, where: string): string[] {
  if (!pointer.startsWith('/')) throw new KustomizeError(`${where}: bad JSON pointer ${pointer}`);
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** RFC 6902 add / replace / remove / test on a copy of `o`. */
export function jsonPatch(o: KubeObject, ops: unknown[], where: string): KubeObject {
  const doc = structuredClone(o) as unknown as Record<string, unknown>;
  for (const [i, raw] of ops.entries()) {
    const w = `${where} op ${i}`;
    if (!isRecord(raw) || typeof raw['op'] !== 'string' || typeof raw['path'] !== 'string') {
      throw new KustomizeError(`${w}: needs op and path`);
    }
    const op = raw['op'];
    const parts = decodePointer(raw['path'], w);
    const last = parts.pop()!;
    let parent: unknown = doc;
    for (const part of parts) {
      parent = Array.isArray(parent)
        ? parent[Number(part)]
        : isRecord(parent)
          ? parent[part]
          : undefined;
      if (parent === undefined) throw new KustomizeError(`${w}: ${raw['path']} does not exist`);
    }
    const exists = Array.isArray(parent)
      ? last === '-' || (Number(last) >= 0 && Number(last) < parent.length)
      : isRecord(parent) && last in parent;
    switch (op) {
      case 'add': {
        if (Array.isArray(parent)) {
          const index = last === '-' ? parent.length : Number(last);
          if (!Number.isInteger(index) || index < 0 || index > parent.length) {
            throw new KustomizeError(`${w}: index ${last} out of range`);
          }
          parent.splice(index, 0, structuredClone(raw['value']));
        } else if (isRecord(parent)) {
          parent[last] = structuredClone(raw['value']);
        } else {
          throw new KustomizeError(`${w}: cannot add below a scalar`);
        }
        break;
      }
      case 'replace':
      case 'remove':
      case 'test': {
        if (!exists || last === '-') {
          throw new KustomizeError(`${w}: ${raw['path']} does not exist`);
        }
        if (op === 'test') {
          const current = Array.isArray(parent)
            ? parent[Number(last)]
            : (parent as Record<string, unknown>)[last];
          if (JSON.stringify(current) !== JSON.stringify(raw['value'])) {
            throw new KustomizeError(`${w}: test of ${raw['path']} failed`);
          }
        } else if (Array.isArray(parent)) {
          if (op === 'remove') parent.splice(Number(last), 1);
          else parent[Number(last)] = structuredClone(raw['value']);
        } else if (op === 'remove') {
          delete (parent as Record<string, unknown>)[last];
        } else {
          (parent as Record<string, unknown>)[last] = structuredClone(raw['value']);
        }
        break;
      }
      default:
        throw new KustomizeError(`${w}: op ${op} is not supported`);
    }
  }
  return asObject(doc, where);
}

/** Splits "registry:5000/repo/name:tag@sha256:..." into name, tag and digest. */
export function parseImage(image: string): { name: string; tag?: string; digest?: string } {
  let rest = image;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const colon = rest.lastIndexOf(':');
  const tag = colon > rest.lastIndexOf('/') ? rest.slice(colon + 1) : undefined;
  const name = tag === undefined ? rest : rest.slice(0, colon);
  return {
    name,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** Pod templates of the workload kinds (and bare Pods). */
export function podSpecsOf(o: KubeObject): Record<string, unknown>[] {
  const get = (v: unknown, ...keys: string[]): unknown =>
    keys.reduce<unknown>((cur, k) => (isRecord(cur) ? cur[k] : undefined), v);
  const spec =
    o.kind === 'Pod'
      ? o['spec']
      : o.kind === 'CronJob'
        ? get(o, 'spec', 'jobTemplate', 'spec', 'template', 'spec')
        : get(o, 'spec', 'template', 'spec');
  return isRecord(spec) ? [spec] : [];
}

function applyImageRule(objects: KubeObject[], rule: ImageRule): void {
  for (const o of objects) {
    for (const spec of podSpecsOf(o)) {
      for (const field of ['initContainers', 'containers']) {
        const containers = spec[field];
        if (!Array.isArray(containers)) continue;
        for (const c of containers) {
          if (!isRecord(c) || typeof c['image'] !== 'string') continue;
          const img = parseImage(c['image']);
          if (img.name !== rule.name) continue;
          const name = rule.newName ?? img.name;
          const digest = rule.digest ?? (rule.newTag === undefined ? img.digest : undefined);
          const tag = rule.digest !== undefined ? undefined : (rule.newTag ?? img.tag);
          c['image'] =
            `${name}${tag !== undefined ? `:${tag}` : ''}${digest !== undefined ? `@${digest}` : ''}`;
        }
      }
    }
  }
}

const ORDER_FIRST = [
  'Namespace',
  'ResourceQuota',
  'StorageClass',
  'CustomResourceDefinition',
  'ServiceAccount',
  'PodSecurityPolicy',
  'Role',
  'ClusterRole',
  'RoleBinding',
  'ClusterRoleBinding',
  'ConfigMap',
  'Secret',
  'Endpoints',
  'Service',
  'LimitRange',
  'PriorityClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'Deployment',
  'StatefulSet',
  'CronJob',
  'PodDisruptionBudget',
];
const ORDER_LAST = ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration'];

function rank(kind: string): number {
  const first = ORDER_FIRST.indexOf(kind);
  if (first >= 0) return first;
  const last = ORDER_LAST.indexOf(kind);
  return last >= 0 ? ORDER_FIRST.length + 1 + last : ORDER_FIRST.length;
}

const byteOrder = (x: string, y: string): number => (x < y ? -1 : x > y ? 1 : 0);

/** group_version_kind as kustomize compares it ("~G" for the core group). */
function gvkKey(o: KubeObject): string {
  const { group, version } = groupOf(o.apiVersion);
  return `${group || '~G'}_${version}_${o.kind}`;
}

/** Objects in kustomize's legacy order (by kind rank, then group_version_kind, then name). */
export function sortObjects(objects: readonly KubeObject[]): KubeObject[] {
  return [...objects].sort(
    (a, b) =>
      rank(a.kind) - rank(b.kind) ||
      byteOrder(gvkKey(a), gvkKey(b)) ||
      byteOrder(a.metadata.namespace ?? '', b.metadata.namespace ?? '') ||
      byteOrder(a.metadata.name, b.metadata.name),
  );
}

/** Multi-document YAML of the objects, in kustomize's legacy order. */
export function toYaml(objects: readonly KubeObject[]): string {
  return sortObjects(objects)
    .map((o) => stringify(o, { lineWidth: 0 }))
    .join('---\n');
}
