/**
 * The console's HTTP server (node:http): the pages and their bundled scripts, a small JSON
 * API, Server-Sent Events for live updates, downloads of exported models, and the
 * browser profiler's device registration and table upload (forwarded to the latency
 * profiler with the device's token).
 *
 *   GET  /                               the console page
 *   GET  /profiler                       the browser latency profiler
 *   GET  /assets/<file>                  scripts, styles, tfjs wasm binaries
 *   GET  /api/overview                   searches, training jobs, queue, devices, exports
 *   GET  /api/events                     SSE: "overview" (the same object) and "search" events
 *   GET  /api/searches/<id>[?device=D]   one search: Pareto front, winners, uniform baseline
 *   GET  /api/searches/<id>/widths?genes=a,b,...   per-layer widths vs the uniform network
 *   POST /api/searches/<id>/export       {"genes":[...]}: ExportNetwork under console/<id>/
 *   GET  /api/devices                    devices and their tables
 *   POST /api/devices                    {"name","description"}: RegisterDevice -> token
 *   GET  /api/devices/<id>/table?key=<LatencyTableKey JSON>[&version=N]
 *   POST /api/devices/<id>/tables        a core LatencyTable, "Authorization: Bearer <device token>"
 *   GET  /exports/<dir>/<file>           a file of an exported model
 *   GET  /exports/<dir>.tar              a whole exported model as a tar archive
 *   GET  /healthz
 */
import { createReadStream, existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectNats, createLogger, type Logger, natsSecurity } from '@metaprune/runtime';
import type { NatsConnection } from '@nats-io/transport-node';
import { HttpError } from './backends.js';
import { type ConsoleConfig, defaultConfig } from './config.js';
import { MODEL_JSON, resolveInsideRoot, writeTar } from './exports.js';
import { allowedHostNames, checkHost, checkWrite, readJsonObject } from './guard.js';
import { Hub } from './hub.js';
import type { Overview, SearchSummary } from './views.js';

/** Settings (every one optional: defaults as in CONFIG_SCHEMA) plus in-process hooks. */
export type ConsoleOptions = Partial<ConsoleConfig> & {
  logger?: Logger;
  /** Use this NATS connection instead of connecting (it is not closed on shutdown). */
  nc?: NatsConnection;
  /** Built web assets (default: the package's dist/web). */
  webRoot?: string;
};

export interface ConsoleHandle {
  /** http://host:port */
  readonly url: string;
  readonly port: number;
  readonly hub: Hub;
  /** Stops polling, ends event streams, closes the server and NATS (idempotent). */
  close(): Promise<void>;
}

/** dist/web of this package, from src/ (tests) and dist/ (built) alike. */
export function defaultWebRoot(): string {
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'web');
}

const MIME: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.bin': 'application/octet-stream',
  '.tar': 'application/x-tar',
};

/**
 * Headers of every response. Cross-origin isolation (COOP + COEP) gives the profiler page
 * precise timers and SharedArrayBuffer (multi-threaded tfjs wasm); the policy allows only
 * this origin, plus the wasm compilation and blob workers tfjs needs.
 */
const BASE_HEADERS: Record<string, string> = {
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-embedder-policy': 'require-corp',
  'cross-origin-resource-policy': 'same-origin',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'content-security-policy':
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval' blob:; worker-src 'self' blob:; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'",
};

/**
 * Largest latency table upload: a full ResNet-50 table at every scale pair is ~50k rows of
 * ~200 bytes of JSON, about 10 MB.
 */
const MAX_TABLE_BYTES = 16 * 1024 * 1024;

const PAGES: Record<string, string> = {
  '/': 'index.html',
  '/index.html': 'index.html',
  '/profiler': 'profiler.html',
  '/profiler.html': 'profiler.html',
};

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const data = JSON.stringify(body);
  res.writeHead(status, {
    ...BASE_HEADERS,
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(data),
  });
  res.end(data);
}

function bearerOf(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(.+)$/i.exec(h.trim()) : null;
  return m?.[1];
}

async function sendFile(
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  extra: Record<string, string> = {},
): Promise<void> {
  const s = await stat(path).catch(() => undefined);
  if (!s?.isFile()) throw new HttpError(404, 'not found');
  res.writeHead(200, {
    ...BASE_HEADERS,
    'content-type': MIME[extname(path)] ?? 'application/octet-stream',
    'content-length': s.size,
    'cache-control': 'no-cache',
    'last-modified': s.mtime.toUTCString(),
    ...extra,
  });
  if (req.method === 'HEAD') {
    res.end();
    return;
  }
  await new Promise<void>((ok, fail) => {
    const stream = createReadStream(path);
    stream.on('error', fail);
    res.on('close', ok);
    stream.pipe(res);
  });
}

export async function startConsole(options: ConsoleOptions = {}): Promise<ConsoleHandle> {
  const { logger: givenLogger, nc: givenNc, webRoot: givenWebRoot, ...settings } = options;
  const config: ConsoleConfig = Object.freeze({
    ...defaultConfig(),
    ...Object.fromEntries(Object.entries(settings).filter(([, v]) => v !== undefined)),
  }) as ConsoleConfig;
  const logger = givenLogger ?? createLogger({ service: 'console', level: config.logLevel });
  const webRoot = givenWebRoot ?? defaultWebRoot();
  let nc = givenNc;
  if (!nc && config.natsUrl.length > 0) {
    nc = await connectNats({
      servers: [...config.natsUrl],
      name: `console-${process.pid}`,
      ...natsSecurity(config),
      logger,
    });
  }
  const exportRoot = config.exportRoot ? resolve(config.exportRoot) : '';
  const hub = new Hub({
    ...(config.controller ? { controller: config.controller } : {}),
    ...(config.weightGenerator ? { weightGenerator: config.weightGenerator } : {}),
    ...(config.latencyProfiler ? { latencyProfiler: config.latencyProfiler } : {}),
    ...(nc ? { nc } : {}),
    ...(exportRoot ? { exportRoot } : {}),
    ...(config.registrationToken !== undefined
      ? { registrationToken: config.registrationToken }
      : {}),
    pollMs: config.poll,
    logger,
  });
  const streams = new Set<ServerResponse>();
  const hosts = allowedHostNames(config.host, config.allowedHosts);
  const accessToken = config.accessToken || undefined;
  /** Checks a write before its body is read, then reads the JSON object. */
  const writeBody = (req: IncomingMessage, limit: number) => {
    checkWrite(req, { token: accessToken, limit });
    return readJsonObject(req, limit);
  };

  const events = (req: IncomingMessage, res: ServerResponse): void => {
    if (streams.size >= config.maxEventStreams) {
      throw new HttpError(503, `too many event streams (at most ${config.maxEventStreams})`);
    }
    res.writeHead(200, {
      ...BASE_HEADERS,
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    res.socket?.setNoDelay(true);
    streams.add(res);
    const send = (event: string, data: unknown) => {
      if (!res.writableEnded) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    };
    res.write('retry: 2000\n\n');
    send('overview', hub.overview());
    const onOverview = (ov: Overview) => send('overview', ov);
    // at most one "search" event per search per 250 ms (the latest)
    const pending = new Map<string, SearchSummary>();
    const timers = new Map<string, NodeJS.Timeout>();
    const onSearch = (id: string, summary: SearchSummary) => {
      pending.set(id, summary);
      if (timers.has(id)) return;
      send('search', { id, summary });
      pending.delete(id);
      timers.set(
        id,
        setTimeout(() => {
          timers.delete(id);
          const latest = pending.get(id);
          if (latest) {
            pending.delete(id);
            send('search', { id, summary: latest });
          }
        }, 250),
      );
    };
    const ping = setInterval(() => {
      if (!res.writableEnded) res.write(': ping\n\n');
    }, 15_000);
    hub.on('overview', onOverview);
    hub.on('search', onSearch);
    const cleanup = () => {
      clearInterval(ping);
      for (const t of timers.values()) clearTimeout(t);
      hub.off('overview', onOverview);
      hub.off('search', onSearch);
      streams.delete(res);
    };
    req.on('close', cleanup);
    res.on('close', cleanup);
  };

  const route = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://console.invalid');
    const path = url.pathname;
    const method = req.method ?? 'GET';
    const get = method === 'GET' || method === 'HEAD';
    checkHost(req, hosts);

    const page = PAGES[path];
    if (page && get) {
      const file = join(webRoot, page);
      if (!existsSync(file)) {
        throw new HttpError(
          503,
          `the console's web assets are not built (${file} is missing): run "npm run build"`,
        );
      }
      return sendFile(req, res, file, { 'cache-control': 'no-store' });
    }
    if (path.startsWith('/assets/') && get) {
      const name = decodeURIComponent(path.slice('/assets/'.length));
      if (!/^[A-Za-z0-9._-]+$/.test(name) || name.startsWith('.')) {
        throw new HttpError(404, 'not found');
      }
      return sendFile(req, res, join(webRoot, name));
    }
    if (path === '/healthz' && get) return sendJson(res, 200, { ok: true });
    if (path === '/api/overview' && get) return sendJson(res, 200, hub.overview());
    if (path === '/api/events' && get) return events(req, res);

    const search = /^\/api\/searches\/([^/]+)(\/widths|\/export)?$/.exec(path);
    if (search) {
      const id = decodeURIComponent(search[1]!);
      if (!search[2] && get) {
        const device = url.searchParams.get('device') ?? '';
        return sendJson(res, 200, await hub.searchDetail(id, device ? { deviceId: device } : {}));
      }
      if (search[2] === '/widths' && get) {
        const text = url.searchParams.get('genes') ?? '';
        const genes = text
          .split(',')
          .filter((s) => s.trim() !== '')
          .map((s) => (/^\d+$/.test(s.trim()) ? Number(s) : s));
        return sendJson(res, 200, await hub.widths(id, genes));
      }
      if (search[2] === '/export' && method === 'POST') {
        const body = await writeBody(req, 1024 * 1024);
        return sendJson(res, 200, await hub.exportCandidate(id, body.genes));
      }
    }
    if (path === '/api/devices') {
      if (get) return sendJson(res, 200, { devices: await hub.devicesNow() });
      if (method === 'POST') {
        const body = await writeBody(req, 64 * 1024);
        if (typeof body.name !== 'string' || body.name === '') {
          throw new HttpError(400, 'name is required', 'name');
        }
        const description = typeof body.description === 'string' ? body.description : '';
        return sendJson(
          res,
          200,
          await hub.registerDevice(
            body.name,
            description,
            bearerOf(req),
            accessToken !== undefined,
          ),
        );
      }
    }
    const device = /^\/api\/devices\/([^/]+)\/(table|tables)$/.exec(path);
    if (device) {
      const id = decodeURIComponent(device[1]!);
      if (device[2] === 'table' && get) {
        let key: unknown;
        try {
          key = JSON.parse(url.searchParams.get('key') ?? '{}');
        } catch {
          throw new HttpError(400, 'key must be a LatencyTableKey as JSON', 'key');
        }
        const version = Number(url.searchParams.get('version') ?? '0');
        if (!Number.isSafeInteger(version) || version < 0) {
          throw new HttpError(400, 'version must be an integer >= 0', 'version');
        }
        return sendJson(res, 200, await hub.table(id, key, version));
      }
      if (device[2] === 'tables' && method === 'POST') {
        const token = bearerOf(req);
        if (!token) {
          throw new HttpError(401, 'the device token is required (Authorization: Bearer <token>)');
        }
        // the device token authorises the upload (checked by the profiler); the console's
        // own credentials are not involved, so no console token is asked for
        checkWrite(req, { token: undefined, limit: MAX_TABLE_BYTES });
        const table = await readJsonObject(req, MAX_TABLE_BYTES);
        return sendJson(res, 200, await hub.uploadTable(id, token, table));
      }
    }
    if (path.startsWith('/exports/') && get) {
      if (!exportRoot) throw new HttpError(404, 'this console serves no exports');
      const rel = decodeURIComponent(path.slice('/exports/'.length));
      if (rel.endsWith('.tar')) {
        const dir = await resolveInsideRoot(exportRoot, rel.slice(0, -'.tar'.length));
        if (!dir || !existsSync(join(dir, MODEL_JSON))) throw new HttpError(404, 'not found');
        res.writeHead(200, {
          ...BASE_HEADERS,
          'content-type': MIME['.tar']!,
          'content-disposition': `attachment; filename="${basename(dir)}.tar"`,
          'cache-control': 'no-store',
        });
        if (method === 'HEAD') {
          res.end();
          return;
        }
        await writeTar(dir, basename(dir), res);
        res.end();
        return;
      }
      const file = await resolveInsideRoot(exportRoot, rel);
      if (!file) throw new HttpError(404, 'not found');
      return sendFile(req, res, file, {
        'content-disposition': `attachment; filename="${basename(file)}"`,
      });
    }
    throw new HttpError(404, `no route for ${method} ${path}`);
  };

  const server: Server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      const e =
        err instanceof HttpError
          ? err
          : new HttpError(500, err instanceof Error ? err.message : String(err));
      if (e.status >= 500) logger.warn('request failed', { url: req.url, err });
      if (res.headersSent) {
        res.destroy();
        return;
      }
      // a refused body is not read: close the connection after the answer instead
      if (!req.complete) res.setHeader('connection', 'close');
      sendJson(res, e.status, { error: e.message, ...(e.field ? { field: e.field } : {}) });
    });
  });
  try {
    await new Promise<void>((ok, fail) => {
      server.once('error', fail);
      server.listen(config.port, config.host, () => {
        server.off('error', fail);
        ok();
      });
    });
    await hub.start();
  } catch (err) {
    server.close();
    await hub.close();
    if (!givenNc && nc) await nc.close().catch(() => {});
    throw err;
  }
  const port = (server.address() as AddressInfo).port;
  const host = config.host === '0.0.0.0' || config.host === '::' ? '127.0.0.1' : config.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info('console listening', { url });
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    hub,
    close() {
      closing ??= (async () => {
        for (const r of streams) r.end();
        await hub.close();
        await new Promise<void>((ok) => {
          server.close(() => ok());
          server.closeAllConnections();
        });
        if (!givenNc && nc) await nc.drain().catch(() => {});
      })();
      return closing;
    },
  };
}
