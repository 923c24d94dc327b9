import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  type KubeObject,
  KustomizeError,
  parseImage,
  renderKustomization,
  sortObjects,
  toYaml,
} from '../src/kustomize.js';

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs = [];
});

/** Writes files (path → content) into a fresh temp dir and returns it. */
function tree(files: Record<string, string>): string {
  const root = mkdtempSync(join(tmpdir(), 'metaprune-kustomize-'));
  dirs.push(root);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

const deployment = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  labels: {app: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      tolerations: [{key: a, operator: Exists}]
      containers:
        - name: app
          image: registry.local:5000/team/web:1.0
          args: [--one, --two]
          env:
            - {name: A, value: "1"}
            - {name: B, value: "2"}
          ports: [{name: http, containerPort: 8080}]
          resources: {requests: {cpu: 100m, memory: 64Mi}}
        - name: sidecar
          image: busybox:1.36
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Namespace
metadata: {name: shop}
`;

const scaled = `apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: web}
spec:
  scaleTargetRef: {name: web}
  maxReplicaCount: 5
  triggers:
    - type: nats-jetstream
      metadata: {stream: S, consumer: C, lagThreshold: "4"}
`;

function byKind(objects: KubeObject[], kind: string): Record<string, unknown> {
  const o = objects.find((x) => x.kind === kind);
  if (!o) throw new Error(`no ${kind}`);
  return o as unknown as Record<string, unknown>;
}

describe('renderKustomization', () => {
  it('includes bases, sets the namespace on namespaced objects and orders like kustomize', () => {
    const root = tree({
      'base/kustomization.yaml': 'namespace: shop\nresources: [app.yaml]\n',
      'base/app.yaml': deployment,
      'overlay/kustomization.yaml': 'namespace: shop\nresources: [../base, extra.yaml]\n',
      'overlay/extra.yaml':
        'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: extra}\ndata: {k: v}\n',
    });
    const objects = renderKustomization(join(root, 'overlay'));
    expect(objects.map((o) => `${o.kind}/${o.metadata.namespace ?? '-'}`).sort()).toEqual([
      'ConfigMap/shop',
      'Deployment/shop',
      'Namespace/-',
      'Service/shop',
    ]);
    const docs = parseAllDocuments(toYaml(objects)).map((d) => d.toJS() as KubeObject);
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'ConfigMap', 'Service', 'Deployment']);
  });

  it('orders kinds kustomize does not rank by group_version_kind, after the ranked ones', () => {
    const root = tree({
      'kustomization.yaml': 'resources: [a.yaml]\n',
      'a.yaml': `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: a}
---
${scaled}---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: b}
---
apiVersion: v1
kind: ServiceAccount
metadata: {name: c}
`,
    });
    expect(sortObjects(renderKustomization(root)).map((o) => o.kind)).toEqual([
      'ServiceAccount',
      'PodDisruptionBudget',
      'ScaledObject',
      'NetworkPolicy',
    ]);
  });

  it('strategic merge: maps merge, merge-keyed lists merge by key, other lists are replaced, null deletes', () => {
    const root = tree({
      'kustomization.yaml': `resources: [app.yaml]
patches:
  - path: patch.yaml
    target: {kind: Deployment, name: web}
`,
      'app.yaml': deployment,
      'patch.yaml': `apiVersion: apps/v1
kind: Deployment
metadata: {name: whatever, labels: {tier: front}}
spec:
  replicas: null
  template:
    spec:
      tolerations: [{key: b, operator: Exists}]
      containers:
        - name: app
          args: [--three]
          env:
            - {name: B, value: "20"}
            - {name: C, value: "3"}
          resources: {limits: {cpu: "1"}}
        - name: extra
          image: extra:2
`,
    });
    const d = byKind(renderKustomization(root), 'Deployment') as {
      metadata: { name: string; labels: Record<string, string> };
      spec: {
        replicas?: number;
        template: {
          spec: {
            tolerations: unknown[];
            containers: {
              name: string;
              args?: string[];
              env?: { name: string; value: string }[];
              resources?: unknown;
            }[];
          };
        };
      };
    };
    expect(d.metadata.name).toBe('web');
    expect(d.metadata.labels).toEqual({ app: 'web', tier: 'front' });
    expect(d.spec.replicas).toBeUndefined();
    expect(d.spec.template.spec.tolerations).toEqual([{ key: 'b', operator: 'Exists' }]);
    const [app, sidecar, extra] = d.spec.template.spec.containers;
    expect(app?.args).toEqual(['--three']);
    expect(app?.env).toEqual([
      { name: 'A', value: '1' },
      { name: 'B', value: '20' },
      { name: 'C', value: '3' },
    ]);
    expect(app?.resources).toEqual({
      requests: { cpu: '100m', memory: '64Mi' },
      limits: { cpu: '1' },
    });
    expect(sidecar?.name).toBe('sidecar');
    expect(extra?.name).toBe('extra');
  });

  it('JSON 6902 patches edit custom resources; strategic merge of their lists is refused', () => {
    const ok = tree({
      'kustomization.yaml': `resources: [so.yaml]
patches:
  - path: ops.yaml
    target: {group: keda.sh, version: v1alpha1, kind: ScaledObject, name: web}
  - patch: '{"spec": {"maxReplicaCount": 9}}'
    target: {kind: ScaledObject}
`,
      'so.yaml': scaled,
      'ops.yaml': `- {op: test, path: /spec/triggers/0/type, value: nats-jetstream}
- {op: replace, path: /spec/triggers/0/metadata/lagThreshold, value: "8"}
- {op: add, path: /spec/triggers/0/metadata/account, value: $G}
- {op: remove, path: /spec/triggers/0/metadata/consumer}
`,
    });
    const so = byKind(renderKustomization(ok), 'ScaledObject') as {
      spec: { maxReplicaCount: number; triggers: { metadata: Record<string, string> }[] };
    };
    expect(so.spec.maxReplicaCount).toBe(9);
    expect(so.spec.triggers[0]?.metadata).toEqual({
      stream: 'S',
      lagThreshold: '8',
      account: '$G',
    });

    const listMerge = tree({
      'kustomization.yaml':
        'resources: [so.yaml]\npatches:\n  - patch: \'{"spec": {"triggers": [{"type": "cpu"}]}}\'\n    target: {kind: ScaledObject}\n',
      'so.yaml': scaled,
    });
    expect(() => renderKustomization(listMerge)).toThrow(/custom resource; use a JSON 6902/);

    const failedTest = tree({
      'kustomization.yaml':
        'resources: [so.yaml]\npatches:\n  - patch: \'[{"op": "test", "path": "/spec/maxReplicaCount", "value": 1}]\'\n    target: {kind: ScaledObject}\n',
      'so.yaml': scaled,
    });
    expect(() => renderKustomization(failedTest)).toThrow(/test of \/spec\/maxReplicaCount failed/);
  });

  it('images: new name, tag or digest for matching containers only', () => {
    const root = tree({
      'kustomization.yaml': `resources: [app.yaml]
images:
  - name: registry.local:5000/team/web
    newName: ghcr.io/acme/web
    newTag: "2.0"
  - name: busybox
    digest: sha256:abc
`,
      'app.yaml': deployment,
    });
    const d = byKind(renderKustomization(root), 'Deployment') as {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    expect(d.spec.template.spec.containers.map((c) => c.image)).toEqual([
      'ghcr.io/acme/web:2.0',
      'busybox@sha256:abc',
    ]);
    expect(parseImage('registry.local:5000/team/web')).toEqual({
      name: 'registry.local:5000/team/web',
    });
    expect(parseImage('nats:2.10-alpine@sha256:ff')).toEqual({
      name: 'nats',
      tag: '2.10-alpine',
      digest: 'sha256:ff',
    });
  });

  it('refuses what it does not implement instead of rendering something else', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        {
          'kustomization.yaml': 'resources: [a.yaml]\ncommonLabels: {a: b}\n',
          'a.yaml': deployment,
        },
        /field "commonLabels" is not supported/,
      ],
      [
        {
          'kustomization.yaml': 'resources: [a.yaml]\npatches:\n  - path: p.yaml\n',
          'a.yaml': deployment,
          'p.yaml': 'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n',
        },
        /give a target/,
      ],
      [
        {
          'kustomization.yaml':
            'resources: [a.yaml]\npatches:\n  - patch: "{spec: {replicas: 1}}"\n    target: {kind: Deployment, name: nope}\n',
          'a.yaml': deployment,
        },
        /matches nothing/,
      ],
      [
        {
          'kustomization.yaml':
            'resources: [a.yaml]\npatches:\n  - patch: "{spec: {$patch: replace}}"\n    target: {kind: Deployment}\n',
          'a.yaml': deployment,
        },
        /directive \$patch/,
      ],
      [
        { 'kustomization.yaml': 'namespace: other\nresources: [a.yaml]\n', 'a.yaml': deployment },
        /renaming a Namespace/,
      ],
      [
        { 'kustomization.yaml': 'resources: [a.yaml, a.yaml]\n', 'a.yaml': deployment },
        /defined twice/,
      ],
      [{ 'kustomization.yaml': 'resources: [https://example.com/x]\n' }, /remote resource/],
      [
        { 'kustomization.yaml': 'resources: [a.yaml]\n', 'a.yaml': 'kind: Foo\n' },
        /not a Kubernetes object/,
      ],
    ];
    for (const [files, error] of cases) {
      const root = tree(files);
      expect(() => renderKustomization(root), String(error)).toThrow(error);
      expect(() => renderKustomization(root)).toThrow(KustomizeError);
    }
  });
});
