/**
 * The search lifecycle, in one piece: the statuses a search can be in and every allowed
 * change between them. Every status change of a search goes through {@link transition};
 * anything else throws {@link IllegalTransitionError} (a bug, not a caller's mistake).
 *
 *   PENDING ──> RUNNING ──> SUCCEEDED
 *      │           ├──────> FAILED      (an error, or the failure budget spent)
 *      │           └──────> CANCELLED   (CancelSearch)
 *      ├──────────────────> FAILED      (e.g. the latency table is gone on resume)
 *      └──────────────────> CANCELLED
 *
 * A restarted controller resumes PENDING and RUNNING searches without a transition.
 */

export type SearchStatus = 'PENDING' | 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'CANCELLED';

/** from -> the statuses it may change to. */
export const TRANSITIONS: Readonly<Record<SearchStatus, readonly SearchStatus[]>> = Object.freeze({
  PENDING: ['RUNNING', 'FAILED', 'CANCELLED'],
  RUNNING: ['SUCCEEDED', 'FAILED', 'CANCELLED'],
  SUCCEEDED: [],
  FAILED: [],
  CANCELLED: [],
});

/** The statuses a search never leaves. */
export const TERMINAL: ReadonlySet<SearchStatus> = new Set(
  (Object.keys(TRANSITIONS) as SearchStatus[]).filter((s) => TRANSITIONS[s].length === 0),
);

export class IllegalTransitionError extends Error {
  override readonly name = 'IllegalTransitionError';
  constructor(
    readonly from: SearchStatus,
    readonly to: SearchStatus,
  ) {
    super(`a search cannot go from ${from} to ${to}`);
  }
}

export function canTransition(from: SearchStatus, to: SearchStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The part of a search record the lifecycle owns. */
export interface LifecycleFields {
  status: SearchStatus;
  error: string;
  endTime?: string;
}

/**
 * Moves `rec` to `to`: a terminal status stamps `endTime`, FAILED records `error`.
 * Throws IllegalTransitionError for a change the table does not allow.
 */
export function transition(
  rec: LifecycleFields,
  to: SearchStatus,
  opts: { error?: string; endTime?: string } = {},
): void {
  if (!canTransition(rec.status, to)) throw new IllegalTransitionError(rec.status, to);
  rec.status = to;
  if (to === 'FAILED') rec.error = opts.error ?? rec.error;
  if (TERMINAL.has(to)) rec.endTime = opts.endTime ?? new Date().toISOString();
}
