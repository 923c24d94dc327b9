/**
 * PruningNet checkpoints: a directory per checkpoint holding the parameters, the momentum
 * buffers and the per-row step counters as raw little-endian binaries, plus
 * `manifest.json` (network, training position and configuration, sha256 of every file).
 *
 * Writes are atomic: files go to a temporary directory which is renamed into place, then
 * `latest.json` (in the parent) is replaced through a temporary file + rename. Loading
 * verifies sizes and checksums and names the file that is wrong.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { buildNetwork, type NetworkSpec } from '@metaprune/core';
import { buildLayout } from '../pruningnet/layout.js';
import type { PruningNetState } from '../pruningnet/params.js';
import { allocState } from '../pruningnet/params.js';
import { PruningNet } from '../pruningnet/pruningnet.js';

export const CHECKPOINT_FORMAT = 'metaprune-pruningnet/1';
export const MANIFEST = 'manifest.json';
export const LATEST = 'latest.json';

export class CheckpointError extends Error {
  constructor(
    readonly file: string,
    message: string,
  ) {
    super(`checkpoint file ${file}: ${message}`);
    this.name = 'CheckpointError';
  }
}

export interface CheckpointFile {
  name: string;
  bytes: number;
  sha256: string;
}

/** Where training stands and how it was configured (everything a resume needs). */
export interface TrainPosition {
  /** Next epoch to run (0-based). */
  epoch: number;
  /** Next step within that epoch. */
  step: number;
  /** Global steps applied. */
  globalStep: number;
}

export interface CheckpointManifest<C = unknown> {
  format: string;
  spec: NetworkSpec;
  /** Initialisation seed of the PruningNet. */
  seed: number;
  /** False for the ablation without weight prediction; absent (older checkpoints) = true. */
  weightPrediction?: boolean;
  position: TrainPosition;
  /** Step up to which every generator row is current. */
  flushedAt: number;
  /** Training configuration (validated by the trainer on resume). */
  config: C;
  /** Anything else the trainer records (history, timings). */
  extra: unknown;
  files: CheckpointFile[];
  createdAt: string;
}

interface Blob {
  name: string;
  data: ArrayBufferView;
}

function blobsOf(st: PruningNetState): Blob[] {
  return [
    { name: 'params.w2.f32', data: st.params.w2 },
    { name: 'params.b2.f32', data: st.params.b2 },
    { name: 'params.small.f32', data: st.params.small },
    { name: 'momentum.w2.f32', data: st.momentum.w2 },
    { name: 'momentum.b2.f32', data: st.momentum.b2 },
    { name: 'momentum.small.f32', data: st.momentum.small },
    { name: 'laststep.i32', data: st.lastStep },
  ];
}

function bytesOf(v: ArrayBufferView): Buffer {
  return Buffer.from(v.buffer as ArrayBuffer, v.byteOffset, v.byteLength);
}

const CHUNK = 64 << 20;

async function writeBlob(path: string, data: ArrayBufferView): Promise<CheckpointFile> {
  const buf = bytesOf(data);
  const hash = createHash('sha256');
  const fh = await open(path, 'w');
  try {
    for (let off = 0; off < buf.length; off += CHUNK) {
      const part = buf.subarray(off, Math.min(buf.length, off + CHUNK));
      hash.update(part);
      await fh.write(part);
    }
    await fh.sync();
  } finally {
    await fh.close();
  }
  return { name: path.split('/').pop() as string, bytes: buf.length, sha256: hash.digest('hex') };
}

async function writeFileAtomic(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export interface SaveOptions<C> {
  config: C;
  extra?: unknown;
  /** Checkpoints to keep in `dir` (oldest removed first; default 1). */
  keep?: number;
}

/** Name of the checkpoint directory of a position. */
export function checkpointName(p: TrainPosition): string {
  return `ckpt-g${String(p.globalStep).padStart(9, '0')}`;
}

/**
 * Saves a checkpoint of `pnet` at `position` under `dir` (created if needed) and points
 * `dir/latest.json` at it. Returns the checkpoint's directory.
 */
export async function saveCheckpoint<C>(
  dir: string,
  pnet: PruningNet,
  position: TrainPosition,
  options: SaveOptions<C>,
): Promise<string> {
  await mkdir(dir, { recursive: true });
  const name = checkpointName(position);
  const tmp = join(dir, `.tmp-${name}-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  const files: CheckpointFile[] = [];
  for (const b of blobsOf(pnet.state)) files.push(await writeBlob(join(tmp, b.name), b.data));
  const manifest: CheckpointManifest<C> = {
    format: CHECKPOINT_FORMAT,
    spec: pnet.net.spec,
    seed: pnet.seed,
    ...(pnet.weightPrediction ? {} : { weightPrediction: false }),
    position,
    flushedAt: pnet.flushedAt,
    config: options.config,
    extra: options.extra ?? null,
    files,
    createdAt: new Date().toISOString(),
  };
  await writeFileAtomic(join(tmp, MANIFEST), `${JSON.stringify(manifest, null, 1)}\n`);
  const final = join(dir, name);
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  await writeFileAtomic(join(dir, LATEST), `${JSON.stringify({ checkpoint: name })}\n`);
  // Keep the newest `keep` checkpoints.
  const keep = Math.max(1, options.keep ?? 1);
  const all = (await readdir(dir)).filter((f) => /^ckpt-g\d+$/.test(f)).sort();
  for (const old of all.slice(0, Math.max(0, all.length - keep))) {
    if (old !== name) await rm(join(dir, old), { recursive: true, force: true });
  }
  return final;
}

/** Resolves a checkpoint directory: itself (has a manifest) or the one `latest.json` names. */
export async function resolveCheckpoint(path: string): Promise<string> {
  try {
    await stat(join(path, MANIFEST));
    return path;
  } catch {
    // not a checkpoint itself: look for latest.json
  }
  const latest = join(path, LATEST);
  let text: string;
  try {
    text = await readFile(latest, 'utf8');
  } catch {
    throw new CheckpointError(
      join(path, MANIFEST),
      `not found (and no ${LATEST} in ${path}): not a PruningNet checkpoint directory`,
    );
  }
  let name: unknown;
  try {
    name = (JSON.parse(text) as { checkpoint?: unknown }).checkpoint;
  } catch {
    throw new CheckpointError(latest, 'is not valid JSON');
  }
  if (typeof name !== 'string' || name.includes('/') || name.includes('..')) {
    throw new CheckpointError(latest, 'does not name a checkpoint directory');
  }
  return join(path, name);
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: CHUNK }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function readManifest<C>(dir: string): Promise<CheckpointManifest<C>> {
  const path = join(dir, MANIFEST);
  let m: CheckpointManifest<C>;
  try {
    m = JSON.parse(await readFile(path, 'utf8')) as CheckpointManifest<C>;
  } catch (e) {
    throw new CheckpointError(path, `unreadable or not valid JSON (${(e as Error).message})`);
  }
  if (m.format !== CHECKPOINT_FORMAT) {
    throw new CheckpointError(
      path,
      `format "${String(m.format)}", expected "${CHECKPOINT_FORMAT}"`,
    );
  }
  if (!Array.isArray(m.files)) throw new CheckpointError(path, 'has no file list');
  return m;
}

async function readBlobInto(
  dir: string,
  f: CheckpointFile,
  target: ArrayBufferView,
): Promise<void> {
  const path = join(dir, f.name);
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    throw new CheckpointError(path, 'is missing');
  }
  if (size !== f.bytes || target.byteLength !== f.bytes) {
    throw new CheckpointError(
      path,
      `has ${size} bytes, expected ${f.bytes}${target.byteLength !== f.bytes ? ` (network needs ${target.byteLength})` : ''} (truncated or from another network)`,
    );
  }
  const digest = await sha256File(path);
  if (digest !== f.sha256) {
    throw new CheckpointError(
      path,
      `sha256 mismatch (expected ${f.sha256}, got ${digest}): corrupt`,
    );
  }
  const dst = bytesOf(target);
  const fh = await open(path, 'r');
  try {
    let off = 0;
    while (off < dst.length) {
      const { bytesRead } = await fh.read(dst, off, Math.min(CHUNK, dst.length - off), off);
      if (bytesRead === 0) throw new CheckpointError(path, `ended after ${off} bytes`);
      off += bytesRead;
    }
  } finally {
    await fh.close();
  }
}

export interface LoadedCheckpoint<C> {
  pnet: PruningNet;
  manifest: CheckpointManifest<C>;
  dir: string;
}

export interface LoadOptions {
  /** Load into this PruningNet (same network) instead of creating one. */
  into?: PruningNet;
  /** Allocate in SharedArrayBuffers (when creating). */
  shared?: boolean;
}

/** Loads and verifies a checkpoint (a checkpoint directory or a parent with latest.json). */
export async function loadCheckpoint<C = unknown>(
  path: string,
  options: LoadOptions = {},
): Promise<LoadedCheckpoint<C>> {
  const dir = await resolveCheckpoint(path);
  const manifest = await readManifest<C>(dir);
  const net = buildNetwork(manifest.spec);
  const weightPrediction = manifest.weightPrediction ?? true;
  let pnet = options.into;
  if (pnet) {
    if (pnet.weightPrediction !== weightPrediction) {
      throw new CheckpointError(
        join(dir, MANIFEST),
        `is ${weightPrediction ? 'with' : 'without'} weight prediction, the PruningNet being trained ${pnet.weightPrediction ? 'with' : 'without'}`,
      );
    }
    if (JSON.stringify(pnet.net.spec) !== JSON.stringify(net.spec)) {
      throw new CheckpointError(
        join(dir, MANIFEST),
        `is for ${JSON.stringify(net.spec)}, not the network being trained (${JSON.stringify(pnet.net.spec)})`,
      );
    }
  } else {
    pnet = new PruningNet(
      net,
      allocState(buildLayout(net, { weightPrediction }), options.shared ?? false),
      manifest.seed,
      weightPrediction,
    );
  }
  const blobs = blobsOf(pnet.state);
  for (const b of blobs) {
    const f = manifest.files.find((x) => x.name === b.name);
    if (!f) throw new CheckpointError(join(dir, b.name), 'is not listed in the manifest');
    await readBlobInto(dir, f, b.data);
  }
  pnet.step = manifest.position.globalStep;
  pnet.flushedAt = manifest.flushedAt;
  return { pnet, manifest, dir };
}

/** Writes `text` to a file atomically (temp file + rename); exported for callers' sidecars. */
export { writeFileAtomic };
