/**
 * Names shared by every service, the CLI and the deployment manifests. One place, so the
 * KEDA trigger, the evaluators and the controller can never disagree.
 */
export const NATS_NAMES = Object.freeze({
  /** Work-queue stream of evaluation jobs (one message per candidate, deduplicated by id). */
  jobsStream: 'METAPRUNE_EVAL_JOBS',
  jobsSubjectPrefix: 'metaprune.eval.jobs',
  /** Durable pull consumer shared by every evaluator replica. */
  evaluatorsConsumer: 'evaluators',
  /** Limits-retention stream of results, so a restarted controller can read them again. */
  resultsStream: 'METAPRUNE_EVAL_RESULTS',
  resultsSubjectPrefix: 'metaprune.eval.results',
  /** Progress events (training jobs, searches, evaluations) for watchers and the console. */
  eventsSubjectPrefix: 'metaprune.events',
  /** KV buckets. */
  searchesBucket: 'metaprune_searches',
  memoBucket: 'metaprune_eval_memo',
  /** Delivery attempts per evaluation job, counted by the evaluators (survive broker restarts). */
  attemptsBucket: 'metaprune_eval_attempts',
  trainingBucket: 'metaprune_training',
  devicesBucket: 'metaprune_devices',
});

export const DEFAULT_PORTS = Object.freeze({
  weightGenerator: 50051,
  controller: 50052,
  latencyProfiler: 50053,
  evaluatorHealth: 50054,
  console: 8080,
  nats: 4222,
});
