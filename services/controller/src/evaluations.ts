/**
 * What the evaluation memo holds for encodings of a search (GetEvaluations): the console's
 * uniform baselines are read here, through the controller's API, never from its KV bucket.
 */
import { type Network, ValidationError, validateEncoding } from '@metaprune/core';
import { common, controller } from '@metaprune/proto';
import { InvalidArgumentError } from '@metaprune/runtime';
import { jobIdOf, type MemoStore, networkFromProto, type PoolContext } from '@metaprune/wire';
import type { SearchRecord } from './store.js';

/** At most this many encodings per GetEvaluations call. */
export const MAX_EVALUATIONS_PER_CALL = 1000;

/** The network and the evaluation context (job ids, memo keys) of a stored search. */
export function searchContextOf(rec: SearchRecord): { network: Network; ctx: PoolContext } {
  const networkProto = common.NetworkSpec.fromJSON(rec.ctx.network);
  const network = networkFromProto(networkProto);
  return {
    network,
    ctx: {
      searchId: rec.searchId,
      pruningnetId: rec.ctx.pruningnetId,
      pruningnetVersion: rec.ctx.pruningnetVersion,
      network,
      networkProto,
      settings: rec.ctx.settings,
      data: rec.ctx.data,
    },
  };
}

/** One entry per encoding, in order; `memo` undefined answers found = false throughout. */
export async function memoizedEvaluations(
  rec: SearchRecord,
  encodings: readonly common.Encoding[],
  memo: MemoStore | undefined,
): Promise<controller.GetEvaluationsResponse> {
  if (encodings.length > MAX_EVALUATIONS_PER_CALL) {
    throw new InvalidArgumentError('encodings', `at most ${MAX_EVALUATIONS_PER_CALL} per call`);
  }
  const { network, ctx } = searchContextOf(rec);
  const evaluations = await Promise.all(
    encodings.map(async (e, i) => {
      let genes: number[];
      try {
        genes = [...validateEncoding(network, e.genes, `encodings[${i}].genes`)];
      } catch (err) {
        if (err instanceof ValidationError) {
          throw new InvalidArgumentError(err.field, err.message.slice(err.field.length + 2), {
            cause: err,
          });
        }
        throw err;
      }
      const evaluationId = jobIdOf(ctx, genes);
      const hit = await memo?.get(evaluationId);
      const top1 = hit && Number.isFinite(hit.top1) ? hit.top1 : undefined;
      return controller.MemoizedEvaluation.fromPartial({
        encoding: { genes },
        found: top1 !== undefined,
        top1: top1 ?? 0,
        evaluationId,
      });
    }),
  );
  return { evaluations };
}
