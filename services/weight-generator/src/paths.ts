/**
 * Ids and paths that come from requests. Ids name directories, so they are restricted to a
 * safe alphabet; paths given relative to a configured root must stay inside it (after
 * resolving "..", and after following symbolic links of the parts that already exist).
 */
import { constants } from 'node:fs';
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import {
  FailedPreconditionError,
  InvalidArgumentError,
  isInside,
  realpathOfExisting,
} from '@metaprune/runtime';

/**
 * Ids of PruningNets and jobs: letters, digits, ".", "_", "-"; 1-128 chars; starting with a
 * letter or digit, not ending with a dot, no two dots in a row (ids are also storage keys).
 */
export const ID_PATTERN = /^(?!.*\.\.)[A-Za-z0-9](?:[A-Za-z0-9._-]{0,126}[A-Za-z0-9_-])?$/;

export function requireId(field: string, value: string): string {
  if (!ID_PATTERN.test(value)) {
    throw new InvalidArgumentError(
      field,
      value === ''
        ? 'is required'
        : `${JSON.stringify(value.slice(0, 140))} is not a valid id (1-128 of [A-Za-z0-9._-], starting with a letter or digit, no trailing or double dot)`,
    );
  }
  return value;
}

/**
 * Resolves `rel` (a relative path from a request) below `root`. Absolute paths, NUL bytes,
 * and paths that leave the root ("..", or a symbolic link pointing outside) are refused
 * with INVALID_ARGUMENT naming `field`. Empty means the root itself.
 */
export function resolveInside(root: string, rel: string, field: string): string {
  if (rel.includes('\0')) throw new InvalidArgumentError(field, 'must not contain NUL bytes');
  if (rel.length > 1024) throw new InvalidArgumentError(field, 'is longer than 1024 characters');
  if (isAbsolute(rel) || /^[A-Za-z]:[\\/]/.test(rel)) {
    throw new InvalidArgumentError(
      field,
      `${JSON.stringify(rel)} is absolute; give a path relative to the configured root`,
    );
  }
  const absRoot = resolve(root);
  const target = resolve(absRoot, rel);
  if (!isInside(absRoot, target)) {
    throw new InvalidArgumentError(field, `${JSON.stringify(rel)} leaves the configured root`);
  }
  const realRoot = realpathOfExisting(absRoot);
  const realTarget = realpathOfExisting(target);
  if (!isInside(realRoot, realTarget)) {
    throw new InvalidArgumentError(
      field,
      `${JSON.stringify(rel)} leaves the configured root through a symbolic link`,
    );
  }
  return target;
}

/** File-name stems of exports: [A-Za-z0-9._-]{1,128}, not "." or "..". */
export const NAME_PATTERN = /^[A-Za-z0-9._-]{1,128}$/;

export function requireName(field: string, value: string): string {
  if (!NAME_PATTERN.test(value) || value === '.' || value === '..') {
    throw new InvalidArgumentError(
      field,
      `${JSON.stringify(value.slice(0, 140))} is not a valid name ([A-Za-z0-9._-]{1,128}, not "." or "..")`,
    );
  }
  return value;
}

/**
 * Creates `dir` if needed and checks that this process can write into it: a read-only or
 * foreign-owned root is FAILED_PRECONDITION before a job is accepted, instead of a job that
 * fails later with a misleading ENOENT (or an INTERNAL export).
 */
export async function requireWritable(dir: string, what: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
    // access() alone would pass for root on a read-only directory: create a file
    await access(dir, constants.W_OK | constants.X_OK);
    const probe = join(dir, `.write-probe-${process.pid}-${Date.now()}`);
    await writeFile(probe, '', { flag: 'wx' });
    await rm(probe, { force: true });
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    if (['EACCES', 'EPERM', 'EROFS', 'ENOTDIR', 'EEXIST', 'ENOSPC'].includes(code)) {
      throw new FailedPreconditionError(`${what} ${dir} is not writable (${code})`, {
        cause: err,
      });
    }
    throw err;
  }
}
