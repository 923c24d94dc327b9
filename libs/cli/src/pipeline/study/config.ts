/**
 * Configuration of `metaprune fidelity` (issue 16): one PruningNet run with snapshots at
 * several training lengths, searches with the longest one, >= 24 MACs-stratified
 * candidates scored by the proxy at every (snapshot x proxy size), and the candidates
 * retrained from scratch with a recipe (and twice its length on a subset, to show the
 * recipe ranks stably; and with more seeds for the MetaPruning-vs-uniform headline).
 */
import type { NetworkSpecInput } from '@metaprune/core';
import { FASHION_MNIST } from '../config.js';

/** One proxy setting: held-out images scored and BN recalibration batches. */
export interface ProxySize {
  name: string;
  valImages: number;
  recalBatches: number;
}

export interface StudyConfig {
  network: NetworkSpecInput & { family: string };
  pruningnet: {
    batchSize: number;
    /** Steps of one "chunk" (a checkpoint is written after each; 215 = a quarter epoch). */
    stepsPerChunk: number;
    /** Chunks of the whole run (the learning rate decays linearly to 0 over all of them). */
    chunks: number;
    /** Snapshots kept for scoring, after these chunks (the last must equal `chunks`). */
    snapshots: number[];
    seed: number;
  };
  proxies: ProxySize[];
  /** Images per proxy batch (BN recalibration and scoring). */
  proxyBatch: number;
  /** Searches with the last snapshot and this proxy. */
  search: { proxy: string; generations: number; population: number; seed: number };
  /**
   * The racing proxy, measured: the same search again, racing over these proxy sizes
   * (rising; the last is the search's proxy), finishing `k` candidates per budget and
   * generation; bounds of z standard errors. (The replay on the candidates races every size.)
   */
  race: { proxies: string[]; k: number; z: number };
  /** MACs budgets (fractions of the full network) searched, each with its uniform baseline. */
  budgetFractions: number[];
  /** Headline budgets (fractions): MetaPruning vs uniform, retrained with every seed. */
  headlineFractions: number[];
  /** At least this many candidates (MACs-stratified random ones fill up). */
  candidates: number;
  retrain: {
    /** The recipe: epochs over `images` training images (0 = all 60k). */
    epochs: number;
    images: number;
    batchSize: number;
    /** Test images (0 = all 10k). */
    testImages: number;
    /** Candidates also retrained with twice the epochs (rank stability of the recipe). */
    stabilityCount: number;
    /** Seeds of the headline networks (the first is every candidate's seed). */
    seeds: number[];
  };
  /** Processes at once (PruningNet workers, evaluator workers, retraining processes). */
  jobs: number;
  /**
   * Rough speeds of this machine when idle (for the plan): PruningNet training with both
   * cores (docs/benchmarks.md W1), proxy images per evaluator worker (W2: ~10.9
   * candidates/min of 3840 images on 2 workers), retraining images per process.
   */
  speeds: { trainImgPerSec: number; proxyImgPerSec: number; retrainImgPerSec: number };
}

export function studyConfig(quick = false): StudyConfig {
  if (quick) {
    return {
      network: { family: 'mobilenetv2', preset: 'small', width: 0.25, ...FASHION_MNIST },
      pruningnet: { batchSize: 32, stepsPerChunk: 3, chunks: 3, snapshots: [1, 3], seed: 1 },
      proxies: [
        { name: 'S', valImages: 32, recalBatches: 1 },
        { name: 'M', valImages: 64, recalBatches: 2 },
      ],
      proxyBatch: 32,
      search: { proxy: 'S', generations: 2, population: 4, seed: 1 },
      race: { proxies: ['S', 'M'], k: 1, z: 2 },
      budgetFractions: [0.25, 0.5],
      headlineFractions: [0.25, 0.5],
      candidates: 8,
      retrain: {
        epochs: 1,
        images: 64,
        batchSize: 32,
        testImages: 100,
        stabilityCount: 2,
        seeds: [1, 2],
      },
      jobs: 2,
      speeds: { trainImgPerSec: 150, proxyImgPerSec: 300, retrainImgPerSec: 65 },
    };
  }
  return {
    network: { family: 'mobilenetv2', preset: 'small', width: 0.5, ...FASHION_MNIST },
    // 55,000 sub-train images / 64 = 859 steps per epoch: chunks are quarter epochs, and the
    // snapshots 1 / 4 / 12 chunks are 0.25 / 1 / 3 epochs (the old default was 0.35 epoch).
    pruningnet: { batchSize: 64, stepsPerChunk: 215, chunks: 12, snapshots: [1, 4, 12], seed: 1 },
    // the old search proxy was 512 images and 4 BN batches of 64
    proxies: [
      { name: 'S', valImages: 256, recalBatches: 2 },
      { name: 'M', valImages: 1024, recalBatches: 8 },
      { name: 'L', valImages: 2048, recalBatches: 16 },
    ],
    proxyBatch: 64,
    // sized so that every stage needing the PruningNet fits one 2-3 hour session on a
    // shared 2-core machine (the PruningNet's checkpoints, ~0.5 GB, cannot be committed)
    search: { proxy: 'M', generations: 5, population: 12, seed: 1 },
    // ends at the search's proxy: the same search, racing to the same final scores
    race: { proxies: ['S', 'M'], k: 3, z: 2 },
    budgetFractions: [0.125, 0.25, 0.5],
    // 12.5 %: where the paper's gain is largest (issue 16 item 7)
    headlineFractions: [0.125, 0.25, 0.5],
    candidates: 26,
    retrain: {
      epochs: 1,
      images: 0,
      batchSize: 32,
      testImages: 0,
      stabilityCount: 8,
      seeds: [1, 2, 3],
    },
    jobs: 2,
    speeds: { trainImgPerSec: 150, proxyImgPerSec: 300, retrainImgPerSec: 65 },
  };
}
