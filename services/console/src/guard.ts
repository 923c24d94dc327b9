/**
 * What the console checks before it does anything for a request (issue 15): it holds
 * credentials of its own (a bearer token for the services, the profiler's registration
 * token), so a request must not be able to borrow them.
 *
 * - Host allow-list: a page on another origin can resolve its own name to 127.0.0.1 (DNS
 *   rebinding) and then read the API; only the names the console is reached by are served.
 * - State-changing requests (POST): JSON content type only (a cross-site form or a
 *   `text/plain` fetch cannot send it without a CORS preflight, which is never granted), a
 *   same-origin `Origin` when the browser sends one, and — when the console has an access
 *   token — that token in `x-metaprune-token`, checked before the body is read.
 * - Bodies: Content-Length over the limit is refused before reading, and the limit is also
 *   enforced while reading (chunked bodies); only a JSON object is accepted.
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { HttpError } from './backends.js';

/** Header carrying the console's access token (custom: never sent cross-site without CORS). */
export const CONSOLE_TOKEN_HEADER = 'x-metaprune-token';

const LOOPBACK = ['localhost', '127.0.0.1', '[::1]', '::1'];

/** Host names served: loopback names, the listen host, and the configured ones. */
export function allowedHostNames(listenHost: string, extra: readonly string[]): Set<string> {
  const names = new Set<string>(LOOPBACK);
  if (listenHost && listenHost !== '0.0.0.0' && listenHost !== '::') names.add(listenHost);
  for (const h of extra) if (h.trim()) names.add(h.trim().toLowerCase());
  return names;
}

function hostNameOf(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(0, h.indexOf(']') + 1);
  return h.replace(/:\d+$/, '');
}

/** 421 unless the Host header names this console. */
export function checkHost(req: IncomingMessage, allowed: ReadonlySet<string>): void {
  const host = req.headers.host;
  if (!host || !allowed.has(hostNameOf(host))) {
    throw new HttpError(421, `host ${JSON.stringify(host ?? '')} is not served by this console`);
  }
}

function sameSecret(given: string, want: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(want);
  return a.length === b.length && timingSafeEqual(a, b);
}

/**
 * Checks a state-changing request before its body is read: content type, origin, access
 * token, declared length. `token`: the console's access token (undefined: none required).
 */
export function checkWrite(
  req: IncomingMessage,
  opts: { token: string | undefined; limit: number },
): void {
  const type = String(req.headers['content-type'] ?? '')
    .split(';')[0]!
    .trim()
    .toLowerCase();
  if (type !== 'application/json') {
    throw new HttpError(415, 'state-changing requests need content-type application/json');
  }
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let originHost = '';
    try {
      originHost = new URL(origin).host.toLowerCase();
    } catch {
      // "null" (sandboxed frames, file://) and garbage: not this origin
    }
    if (originHost !== String(req.headers.host ?? '').toLowerCase()) {
      throw new HttpError(403, `cross-origin request from ${JSON.stringify(origin)} refused`);
    }
  }
  if (req.headers['sec-fetch-site'] === 'cross-site') {
    throw new HttpError(403, 'cross-site request refused');
  }
  if (opts.token !== undefined) {
    const given = req.headers[CONSOLE_TOKEN_HEADER];
    if (typeof given !== 'string' || given === '') {
      throw new HttpError(401, `this console needs its access token (${CONSOLE_TOKEN_HEADER})`);
    }
    if (!sameSecret(given, opts.token)) {
      throw new HttpError(403, 'the console access token is not accepted');
    }
  }
  const declared = Number(req.headers['content-length'] ?? 0);
  if (declared > opts.limit) throw new HttpError(413, `request body over ${opts.limit} bytes`);
}

/** Reads a JSON object body, at most `limit` bytes (checked while reading). */
export async function readJsonObject(
  req: IncomingMessage,
  limit: number,
): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new HttpError(413, `request body over ${limit} bytes`);
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'the request body is not valid JSON');
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) {
    throw new HttpError(400, 'the request body must be a JSON object');
  }
  return body as Record<string, unknown>;
}
