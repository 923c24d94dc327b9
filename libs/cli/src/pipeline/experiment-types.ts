/**
 * What `metaprune experiment` measures (results.json): per network the PruningNet, the
 * search and the comparison rows; the latency budget; the ablation without weight
 * prediction; the proxy-fidelity study. report.ts renders it.
 */
import type { Network } from '@metaprune/core';
import type { ExperimentConfig } from './experiment-config.js';
import type { GenerationPoint } from './search.js';

export interface ModelRef {
  encoding: number[];
  channels: number[];
  macs: number;
  params: number;
  /** PruningNet-proxy top-1 (sub-val); NaN when not measured. */
  proxyTop1: number;
  /** Retrained test top-1. */
  testTop1: number;
  /** model.json directory, relative to the output directory. */
  exported: string;
  latencyMs?: number;
}

export interface ResultRow {
  network: string;
  budget: string;
  kind: 'macs' | 'latency';
  /** MACs bound (kind macs) or milliseconds (kind latency). */
  bound: number;
  searched: ModelRef;
  uniform: ModelRef & { scale: number };
  delta: number;
}

export interface PruningNetInfo {
  id: string;
  version: number;
  seconds: number;
  loss: number;
  validationAccuracy: number | null;
  noWeightPrediction: boolean;
}

export interface SearchInfo {
  id: string;
  budgets: string[];
  evaluated: number;
  seconds: number;
  history: GenerationPoint[];
}

export interface NetworkResult {
  key: string;
  tag: string;
  spec: Network['spec'];
  genes: { name: string; kind: string; max: number }[];
  fullMacs: number;
  fullParams: number;
  pruningnet: PruningNetInfo;
  search: SearchInfo;
  rows: ResultRow[];
}

export interface AblationResult {
  network: string;
  pruningnet: PruningNetInfo;
  search: SearchInfo;
  rows: {
    budget: string;
    bound: number;
    metapruning: ModelRef;
    ablation: ModelRef;
    uniform: ModelRef;
  }[];
}

export interface FidelityPoint {
  source: string;
  encoding: number[];
  macs: number;
  params: number;
  proxyTop1: number;
  proxyTop1Ablation: number | null;
  testTop1: number;
  exported: string;
}

export interface FidelityResult {
  network: string;
  points: FidelityPoint[];
  tau: number;
  tauAblation: number | null;
}

/** One network of the seed study retrained with one seed. */
export interface SeedRun {
  seed: number;
  testTop1: number;
  exported: string;
}

/** Retraining-seed variance of one comparison row (its winner and uniform baseline). */
export interface SeedStudyResult {
  network: string;
  budget: string;
  metapruning: SeedRun[];
  uniform: SeedRun[];
  /** Pooled sample standard deviation of test top-1 over seeds (both networks). */
  sd: number;
}

export interface LatencyResult {
  available: boolean;
  reason?: string;
  device?: string;
  deviceId?: string;
  boundMs?: number;
  profileSeconds?: number;
  profile?: Record<string, unknown>;
}

export interface ExperimentResults {
  format: 'metaprune-experiment/1';
  command: string;
  quick: boolean;
  startedAt: string;
  finishedAt: string;
  wallSeconds: number;
  phases: Record<string, number>;
  machine: Record<string, unknown>;
  config: ExperimentConfig;
  networks: NetworkResult[];
  latency: LatencyResult;
  ablation: AblationResult | null;
  fidelity: FidelityResult | null;
  /** Absent in results written before the seed study existed. */
  seedStudy?: SeedStudyResult | null;
}
