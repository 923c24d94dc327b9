/**
 * Child-process entry of one ExportNetwork (spawned by ProcessExporter): BN recalibration
 * and model building are long synchronous tensor work that must not block the service's
 * event loop (gRPC keepalives, health checks, other calls). Receives one `export` message,
 * answers `done` or `failed`, exits; exits too if the parent goes away.
 */
import type { ExportRequest } from './types.js';

export type ToExportChild = { type: 'export'; request: ExportRequest };
export type FromExportChild = { type: 'done' } | { type: 'failed'; error: string; stack?: string };

function send(msg: FromExportChild): Promise<void> {
  return new Promise((resolve) => {
    if (!process.connected || !process.send) return resolve();
    process.send(msg, undefined, {}, () => resolve());
  });
}

let started = false;
process.on('message', (raw) => {
  const msg = raw as ToExportChild;
  if (msg.type !== 'export' || started) return;
  started = true;
  void (async () => {
    try {
      const { exportCandidate } = await import('./engine-adapter.js');
      await exportCandidate(msg.request);
      await send({ type: 'done' });
      process.exit(0);
    } catch (err) {
      const e = err instanceof Error ? err : new Error(String(err));
      await send({ type: 'failed', error: e.message, ...(e.stack ? { stack: e.stack } : {}) });
      process.exit(1);
    }
  })();
});
process.on('disconnect', () => process.exit(1));
process.on('SIGINT', () => {});
process.on('SIGTERM', () => {});
