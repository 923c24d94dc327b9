/**
 * The evaluation queue as JetStream shows it: queue depth, in-flight jobs and connected
 * evaluators from the evaluators' durable consumer, evaluations per second from the
 * results stream. These are the queue's streams (named in @metaprune/wire), not a
 * service's private state.
 */
import { JOBS_STREAM, NATS_NAMES, RESULTS_STREAM } from '@metaprune/wire';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { ConsoleStore } from '../store.js';

export async function pollQueue(jsm: JetStreamManager, store: ConsoleStore): Promise<void> {
  try {
    const [ci, si] = await Promise.all([
      jsm.consumers.info(JOBS_STREAM, NATS_NAMES.evaluatorsConsumer),
      jsm.streams.info(RESULTS_STREAM).catch(() => undefined),
    ]);
    const total = si?.state.last_seq ?? 0;
    store.resultsMeter.push(Date.now(), total);
    store.queue = {
      pending: ci.num_pending,
      inFlight: ci.num_ack_pending,
      evaluators: ci.num_waiting + ci.num_ack_pending,
      evaluationsPerSecond: 0,
      resultsTotal: total,
    };
  } catch {
    // no evaluator has created the queue yet
    store.queue = undefined;
  }
}
