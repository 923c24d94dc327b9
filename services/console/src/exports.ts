/**
 * Exported models under the weight generator's export root: listing (every directory
 * holding a model.json, a few levels deep), path-safe resolution of a download path, and a
 * ustar archive of one model directory streamed without temporary files.
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import type { Writable } from 'node:stream';
import type { ExportView } from './views.js';

export const MODEL_JSON = 'model.json';
const MAX_DEPTH = 4;
const MAX_MODELS = 500;
const MAX_ENTRIES_PER_DIR = 2000;

/**
 * Resolves a '/'-separated path below `root`, refusing anything that could leave it:
 * empty, absolute or dot segments, backslashes, NUL, and symbolic links that lead outside
 * the root (checked on the real path). Returns undefined when refused or missing.
 */
export async function resolveInsideRoot(root: string, rel: string): Promise<string | undefined> {
  if (rel.includes('\0') || rel.includes('\\')) return undefined;
  const segments = rel.split('/');
  if (segments.some((s) => s === '' || s === '.' || s === '..')) return undefined;
  if (isAbsolute(rel)) return undefined;
  const base = resolve(root);
  const target = resolve(base, ...segments);
  if (target !== base && !target.startsWith(base + sep)) return undefined;
  try {
    const [realBase, realTarget] = await Promise.all([realpath(base), realpath(target)]);
    if (realTarget !== realBase && !realTarget.startsWith(realBase + sep)) return undefined;
    return realTarget;
  } catch {
    return undefined;
  }
}

const isHidden = (name: string) => name.startsWith('.');

/** Models under `root` (directories with a model.json), newest first. */
export async function listExports(root: string): Promise<ExportView[]> {
  const base = resolve(root);
  const out: ExportView[] = [];
  const walk = async (dir: string, depth: number): Promise<void> => {
    if (out.length >= MAX_MODELS) return;
    let entries: import('node:fs').Dirent[];
    try {
      entries = (await readdir(dir, { withFileTypes: true })).slice(0, MAX_ENTRIES_PER_DIR);
    } catch {
      return;
    }
    const files = entries.filter((e) => e.isFile() && !isHidden(e.name));
    if (files.some((f) => f.name === MODEL_JSON)) {
      out.push(await describeModel(base, dir, files.map((f) => f.name).sort()));
      return;
    }
    if (depth >= MAX_DEPTH) return;
    for (const e of entries) {
      // temporary and replaced exports are hidden (".name.tmp-..."); links are not followed
      if (e.isDirectory() && !isHidden(e.name) && !/\.old-[0-9a-f]+$/.test(e.name)) {
        await walk(join(dir, e.name), depth + 1);
      }
    }
  };
  await walk(base, 0);
  return out.sort((a, b) => b.modifiedTime.localeCompare(a.modifiedTime));
}

async function describeModel(base: string, dir: string, files: string[]): Promise<ExportView> {
  let size = 0;
  let mtime = 0;
  for (const f of files) {
    try {
      const s = await stat(join(dir, f));
      size += s.size;
      mtime = Math.max(mtime, s.mtimeMs);
    } catch {
      // vanished meanwhile
    }
  }
  let metadata: Record<string, unknown> | undefined;
  try {
    const path = join(dir, MODEL_JSON);
    if ((await stat(path)).size < 8 * 1024 * 1024) {
      const json = JSON.parse(await readFile(path, 'utf8')) as { userDefinedMetadata?: unknown };
      const m = json.userDefinedMetadata;
      if (m && typeof m === 'object') metadata = m as Record<string, unknown>;
    }
  } catch {
    // not readable JSON: listed without metadata
  }
  return {
    path: relative(base, dir).split(sep).join('/'),
    sizeBytes: size,
    modifiedTime: new Date(mtime).toISOString(),
    files,
    ...(metadata ? { metadata } : {}),
  };
}

// ---------------------------------------------------------------------------------------
// ustar

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

/** One 512-byte ustar header for a regular file or directory. */
export function tarHeader(name: string, size: number, mtimeSec: number, dir = false): Buffer {
  const h = Buffer.alloc(512, 0);
  let prefix = '';
  let short = name;
  if (Buffer.byteLength(name) > 100) {
    const cut = name.lastIndexOf('/', 155);
    if (cut <= 0 || Buffer.byteLength(name.slice(cut + 1)) > 100) {
      throw new Error(`path too long for a tar archive: ${name}`);
    }
    prefix = name.slice(0, cut);
    short = name.slice(cut + 1);
  }
  h.write(short, 0, 100, 'utf8');
  h.write(octal(dir ? 0o755 : 0o644, 8), 100, 'ascii');
  h.write(octal(0, 8), 108, 'ascii');
  h.write(octal(0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(Math.floor(mtimeSec), 12), 136, 'ascii');
  h.write('        ', 148, 'ascii');
  h.write(dir ? '5' : '0', 156, 'ascii');
  h.write('ustar\0', 257, 'ascii');
  h.write('00', 263, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
  return h;
}

/**
 * Writes a ustar archive of the regular files directly in `dir` (no recursion, links
 * skipped), each under `<name>/`. Resolves when the archive is complete.
 */
export async function writeTar(dir: string, name: string, out: Writable): Promise<void> {
  const write = (chunk: Buffer) =>
    new Promise<void>((ok, fail) => {
      if (out.write(chunk)) ok();
      else {
        out.once('drain', ok);
        out.once('error', fail);
      }
    });
  const now = Date.now() / 1000;
  await write(tarHeader(`${name}/`, 0, now, true));
  const entries = (await readdir(dir, { withFileTypes: true }))
    .filter((e) => e.isFile() && !isHidden(e.name))
    .map((e) => e.name)
    .sort();
  for (const f of entries) {
    const path = join(dir, f);
    const s = await lstat(path);
    if (!s.isFile()) continue;
    await write(tarHeader(`${name}/${f}`, s.size, s.mtimeMs / 1000));
    let written = 0;
    for await (const chunk of createReadStream(path, { end: Math.max(0, s.size - 1) })) {
      const buf = chunk as Buffer;
      // never more than the header announced, even if the file grew meanwhile
      const part = buf.subarray(0, Math.max(0, s.size - written));
      written += part.length;
      if (part.length > 0) await write(part);
      if (written >= s.size) break;
    }
    if (written < s.size) await write(Buffer.alloc(s.size - written, 0));
    const pad = (512 - (s.size % 512)) % 512;
    if (pad) await write(Buffer.alloc(pad, 0));
  }
  await write(Buffer.alloc(1024, 0));
}
