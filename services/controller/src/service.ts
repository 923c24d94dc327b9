import { controller } from '@metaprune/proto';
import {
  type Logger,
  requireBearer,
  tracedServerStream,
  tracedUnary,
  writeMessage,
} from '@metaprune/runtime';
import type { SearchManager } from './manager.js';

/**
 * The gRPC SearchService over a SearchManager. Errors map through runtime's toGrpcStatus;
 * every call runs in a server span joined to the caller's trace. With `authToken`, the
 * mutating calls (StartSearch, CancelSearch) need `authorization: Bearer <token>`:
 * missing → UNAUTHENTICATED, wrong → PERMISSION_DENIED.
 */
export function searchServiceImplementation(
  manager: SearchManager,
  logger?: Logger,
  authToken?: string,
): controller.SearchServiceServer {
  const opts = logger ? { logger } : {};
  return {
    startSearch: tracedUnary(async (call) => {
      requireBearer(call.metadata, authToken, 'StartSearch');
      return { searchId: await manager.start(call.request) };
    }, opts),
    watchSearch: tracedServerStream(async (call, ctx) => {
      for await (const progress of manager.watch(call.request.searchId, ctx.signal)) {
        await writeMessage(call, controller.WatchSearchResponse.fromPartial({ progress }));
      }
    }, opts),
    getSearch: tracedUnary(
      async (call) => ({ search: await manager.get(call.request.searchId) }),
      opts,
    ),
    listSearches: tracedUnary(async (call) => manager.list(call.request), opts),
    getEvaluations: tracedUnary(async (call) => manager.evaluations(call.request), opts),
    cancelSearch: tracedUnary(async (call) => {
      requireBearer(call.metadata, authToken, 'CancelSearch');
      return { search: await manager.cancel(call.request.searchId) };
    }, opts),
  };
}
