/**
 * Validation of rendered objects against the Kubernetes OpenAPI schemas (kubernetes-models)
 * and KEDA's CRD schemas (@kubernetes-models/keda). A kind without a schema here is an
 * error, so nothing reaches a cluster unvalidated.
 */
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { PersistentVolumeClaim } from 'kubernetes-models/v1/PersistentVolumeClaim';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import type { KubeObject } from './kustomize.js';

type Model = new (data: never) => { validate(): void };

/** apiVersion/kind → model class whose validate() checks the object against its schema. */
export const MODELS: Readonly<Record<string, Model>> = Object.freeze({
  'v1/ConfigMap': ConfigMap,
  'v1/Namespace': Namespace,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'v1/ServiceAccount': ServiceAccount,
  'apps/v1/Deployment': Deployment,
  'apps/v1/StatefulSet': StatefulSet,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
});

export const describe = (o: KubeObject): string => `${o.kind}/${o.metadata.name}`;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/**
 * Schema errors of every object, plus the API server's name rules that the OpenAPI schemas
 * do not encode (object names, label values). Empty when all is valid.
 */
export function validateSchemas(objects: readonly KubeObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const model = MODELS[`${o.apiVersion}/${o.kind}`];
    if (!model) {
      problems.push(`${describe(o)}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new model(structuredClone(o) as never).validate();
    } catch (err) {
      problems.push(`${describe(o)}: ${err instanceof Error ? err.message : String(err)}`);
    }
    const name = o.metadata.name;
    const nameOk =
      o.kind === 'Namespace' || o.kind === 'Service'
        ? DNS_LABEL.test(name) && name.length <= 63
        : DNS_SUBDOMAIN.test(name) && name.length <= 253;
    if (!nameOk) problems.push(`${describe(o)}: invalid name "${name}"`);
    for (const [key, value] of Object.entries(o.metadata.labels ?? {})) {
      if (typeof value !== 'string' || !LABEL_VALUE.test(value) || value.length > 63) {
        problems.push(`${describe(o)}: label ${key} has an invalid value "${String(value)}"`);
      }
    }
  }
  return problems;
}
