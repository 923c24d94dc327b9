/**
 * Versioned PruningNet checkpoints on disk:
 *
 *   <root>/pruningnets/<id>/v<N>/version.json    what the version is + sha256 of every file
 *   <root>/pruningnets/<id>/v<N>/...             the engine's checkpoint files
 *   <root>/jobs/<job>/work/                      the engine's scratch space for a job
 *   <root>/jobs/<job>/paused/                    a mid-epoch checkpoint saved on shutdown
 *
 * A version is written into a staging directory next to it (files copied or moved, hashed
 * and fsynced, manifest last) and renamed into place, so it either exists complete or not at
 * all. Versions are immutable. Loading verifies every file's size and SHA-256 against the
 * manifest (cached while the files' size/mtime/inode stay the same); a version that fails
 * is refused with CheckpointCorruptError (DATA_LOSS) and "latest" falls back to the newest
 * version that passes.
 */
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  copyFile,
  mkdir,
  open,
  readdir,
  readFile,
  rename,
  rm,
  stat,
  writeFile,
} from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { type Logger, NotFoundError, nullLogger, pathInside } from '@metaprune/runtime';
import { CheckpointCorruptError } from './errors.js';
import type { ResolvedTrainingConfig } from './types.js';

/** The service's manifest of a version (the engine's own files keep their names). */
export const MANIFEST = 'version.json';
export const MANIFEST_FORMAT = 'metaprune-pruningnet-checkpoint/2';
/** Manifests written before the digest covered the metadata (read, with a warning). */
export const LEGACY_MANIFEST_FORMAT = 'metaprune-pruningnet-checkpoint/1';

export interface CheckpointFile {
  /** Path relative to the version directory, "/"-separated. */
  path: string;
  bytes: number;
  sha256: string;
}

/** What the service records about a checkpoint. */
export interface CheckpointMeta {
  pruningnetId: string;
  jobId: string;
  displayName: string;
  epochsTrained: number;
  validationAccuracy?: number;
  config: ResolvedTrainingConfig;
  /** ISO time the checkpoint was written. */
  createTime: string;
}

export interface Manifest {
  format: typeof MANIFEST_FORMAT | typeof LEGACY_MANIFEST_FORMAT;
  /** Version number (0 for a job's paused checkpoint, which is not a version). */
  version: number;
  meta: CheckpointMeta;
  files: CheckpointFile[];
  /** SHA-256 over the files' paths and hashes (PruningNet.sha256). */
  digest: string;
  sizeBytes: number;
}

export interface StoredVersion {
  pruningnetId: string;
  version: number;
  dir: string;
  manifest: Manifest;
}

async function hashFile(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } catch {
    // some file systems refuse fsync on directories; the rename is still atomic
  } finally {
    await fh.close();
  }
}

async function listFiles(dir: string, base = dir): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await listFiles(full, base)));
    else if (entry.isFile()) out.push(relative(base, full).split(sep).join('/'));
  }
  return out.sort();
}

/**
 * SHA-256 over the file list and (format 2) everything else the manifest states: an edited
 * version.json (configuration, epochs, accuracy, version number) fails verification like a
 * corrupted weight file, instead of being served.
 */
function digestOf(m: Pick<Manifest, 'format' | 'files' | 'meta' | 'version'>): string {
  const h = createHash('sha256');
  for (const f of m.files) h.update(`${f.path}\0${f.bytes}\0${f.sha256}\n`);
  if (m.format !== LEGACY_MANIFEST_FORMAT) {
    h.update(`format\0${m.format}\nversion\0${m.version}\nmeta\0${JSON.stringify(m.meta)}\n`);
  }
  return h.digest('hex');
}

/** Why stored metadata cannot be used, or undefined (checked on every read). */
function metaProblem(meta: CheckpointMeta): string | undefined {
  if (typeof meta.pruningnetId !== 'string' || typeof meta.jobId !== 'string') return 'ids';
  if (!Number.isSafeInteger(meta.epochsTrained) || meta.epochsTrained < 0) return 'epochsTrained';
  if (
    meta.validationAccuracy !== undefined &&
    !(meta.validationAccuracy >= 0 && meta.validationAccuracy <= 1)
  ) {
    return 'validationAccuracy';
  }
  const net = (meta.config as { network?: unknown } | null)?.network;
  if (net === null || typeof net !== 'object') return 'config.network';
  if (typeof meta.createTime !== 'string' || Number.isNaN(Date.parse(meta.createTime))) {
    return 'createTime';
  }
  return undefined;
}

const VERSION_DIR = /^v([1-9][0-9]{0,8})$/;

function isCode(err: unknown, ...codes: string[]): boolean {
  return codes.includes((err as { code?: string }).code ?? '');
}

export class CheckpointStore {
  readonly pruningnetsDir: string;
  readonly jobsDir: string;
  private readonly logger: Logger;
  private readonly legacyWarned = new Set<string>();
  /** Verification results by version dir, valid while the signature is unchanged. */
  private readonly verified = new Map<
    string,
    { signature: string; manifest?: Manifest; error?: CheckpointCorruptError }
  >();

  constructor(
    readonly root: string,
    logger: Logger = nullLogger,
  ) {
    this.pruningnetsDir = join(root, 'pruningnets');
    this.jobsDir = join(root, 'jobs');
    this.logger = logger;
  }

  /** Creates the directories and removes staging leftovers of an interrupted write. */
  async init(): Promise<void> {
    await mkdir(this.pruningnetsDir, { recursive: true });
    await mkdir(this.jobsDir, { recursive: true });
    for (const id of await readdir(this.pruningnetsDir).catch(() => [] as string[])) {
      const dir = join(this.pruningnetsDir, id);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (name.startsWith('.staging-'))
          await rm(join(dir, name), { recursive: true, force: true });
      }
    }
  }

  // Every directory is derived from the root plus plain names and re-checked to stay inside
  // (ids can come from stored records; PathEscapeError rather than a path outside the root).
  pruningnetDir(id: string): string {
    return pathInside(this.pruningnetsDir, id);
  }
  versionDir(id: string, version: number): string {
    if (!Number.isSafeInteger(version) || version < 1) {
      throw new NotFoundError(`PruningNet ${id} has no version ${version}`);
    }
    return pathInside(this.pruningnetsDir, id, `v${version}`);
  }
  jobWorkDir(jobId: string): string {
    return pathInside(this.jobsDir, jobId, 'work');
  }
  jobPausedDir(jobId: string): string {
    return pathInside(this.jobsDir, jobId, 'paused');
  }

  /** Version numbers of a PruningNet, ascending (directories only; not verified). */
  async versions(id: string): Promise<number[]> {
    let names: string[];
    try {
      names = await readdir(this.pruningnetDir(id));
    } catch (err) {
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return [];
      throw err;
    }
    return names
      .map((n) => VERSION_DIR.exec(n)?.[1])
      .filter((v): v is string => v !== undefined)
      .map(Number)
      .sort((a, b) => a - b);
  }

  /** Ids of every PruningNet with at least one version directory. */
  async ids(): Promise<string[]> {
    const names = await readdir(this.pruningnetsDir).catch(() => [] as string[]);
    const out: string[] = [];
    for (const n of names) if ((await this.versions(n)).length > 0) out.push(n);
    return out.sort();
  }

  /** Copies the files of `srcDir` into a staging dir, hashes and syncs them, writes the manifest. */
  private async stage(
    parent: string,
    srcDir: string,
    version: number,
    meta: CheckpointMeta,
    move: boolean,
  ): Promise<{ staging: string; manifest: Manifest }> {
    await mkdir(parent, { recursive: true });
    const staging = join(parent, `.staging-${randomBytes(6).toString('hex')}`);
    await mkdir(staging);
    try {
      const files: CheckpointFile[] = [];
      for (const path of await listFiles(srcDir)) {
        if (path === MANIFEST) continue;
        const dst = join(staging, ...path.split('/'));
        await mkdir(join(dst, '..'), { recursive: true });
        const src = join(srcDir, ...path.split('/'));
        if (move) await rename(src, dst);
        else await copyFile(src, dst);
        await fsyncPath(dst);
        const { sha256, bytes } = await hashFile(dst);
        files.push({ path, bytes, sha256 });
      }
      if (files.length === 0) throw new Error(`checkpoint directory ${srcDir} holds no files`);
      const manifest: Manifest = {
        format: MANIFEST_FORMAT,
        version,
        meta,
        files,
        digest: digestOf({ format: MANIFEST_FORMAT, version, meta, files }),
        sizeBytes: files.reduce((s, f) => s + f.bytes, 0),
      };
      const mpath = join(staging, MANIFEST);
      await writeFile(mpath, `${JSON.stringify(manifest, null, 2)}\n`);
      await fsyncPath(mpath);
      await fsyncPath(staging);
      return { staging, manifest };
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Publishes the checkpoint files in `srcDir` as the next version of `meta.pruningnetId`
   * (atomic: a crash leaves either the complete version or none). `move` renames the files
   * out of `srcDir` (same file system) instead of copying them.
   */
  async publish(srcDir: string, meta: CheckpointMeta, move = false): Promise<StoredVersion> {
    const id = meta.pruningnetId;
    const parent = this.pruningnetDir(id);
    const staged = await this.stage(parent, srcDir, 0, meta, move);
    const { staging } = staged;
    try {
      for (let attempt = 0; attempt < 100; attempt++) {
        const existing = await this.versions(id);
        const version = (existing[existing.length - 1] ?? 0) + 1;
        const manifest: Manifest = {
          ...staged.manifest,
          version,
          digest: digestOf({ ...staged.manifest, version }),
        };
        const mpath = join(staging, MANIFEST);
        await writeFile(mpath, `${JSON.stringify(manifest, null, 2)}\n`);
        await fsyncPath(mpath);
        const dir = this.versionDir(id, version);
        try {
          await rename(staging, dir);
        } catch (err) {
          if (isCode(err, 'EEXIST', 'ENOTEMPTY')) continue; // another writer took the number
          throw err;
        }
        await fsyncPath(parent);
        this.logger.info('checkpoint version published', { pruningnet: id, version, dir });
        return { pruningnetId: id, version, dir, manifest };
      }
      throw new Error(`could not allocate a version number for ${id}`);
    } catch (err) {
      await rm(staging, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Deletes the oldest versions of a PruningNet so that at most `keep` remain (each one is
   * first renamed away, so a reader sees it whole or not at all). Returns the deleted ones.
   */
  async prune(id: string, keep: number): Promise<number[]> {
    if (!(keep >= 1)) return [];
    const versions = await this.versions(id);
    const doomed = versions.slice(0, Math.max(0, versions.length - keep));
    for (const v of doomed) {
      const dir = this.versionDir(id, v);
      const trash = join(
        this.pruningnetDir(id),
        `.staging-deleted-v${v}-${randomBytes(4).toString('hex')}`,
      );
      try {
        await rename(dir, trash);
      } catch (err) {
        if (isCode(err, 'ENOENT')) continue;
        throw err;
      }
      this.verified.delete(dir);
      await rm(trash, { recursive: true, force: true });
      this.logger.info('old checkpoint version deleted', { pruningnet: id, version: v });
    }
    return doomed;
  }

  /** Atomically replaces `targetDir` with a verified copy of `srcDir` (a job's paused checkpoint). */
  async saveReplacing(
    targetDir: string,
    srcDir: string,
    meta: CheckpointMeta,
    move = false,
  ): Promise<Manifest> {
    const parent = join(targetDir, '..');
    const { staging, manifest } = await this.stage(parent, srcDir, 0, meta, move);
    const old = `${targetDir}.old-${randomBytes(4).toString('hex')}`;
    let moved = false;
    try {
      await rename(targetDir, old);
      moved = true;
    } catch (err) {
      if (!isCode(err, 'ENOENT')) {
        await rm(staging, { recursive: true, force: true });
        throw err;
      }
    }
    await rename(staging, targetDir);
    await fsyncPath(parent);
    if (moved) await rm(old, { recursive: true, force: true });
    return manifest;
  }

  /** Reads and checks a manifest (no hashing). */
  async readManifest(dir: string, label = dir): Promise<Manifest> {
    let text: string;
    try {
      text = await readFile(join(dir, MANIFEST), 'utf8');
    } catch (err) {
      if (isCode(err, 'ENOENT')) {
        throw new CheckpointCorruptError(label, `${MANIFEST} is missing`, { cause: err });
      }
      throw new CheckpointCorruptError(label, `${MANIFEST} is unreadable`, { cause: err });
    }
    let m: Manifest;
    try {
      m = JSON.parse(text) as Manifest;
    } catch (err) {
      throw new CheckpointCorruptError(label, `${MANIFEST} is not valid JSON (truncated?)`, {
        cause: err,
      });
    }
    if (
      m === null ||
      typeof m !== 'object' ||
      (m.format !== MANIFEST_FORMAT && m.format !== LEGACY_MANIFEST_FORMAT) ||
      !Array.isArray(m.files) ||
      typeof m.meta !== 'object' ||
      m.meta === null ||
      typeof m.meta.pruningnetId !== 'string' ||
      typeof m.meta.config !== 'object'
    ) {
      throw new CheckpointCorruptError(label, `${MANIFEST} is not a ${MANIFEST_FORMAT} manifest`);
    }
    if (m.digest !== digestOf(m)) {
      throw new CheckpointCorruptError(
        label,
        `${MANIFEST} digest does not match its contents (edited or corrupted)`,
      );
    }
    const bad = metaProblem(m.meta);
    if (bad) throw new CheckpointCorruptError(label, `${MANIFEST} has an invalid meta.${bad}`);
    if (m.format === LEGACY_MANIFEST_FORMAT && !this.legacyWarned.has(dir)) {
      this.legacyWarned.add(dir);
      this.logger.warn(
        'checkpoint written by an older version: its metadata is not covered by the digest',
        { dir: label },
      );
    }
    return m;
  }

  private async signature(dir: string, m: Manifest | undefined): Promise<string> {
    const parts: string[] = [];
    const names = [MANIFEST, ...(m?.files.map((f) => f.path) ?? [])];
    for (const name of names) {
      try {
        const s = await stat(join(dir, ...name.split('/')));
        parts.push(`${name}:${s.size}:${s.mtimeMs}:${s.ino}`);
      } catch {
        parts.push(`${name}:missing`);
      }
    }
    return parts.join('|');
  }

  /**
   * Verifies every file of the checkpoint in `dir` against its manifest (size and SHA-256);
   * throws CheckpointCorruptError naming the first bad file. Cached while nothing changes.
   */
  async verify(dir: string, label = dir): Promise<Manifest> {
    const cached = this.verified.get(dir);
    if (cached) {
      const sig = await this.signature(dir, cached.manifest);
      if (sig === cached.signature) {
        if (cached.error) throw cached.error;
        return cached.manifest!;
      }
    }
    let manifest: Manifest | undefined;
    try {
      manifest = await this.readManifest(dir, label);
      for (const f of manifest.files) {
        if (f.path.split('/').some((p) => p === '..' || p === '' || p === '.')) {
          throw new CheckpointCorruptError(label, `${MANIFEST} names an invalid path ${f.path}`);
        }
        const path = join(dir, ...f.path.split('/'));
        let size: number;
        try {
          size = (await stat(path)).size;
        } catch (err) {
          throw new CheckpointCorruptError(label, `file ${f.path} is missing`, { cause: err });
        }
        if (size !== f.bytes) {
          throw new CheckpointCorruptError(
            label,
            `file ${f.path} has ${size} bytes, the manifest says ${f.bytes} (truncated?)`,
          );
        }
        const { sha256 } = await hashFile(path);
        if (sha256 !== f.sha256) {
          throw new CheckpointCorruptError(
            label,
            `file ${f.path} fails its checksum (sha256 ${sha256.slice(0, 12)}…, expected ${f.sha256.slice(0, 12)}…)`,
          );
        }
      }
      this.verified.set(dir, { signature: await this.signature(dir, manifest), manifest });
      return manifest;
    } catch (err) {
      if (err instanceof CheckpointCorruptError) {
        this.verified.set(dir, { signature: await this.signature(dir, manifest), error: err });
        this.logger.warn('checkpoint refused', { dir, reason: err.message });
      }
      throw err;
    }
  }

  /**
   * The version to serve: `version` itself (verified; NOT_FOUND / DATA_LOSS), or for 0 the
   * newest version that passes verification (DATA_LOSS only when none does).
   */
  async resolve(id: string, version: number): Promise<StoredVersion> {
    const versions = await this.versions(id);
    if (versions.length === 0) throw new NotFoundError(`PruningNet ${id} does not exist`);
    if (version !== 0) {
      if (!versions.includes(version)) {
        throw new NotFoundError(
          `PruningNet ${id} has no version ${version} (versions: ${versions.join(', ')})`,
        );
      }
      const dir = this.versionDir(id, version);
      const manifest = await this.verify(dir, `${id} v${version}`);
      return { pruningnetId: id, version, dir, manifest };
    }
    let firstError: CheckpointCorruptError | undefined;
    for (const v of [...versions].reverse()) {
      const dir = this.versionDir(id, v);
      try {
        const manifest = await this.verify(dir, `${id} v${v}`);
        if (firstError) {
          this.logger.warn('serving an older version: newer ones are corrupted', {
            pruningnet: id,
            version: v,
          });
        }
        return { pruningnetId: id, version: v, dir, manifest };
      } catch (err) {
        if (!(err instanceof CheckpointCorruptError)) throw err;
        firstError ??= err;
      }
    }
    throw firstError!;
  }

  /** Every version with a readable manifest (not hashed), in no particular order. */
  async list(filterId?: string): Promise<StoredVersion[]> {
    const ids = filterId !== undefined ? [filterId] : await this.ids();
    const out: StoredVersion[] = [];
    for (const id of ids) {
      for (const v of await this.versions(id)) {
        const dir = this.versionDir(id, v);
        try {
          const manifest = await this.readManifest(dir, `${id} v${v}`);
          out.push({ pruningnetId: id, version: v, dir, manifest });
        } catch (err) {
          this.logger.warn('skipping unreadable checkpoint in listing', {
            dir,
            reason: err instanceof Error ? err.message : String(err),
          });
        }
      }
    }
    return out;
  }
}
