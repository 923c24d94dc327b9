import type { OptimConfig } from '../pruningnet/generator.js';

/** A serialisable optimiser description (worker threads rebuild `lrAt` from it). */
export interface LinearSchedule {
  /** Initial learning rate, decayed linearly to 0 at `totalSteps`. */
  lr: number;
  totalSteps: number;
  momentum: number;
  /** Linear warm-up from lr / warmupSteps over the first steps (default 0: none). */
  warmupSteps?: number;
  /** The classifier's learning rate relative to the generators' (default 1). */
  classifierLrScale?: number;
}

export function linearDecay(
  lr: number,
  totalSteps: number,
  warmupSteps = 0,
): (step: number) => number {
  return (s: number) =>
    lr * Math.max(0, 1 - s / totalSteps) * (s < warmupSteps ? (s + 1) / warmupSteps : 1);
}

export function linearOptim(s: LinearSchedule): OptimConfig & { schedule: LinearSchedule } {
  return {
    momentum: s.momentum,
    lrAt: linearDecay(s.lr, s.totalSteps, s.warmupSteps ?? 0),
    classifierLrScale: s.classifierLrScale ?? 1,
    schedule: { ...s },
  };
}
