import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { constants, gunzip } from 'node:zlib';
import { DatasetError } from './errors.js';

const gunzipAsync = promisify(gunzip);

/** True when `bytes` starts with the gzip magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/** Reads a whole file; a missing or unreadable file becomes a {@link DatasetError}. */
export async function readDataFile(file: string): Promise<Uint8Array> {
  try {
    const buf = await readFile(file);
    return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'read error';
    throw new DatasetError(file, 'a readable file', {
      kind: 'missing',
      actual: code === 'ENOENT' ? 'no such file (ENOENT)' : String(code),
      cause: err,
    });
  }
}

/**
 * Reads a file and gunzips it when it is gzipped (detected by its magic bytes, not its
 * name). A gzip stream cut short decompresses to what it holds, so the caller's length
 * check reports the truncation in bytes; a damaged stream is a `corrupt` {@link DatasetError}.
 */
export async function readMaybeGzip(file: string): Promise<Uint8Array> {
  const raw = await readDataFile(file);
  if (!isGzip(raw)) return raw;
  try {
    // Z_SYNC_FLUSH: a truncated stream yields its decompressed prefix instead of an error.
    const out = await gunzipAsync(raw, { finishFlush: constants.Z_SYNC_FLUSH });
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (err) {
    throw new DatasetError(file, 'a valid gzip stream', {
      kind: 'corrupt',
      actual: (err as Error).message,
      cause: err,
    });
  }
}
