/**
 * What the end-to-end search tests share: start a search, follow it to the end, read the
 * evaluators' results stream.
 */
import { followSearch, searchClient } from '@metaprune/cli';
import type { controller, evaluation } from '@metaprune/proto';
import { decodeResult, NATS_NAMES, RESULTS_STREAM } from '@metaprune/wire';
import type { JetStreamManager } from '@nats-io/jetstream';

/** StartSearch on the controller at `address`; resolves with the search id. */
export function startSearchOn(
  address: string,
  req: controller.StartSearchRequest,
): Promise<string> {
  const client = searchClient(address);
  return new Promise<string>((ok, fail) =>
    client.startSearch(req, (err, res) => {
      client.close();
      if (err) fail(err);
      else ok(res.searchId);
    }),
  );
}

/**
 * Follows a search to its end through WatchSearch, reconnecting to `address()` (the current
 * controller, which a test may restart) when the stream breaks.
 */
export async function followSearchOn(
  address: () => string,
  id: string,
  onProgress?: (p: controller.SearchProgress) => void,
) {
  const client = searchClient(address());
  try {
    return await followSearch(client, id, { address, ...(onProgress ? { onProgress } : {}) });
  } finally {
    client.close();
  }
}

/** Result messages per job id in the evaluators' results stream. */
export async function resultCounts(jsm: JetStreamManager): Promise<Map<string, number>> {
  const prefix = `${NATS_NAMES.resultsSubjectPrefix}.`;
  const info = await jsm.streams.info(RESULTS_STREAM, { subjects_filter: `${prefix}>` });
  const out = new Map<string, number>();
  for (const [subject, n] of Object.entries(info.state.subjects ?? {})) {
    out.set(subject.slice(prefix.length), n);
  }
  return out;
}

/** The last stored result of a job, decoded. */
export async function resultOf(
  jsm: JetStreamManager,
  jobId: string,
): Promise<evaluation.EvaluationResult | undefined> {
  const m = await jsm.streams.getMessage(RESULTS_STREAM, {
    last_by_subj: `${NATS_NAMES.resultsSubjectPrefix}.${jobId}`,
  });
  return m ? decodeResult(m.data) : undefined;
}
