/**
 * The production CandidateEvaluator, loaded by main.ts only (it loads tfjs): scores
 * candidates from the weights the weight generator streams (see tf-evaluator.ts).
 */
import type { Logger } from '@metaprune/runtime';
import { createTfEvaluator, type TfEvaluator } from './tf-evaluator.js';

export interface EngineEvaluatorOptions {
  backend: string;
  dataRoot: string;
  logger: Logger;
}

export function createEngineEvaluator(opts: EngineEvaluatorOptions): Promise<TfEvaluator> {
  return createTfEvaluator(opts);
}
