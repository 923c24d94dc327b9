/** The controller calls the end-to-end tests share: start a search, follow it to the end. */
import { followSearch, searchClient } from '@metaprune/cli';
import type { controller } from '@metaprune/proto';

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
