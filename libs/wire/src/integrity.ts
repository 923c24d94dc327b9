/**
 * Evaluations as a trust boundary. Whoever can publish on NATS could post jobs or answer
 * them; NATS permissions (deploy/nats, `metaprune up`) keep strangers out, and these checks
 * keep a forged or garbled message from counting even so:
 *
 * - a job's id must be the digest of its own content (PruningNet id + version, network,
 *   encoding, settings, data): the evaluator refuses a job whose id does not match, so a
 *   forged job cannot poison the memo entry of another candidate;
 * - a result counts only when its job id, encoding and PruningNet id/version are those of
 *   the job the controller published, and a successful top-1 is a finite number in [0, 1].
 */
import { evaluation } from '@metaprune/proto';
import { evaluationJobId, resolveDataSplit, resolveEvaluationSettings } from './evaluation.js';
import { networkFromProto } from './spec.js';

/** The id a job's content implies, or undefined when the content is not a valid job. */
export function contentJobId(job: evaluation.EvaluationJob): string | undefined {
  try {
    return evaluationJobId({
      pruningnetId: job.pruningnetId,
      pruningnetVersion: job.pruningnetVersion,
      network: networkFromProto(job.network),
      encoding: job.encoding?.genes ?? [],
      settings: resolveEvaluationSettings(job.settings),
      data: resolveDataSplit(job.data),
    });
  } catch {
    return undefined;
  }
}

/** Why a job's id cannot be trusted, or undefined. */
export function jobProblem(job: evaluation.EvaluationJob): string | undefined {
  const id = contentJobId(job);
  if (id === undefined) return 'the job does not describe a valid network';
  if (id !== job.jobId) return `job id ${job.jobId} is not the digest of its content (${id})`;
  return undefined;
}

/** What a result must match: the job as it was published. */
export interface ExpectedResult {
  jobId: string;
  pruningnetId: string;
  pruningnetVersion: number;
  genes: readonly number[];
}

/** Whether a top-1 value can be an accuracy. */
export function isAccuracy(x: unknown): x is number {
  return typeof x === 'number' && Number.isFinite(x) && x >= 0 && x <= 1;
}

/** Why a result must not count for `expected`, or undefined when it may. */
export function resultProblem(
  r: evaluation.EvaluationResult,
  expected: ExpectedResult,
): string | undefined {
  if (r.jobId !== expected.jobId) return `job id ${r.jobId} is not ${expected.jobId}`;
  if (
    r.pruningnetId !== expected.pruningnetId ||
    r.pruningnetVersion !== expected.pruningnetVersion
  ) {
    return `PruningNet ${r.pruningnetId} v${r.pruningnetVersion} is not the job's ${expected.pruningnetId} v${expected.pruningnetVersion}`;
  }
  const genes = r.encoding?.genes ?? [];
  if (genes.length !== expected.genes.length || genes.some((g, i) => g !== expected.genes[i])) {
    return "its encoding is not the job's";
  }
  if (r.status === evaluation.EvaluationStatus.SUCCEEDED && !isAccuracy(r.top1)) {
    return `top1 ${r.top1} is not a finite number in [0, 1]`;
  }
  return undefined;
}

/** The expectation for a job message (what the evaluator checks a stored result against). */
export function expectedOf(job: evaluation.EvaluationJob): ExpectedResult {
  return {
    jobId: job.jobId,
    pruningnetId: job.pruningnetId,
    pruningnetVersion: job.pruningnetVersion,
    genes: job.encoding?.genes ?? [],
  };
}

/**
 * Nats-Msg-Id of a result: the job id, and for a republished job (attempt > 1) the
 * attempt too, so a refused result stored under the job id cannot deduplicate away the
 * genuine answer to the republished job.
 */
export function resultMsgId(jobId: string, attempt: number): string {
  return attempt > 1 ? `${jobId}.r${attempt}` : jobId;
}
