/**
 * @metaprune/deploy — renders the kustomize overlays under deploy/ without a kustomize
 * binary and checks the result offline: Kubernetes and KEDA schemas, security and
 * reliability policies, and agreement with the services' own configuration and NATS names.
 */
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type KubeObject, renderKustomization } from './kustomize.js';
import {
  checkDisruptionBudgets,
  checkNamespaceAndLabels,
  checkNetworkPolicies,
  checkScaledObjects,
  checkServices,
  checkWorkloads,
} from './policy.js';
import { validateSchemas } from './schemas.js';
import { checkNatsNames, checkServiceConfigs } from './services.js';

export {
  checkDockerfile,
  checkDockerignore,
  type Dockerfile,
  type DockerTarget,
  dockerTargets,
  effective,
  effectiveEnv,
  type Instruction,
  parseDockerfile,
  type Stage,
  stageChain,
} from './dockerfile.js';
export {
  groupOf,
  jsonPatch,
  type KubeObject,
  KustomizeError,
  objectId,
  parseImage,
  podSpecsOf,
  renderKustomization,
  sortObjects,
  strategicMerge,
  toYaml,
} from './kustomize.js';
export {
  checkDisruptionBudgets,
  checkNamespaceAndLabels,
  checkNetworkPolicies,
  checkScaledObjects,
  checkServices,
  checkWorkloads,
  find,
  ingressAllowed,
  namespaceOf,
  PART_OF,
  type PolicyOptions,
  parseQuantity,
  scaledObjectFor,
  selectorMatches,
  WORKLOAD_KINDS,
  type Workload,
  workloads,
} from './policy.js';
export {
  describe,
  MODELS,
  validateSchemas,
} from './schemas.js';
export {
  checkNatsNames,
  checkServiceConfigs,
  containerEnv,
  type EnvEntry,
  loadServiceConfig,
  resolveAddress,
  SERVICES,
  type ServiceSpec,
} from './services.js';

/** deploy/ (this package's directory), from src/ or dist/. */
export const DEPLOY_DIR = join(dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = join(DEPLOY_DIR, '..');

/**
 * Secrets the operator creates (docs/deploy.md shows how); overlays reference them without
 * shipping them. The local overlay ships development values instead.
 */
export const EXTERNAL_SECRETS = Object.freeze([
  'metaprune-nats-auth',
  'metaprune-tokens',
  'metaprune-tls',
]);

/** The overlays: every directory under deploy/overlays. */
export function overlayDirs(deployDir: string = DEPLOY_DIR): string[] {
  const dir = join(deployDir, 'overlays');
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((path) => statSync(path).isDirectory())
    .sort();
}

/** Every check on a rendered overlay; empty when it may be applied. */
export function checkRendered(objects: readonly KubeObject[]): string[] {
  return [
    ...validateSchemas(objects),
    ...checkNamespaceAndLabels(objects),
    ...checkWorkloads(objects, { externalSecrets: EXTERNAL_SECRETS }),
    ...checkServices(objects),
    ...checkNetworkPolicies(objects),
    ...checkDisruptionBudgets(objects),
    ...checkScaledObjects(objects),
    ...checkServiceConfigs(objects),
    ...checkNatsNames(objects),
  ];
}

/** Renders and checks one overlay directory. */
export function checkOverlay(dir: string): { objects: KubeObject[]; problems: string[] } {
  const objects = renderKustomization(dir);
  return { objects, problems: checkRendered(objects) };
}
