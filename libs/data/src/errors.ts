/**
 * Errors raised while locating, reading or decoding a dataset.
 *
 * Every error names the file it is about and what was expected there, so a user can tell
 * from the message alone which file is missing, truncated or of the wrong format.
 */

/** What went wrong, for programs that react differently (e.g. suggest installing a package). */
export type DatasetErrorKind =
  /** The file or directory does not exist or cannot be read. */
  | 'missing'
  /** The file is shorter (or longer) than its header says. */
  | 'truncated'
  /** The file exists but its content is not what the format requires. */
  | 'corrupt'
  /** The caller asked for something the data cannot give (unknown dataset, too few images per class, ...). */
  | 'invalid';

export interface DatasetErrorOptions {
  kind: DatasetErrorKind;
  /** What was found instead, when there is something to show ("1234", "12 bytes"). */
  actual?: string;
  cause?: unknown;
}

/**
 * A dataset file is missing or corrupt. The message reads `<file>: expected <expected>, got <actual>`
 * (or `<file>: expected <expected>` when there is nothing to show).
 */
export class DatasetError extends Error {
  override readonly name = 'DatasetError';
  /** Path of the file (or directory) concerned. */
  readonly file: string;
  /** What the file should have been, in words ("IDX magic 2051", "47040016 bytes"). */
  readonly expected: string;
  /** What was found instead, if known. */
  readonly actual: string | undefined;
  readonly kind: DatasetErrorKind;

  constructor(file: string, expected: string, options: DatasetErrorOptions) {
    const got = options.actual === undefined ? '' : `, got ${options.actual}`;
    super(
      `${file}: expected ${expected}${got}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.file = file;
    this.expected = expected;
    this.actual = options.actual;
    this.kind = options.kind;
  }
}
