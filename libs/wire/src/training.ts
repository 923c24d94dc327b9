/**
 * Training jobs as other processes see them: the subject of a job's progress events and
 * which states are final.
 */
import { weightgen } from '@metaprune/proto';
import { NATS_NAMES } from './names.js';

const TrainingState = weightgen.TrainingState;

export function isTerminal(state: weightgen.TrainingState): boolean {
  return (
    state === TrainingState.SUCCEEDED ||
    state === TrainingState.FAILED ||
    state === TrainingState.CANCELLED
  );
}

/** Core-NATS subject of a training job's progress events (WatchTrainingResponse). */
export function trainingSubject(jobId: string): string {
  return `${NATS_NAMES.eventsSubjectPrefix}.training.${jobId}`;
}
