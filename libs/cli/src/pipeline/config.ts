/**
 * Recipes of the end-to-end pipeline (train a PruningNet, search, retrain, compare) and the
 * presets of `metaprune demo` (about ten minutes on a 2-core machine) and its quick variant.
 */
import type { NetworkSpecInput } from '@metaprune/core';

/** PruningNet training on the weight generator (weightgen.v1 TrainingConfig). */
export interface TrainRecipe {
  epochs: number;
  batchSize: number;
  /** Cap on steps per epoch; 0 = the whole sub-train split. */
  stepsPerEpoch: number;
  /** 0 = the service default (0.4 * batch / 64). */
  learningRate: number;
  seed: number;
  /** Held-out sub-val images (candidates are scored on them, never on the test set). */
  validationImages: number;
}

/** Evolutionary search through the controller (controller.v1 StartSearchRequest). */
export interface SearchRecipe {
  generations: number;
  population: number;
  /** BN recalibration batches per candidate (DESIGN 1.5). */
  recalibrationBatches: number;
  batchSize: number;
  /** Sub-val images scored per candidate; 0 = the whole held-out split. */
  validationImages: number;
  seed: number;
  /**
   * Attempts to generate one candidate inside a budget (controller default 1000). Random
   * encodings rarely land in a narrow band far from the middle of the MACs range (about
   * 4e-5 of them for [64%, 75%] of MobileNetV2's MACs), so the pipeline allows many.
   */
  maxAttempts?: number;
}

/** Retraining of a pruned network from scratch (engine `retrainPlain`), then test top-1. */
export interface RetrainRecipe {
  epochs: number;
  batchSize: number;
  /** Images per epoch (the first N of each epoch's shuffled order); 0 = all 60k. */
  maxTrainImages: number;
  /** Peak learning rate; 0 = the engine default (0.05 * batch / 64). */
  lr: number;
  seed: number;
  /** Test images top-1 is measured on; 0 = the whole test set. */
  testImages: number;
}

export interface PipelineConfig {
  dataset: 'fashion-mnist';
  /** Target network (input channels and classes are fitted to the dataset). */
  network: NetworkSpecInput & { family: string };
  train: TrainRecipe;
  search: SearchRecipe;
  /** MACs budgets as fractions of the full network's MACs. */
  budgetFractions: number[];
  retrain: RetrainRecipe;
  /** Evaluator processes of the stack. */
  evaluators: number;
  /** Retraining processes run at once. */
  retrainConcurrency: number;
}

export const FASHION_MNIST = { inputChannels: 1, numClasses: 10, inputSize: 32 } as const;

/** `npm run demo`: MobileNetV2 (small preset, width 0.5), two budgets, ~10 minutes here. */
export function demoConfig(quick = false): PipelineConfig {
  if (quick) {
    return {
      dataset: 'fashion-mnist',
      network: { family: 'mobilenetv2', preset: 'small', width: 0.25, ...FASHION_MNIST },
      train: {
        epochs: 1,
        batchSize: 32,
        stepsPerEpoch: 6,
        learningRate: 0.1,
        seed: 1,
        validationImages: 500,
      },
      search: {
        generations: 2,
        population: 6,
        recalibrationBatches: 2,
        batchSize: 32,
        validationImages: 96,
        seed: 1,
      },
      budgetFractions: [0.4, 0.7],
      retrain: {
        epochs: 1,
        batchSize: 32,
        maxTrainImages: 256,
        lr: 0,
        seed: 1,
        testImages: 500,
      },
      evaluators: 2,
      retrainConcurrency: 2,
    };
  }
  return {
    dataset: 'fashion-mnist',
    network: { family: 'mobilenetv2', preset: 'small', width: 0.5, ...FASHION_MNIST },
    train: {
      epochs: 1,
      batchSize: 64,
      stepsPerEpoch: 120,
      learningRate: 0,
      seed: 1,
      validationImages: 5000,
    },
    search: {
      generations: 3,
      population: 8,
      recalibrationBatches: 4,
      batchSize: 64,
      validationImages: 512,
      seed: 1,
    },
    budgetFractions: [0.3, 0.6],
    // plain retraining runs at ~65-85 images/s per process here: a brief retrain (4
    // networks, two at a time, ~5 minutes), and top-1 on the first half of the test set
    retrain: {
      epochs: 1,
      batchSize: 32,
      maxTrainImages: 9600,
      lr: 0,
      seed: 1,
      testImages: 5000,
    },
    evaluators: 2,
    retrainConcurrency: 2,
  };
}
