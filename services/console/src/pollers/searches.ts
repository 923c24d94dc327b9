/**
 * Searches from the controller: ListSearches every poll, plus one WatchSearch stream per
 * running search for progress inside a generation.
 */
import type * as grpc from '@grpc/grpc-js';
import { controller } from '@metaprune/proto';
import { type SearchClient, unary } from '@metaprune/wire';
import { READ_DEADLINE_MS } from '../clients.js';
import type { ConsoleStore, LiveSearch } from '../store.js';
import { isTerminalSearch, progressCount, RateMeter, searchSummary } from '../views.js';

const MAX_SEARCHES = 200;

export class SearchPoller {
  constructor(
    private readonly client: SearchClient,
    private readonly store: ConsoleStore,
    /** Called when a search reached a terminal state (cached details are stale). */
    private readonly onTerminal: (searchId: string) => void,
  ) {}

  async poll(): Promise<void> {
    const { store } = this;
    let res: controller.ListSearchesResponse;
    try {
      res = await unary(
        this.client,
        this.client.listSearches,
        controller.ListSearchesRequest.fromPartial({ pageSize: MAX_SEARCHES }),
        { timeoutMs: READ_DEADLINE_MS },
      );
      store.setStatus('controller', true);
    } catch (err) {
      store.setStatus('controller', false, (err as grpc.ServiceError).details ?? String(err));
      return;
    }
    const now = Date.now();
    const seen = new Set<string>();
    for (const s of res.searches) {
      seen.add(s.searchId);
      let live = store.searches.get(s.searchId);
      if (!live) {
        live = { search: s, meter: new RateMeter(10_000), watchAfter: 0 };
        store.searches.set(s.searchId, live);
      } else {
        const watched = live.watch !== undefined;
        const terminal = isTerminalSearch(s.progress?.state ?? 0);
        // a live watch carries newer progress than the list, except for the end
        live.search = watched && !terminal ? { ...s, progress: live.search.progress } : s;
      }
      if (live.search.progress) live.meter.push(now, progressCount(live.search.progress));
      if (!isTerminalSearch(live.search.progress?.state ?? 0)) this.ensureWatch(live);
    }
    for (const [id, live] of store.searches) {
      if (!seen.has(id)) {
        live.watch?.cancel();
        store.searches.delete(id);
      }
    }
    store.order = res.searches.map((s) => s.searchId);
  }

  private ensureWatch(live: LiveSearch): void {
    const { store } = this;
    if (live.watch || store.closed || Date.now() < live.watchAfter) return;
    const id = live.search.searchId;
    const call = this.client.watchSearch(
      controller.WatchSearchRequest.fromPartial({ searchId: id }),
    );
    live.watch = call;
    call.on('data', (msg: controller.WatchSearchResponse) => {
      const p = msg.progress;
      if (!p) return;
      live.search = { ...live.search, progress: p };
      live.meter.push(Date.now(), progressCount(p));
      if (isTerminalSearch(p.state)) this.onTerminal(id);
      store.emit('search', id, searchSummary(live.search, live.meter.rate(Date.now())));
      store.flush(false);
    });
    const done = () => {
      if (live.watch === call) live.watch = undefined;
      live.watchAfter = Date.now() + 2000;
    };
    call.on('error', done);
    call.on('end', done);
  }
}
