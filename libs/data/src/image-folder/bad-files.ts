/**
 * The bad-file policy of image folders: an unreadable, undecodable or unsupported file is
 * reported with its path and skipped while the bad files stay within a fraction of all
 * files (default 0.1 %); above it the load fails naming the first few.
 */
import { DatasetError } from '../errors.js';

export const DEFAULT_MAX_BAD_FRACTION = 0.001;
/** Files named in the error message when the threshold is crossed. */
const NAMED = 5;

export interface BadFile {
  path: string;
  reason: string;
}

/**
 * Throws when `bad.length / total` exceeds `maxFraction`; the error names the first
 * {@link NAMED} files and why each failed.
 */
export function checkBadFiles(
  root: string,
  bad: readonly BadFile[],
  total: number,
  maxFraction: number,
): void {
  if (bad.length === 0 || bad.length <= maxFraction * total) return;
  const shown = bad
    .slice(0, NAMED)
    .map((b) => `${b.path} (${b.reason})`)
    .join('; ');
  const more = bad.length > NAMED ? `; and ${bad.length - NAMED} more` : '';
  throw new DatasetError(
    root,
    `at most ${(100 * maxFraction).toPrecision(2)} % unreadable or unsupported files`,
    {
      kind: 'corrupt',
      actual: `${bad.length} of ${total}: ${shown}${more}`,
    },
  );
}
