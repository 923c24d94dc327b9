/**
 * Paths derived from a root. Every path a service deletes, writes or serves is built here
 * from its configured root plus plain name segments, never taken from a stored record or a
 * request as a whole: a tampered KV record (`jobId: "../../x"`, an absolute
 * `pausedCheckpoint`) must not make a service touch anything outside its roots.
 */
import { realpathSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { FailedPreconditionError, type MetapruneErrorOptions } from './errors.js';

/** A path built from stored or requested parts would leave its root. */
export class PathEscapeError extends FailedPreconditionError {
  constructor(
    readonly root: string,
    readonly parts: readonly string[],
    reason: string,
    options?: MetapruneErrorOptions,
  ) {
    super(
      `refusing path ${JSON.stringify(parts.join('/').slice(0, 200))} under ${root}: ${reason}`,
      options,
    );
  }
}

/** True when `child` is `root` itself or below it (both absolute, normalised). */
export function isInside(root: string, child: string): boolean {
  const rel = relative(root, child);
  return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
}

/** The longest existing prefix of `path` with symbolic links resolved, plus the rest. */
export function realpathOfExisting(path: string): string {
  let existing = path;
  const rest: string[] = [];
  for (;;) {
    try {
      const real = realpathSync(existing);
      return rest.length ? resolve(real, ...rest.reverse()) : real;
    } catch {
      const parent = dirname(existing);
      if (parent === existing) return path;
      rest.push(existing.slice(parent.length + (parent.endsWith(sep) ? 0 : 1)));
      existing = parent;
    }
  }
}

/** One path component: not empty, not "." or "..", no separator, no NUL. */
export function isPlainSegment(segment: string): boolean {
  return (
    typeof segment === 'string' &&
    segment !== '' &&
    segment !== '.' &&
    segment !== '..' &&
    segment.length <= 255 &&
    !/[/\\\0]/.test(segment)
  );
}

/**
 * `root/segment/...`, each segment a single plain name, checked to stay inside `root` both
 * lexically and after following the symbolic links of the parts that already exist.
 * Throws PathEscapeError (FAILED_PRECONDITION) otherwise.
 */
export function pathInside(root: string, ...segments: string[]): string {
  for (const s of segments) {
    if (!isPlainSegment(s)) {
      throw new PathEscapeError(root, segments, `${JSON.stringify(s)} is not a plain name`);
    }
  }
  const absRoot = resolve(root);
  const target = join(absRoot, ...segments);
  if (!isInside(absRoot, target)) throw new PathEscapeError(root, segments, 'it leaves the root');
  if (!isInside(realpathOfExisting(absRoot), realpathOfExisting(target))) {
    throw new PathEscapeError(root, segments, 'it leaves the root through a symbolic link');
  }
  return target;
}

/** `path` itself when it lies inside `root` (after symbolic links), else PathEscapeError. */
export function requireInside(root: string, path: string): string {
  const absRoot = resolve(root);
  const target = resolve(path);
  if (
    !isInside(absRoot, target) ||
    !isInside(realpathOfExisting(absRoot), realpathOfExisting(target))
  ) {
    throw new PathEscapeError(root, [path], 'it is not inside the root');
  }
  return target;
}
