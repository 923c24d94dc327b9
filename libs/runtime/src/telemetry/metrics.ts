/**
 * The platform's metric instruments, created in one place so every service names and shapes
 * them the same way. With no meter provider registered they are the API's no-ops.
 */

import type { JetStreamManager } from '@nats-io/jetstream';
import {
  type Attributes,
  type BatchObservableCallback,
  type Counter,
  type Gauge,
  type Histogram,
  type Meter,
  metrics,
  type ObservableGauge,
} from '@opentelemetry/api';
import { TELEMETRY_SCOPE } from './init.js';

export const METRIC_NAMES = Object.freeze({
  evaluationsTotal: 'evaluations_total',
  evaluationDurationMs: 'evaluation_duration_ms',
  queueLag: 'queue_lag',
  queueInFlight: 'queue_in_flight',
  trainingLoss: 'training_loss',
  trainingAccuracy: 'training_accuracy',
  searchGeneration: 'search_generation',
  searchEvaluated: 'search_evaluated',
});

/** Bucket bounds of evaluation_duration_ms: 10 ms … 10 min. */
export const EVALUATION_DURATION_BUCKETS_MS = [
  10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
];

export type EvaluationOutcome = 'ok' | 'failed' | 'cached' | 'cancelled';

export interface QueueLagSample {
  /** Messages waiting to be delivered. */
  pending: number;
  /** Messages delivered and not yet acknowledged. */
  inFlight?: number;
  attributes?: Attributes;
}

export type QueueLagSource = () =>
  | QueueLagSample
  | QueueLagSample[]
  | Promise<QueueLagSample | QueueLagSample[]>;

export interface MetapruneMetrics {
  /** Evaluations finished; attribute `metaprune.outcome` (ok | failed | cached | cancelled). */
  readonly evaluationsTotal: Counter;
  /** Wall time of one evaluation (BN recalibration + validation), ms. */
  readonly evaluationDurationMs: Histogram;
  /** Work-queue backlog (observed through `observeQueueLag`). */
  readonly queueLag: ObservableGauge;
  /** Work-queue messages delivered but not acknowledged yet. */
  readonly queueInFlight: ObservableGauge;
  /** Last training loss; attributes `metaprune.job.id`, `phase` (train | val). */
  readonly trainingLoss: Gauge;
  /** Last training accuracy in [0, 1]; same attributes as training_loss. */
  readonly trainingAccuracy: Gauge;
  /** Current generation of a search; attribute `metaprune.search.id`. */
  readonly searchGeneration: Gauge;
  /** Candidates evaluated so far in a search; attribute `metaprune.search.id`. */
  readonly searchEvaluated: Gauge;
  /** Counts one evaluation and records its duration. */
  recordEvaluation(durationMs: number, outcome: EvaluationOutcome, attributes?: Attributes): void;
  /**
   * Reports queue_lag / queue_in_flight from `source` at each collection; returns a function
   * that stops it. Errors from the source skip that observation.
   */
  observeQueueLag(source: QueueLagSource): () => void;
}

/** Creates the platform's instruments on `meter` (default: the global meter). */
export function createMetrics(meter: Meter = metrics.getMeter(TELEMETRY_SCOPE)): MetapruneMetrics {
  const evaluationsTotal = meter.createCounter(METRIC_NAMES.evaluationsTotal, {
    description: 'Evaluations of candidate networks finished, by outcome',
    unit: '{evaluation}',
  });
  const evaluationDurationMs = meter.createHistogram(METRIC_NAMES.evaluationDurationMs, {
    description: 'Wall time of one candidate evaluation (BN recalibration and validation)',
    unit: 'ms',
    advice: { explicitBucketBoundaries: EVALUATION_DURATION_BUCKETS_MS },
  });
  const queueLag = meter.createObservableGauge(METRIC_NAMES.queueLag, {
    description: 'Evaluation jobs waiting in the work queue (not yet delivered)',
    unit: '{message}',
  });
  const queueInFlight = meter.createObservableGauge(METRIC_NAMES.queueInFlight, {
    description: 'Evaluation jobs delivered to an evaluator and not yet acknowledged',
    unit: '{message}',
  });
  const trainingLoss = meter.createGauge(METRIC_NAMES.trainingLoss, {
    description: 'Most recent PruningNet training loss',
    unit: '1',
  });
  const trainingAccuracy = meter.createGauge(METRIC_NAMES.trainingAccuracy, {
    description: 'Most recent PruningNet training accuracy (0..1)',
    unit: '1',
  });
  const searchGeneration = meter.createGauge(METRIC_NAMES.searchGeneration, {
    description: 'Current generation of an evolutionary search',
    unit: '{generation}',
  });
  const searchEvaluated = meter.createGauge(METRIC_NAMES.searchEvaluated, {
    description: 'Candidates evaluated so far in a search',
    unit: '{candidate}',
  });

  return {
    evaluationsTotal,
    evaluationDurationMs,
    queueLag,
    queueInFlight,
    trainingLoss,
    trainingAccuracy,
    searchGeneration,
    searchEvaluated,
    recordEvaluation(durationMs, outcome, attributes = {}) {
      const attrs = { ...attributes, 'metaprune.outcome': outcome };
      evaluationsTotal.add(1, attrs);
      if (Number.isFinite(durationMs) && durationMs >= 0) {
        evaluationDurationMs.record(durationMs, attrs);
      }
    },
    observeQueueLag(source) {
      // One batch callback feeds both gauges from one source call.
      const batch: BatchObservableCallback = async (result) => {
        let samples: QueueLagSample | QueueLagSample[];
        try {
          samples = await source();
        } catch {
          return;
        }
        for (const s of Array.isArray(samples) ? samples : [samples]) {
          result.observe(queueLag, s.pending, s.attributes);
          if (s.inFlight !== undefined) result.observe(queueInFlight, s.inFlight, s.attributes);
        }
      };
      meter.addBatchObservableCallback(batch, [queueLag, queueInFlight]);
      return () => meter.removeBatchObservableCallback(batch, [queueLag, queueInFlight]);
    },
  };
}

/**
 * A queue-lag source reading a JetStream consumer: pending = num_pending, in flight =
 * num_ack_pending, with the stream and consumer as attributes.
 */
export function jetStreamQueueLag(
  jsm: JetStreamManager,
  stream: string,
  consumer: string,
): QueueLagSource {
  return async () => {
    const info = await jsm.consumers.info(stream, consumer);
    return {
      pending: info.num_pending,
      inFlight: info.num_ack_pending,
      attributes: { 'messaging.nats.stream': stream, 'messaging.consumer.group.name': consumer },
    };
  };
}
