#!/usr/bin/env node
// Docker HEALTHCHECK of a metaprune service image: one grpc.health.v1.Health/Check of the
// whole server ('') on 127.0.0.1, through @metaprune/runtime's checkHealth.
//
//   node /app/deploy/docker/healthcheck.mjs PORT_ENV DEFAULT_PORT
//
// The port is the value of the service's own port setting PORT_ENV (e.g. CONTROLLER_PORT)
// when set, else DEFAULT_PORT. Exit 0 when SERVING, 1 otherwise (NOT_SERVING, no answer).
// Kubernetes ignores HEALTHCHECK: the manifests use native gRPC probes instead.
import { checkHealth } from '@metaprune/runtime';

const [portEnv, fallback] = process.argv.slice(2);
const port = (portEnv ? process.env[portEnv] : undefined) || fallback;
if (!port || !/^[1-9]\d*$/.test(port)) {
  process.stderr.write('usage: healthcheck.mjs PORT_ENV DEFAULT_PORT (a fixed, non-zero port)\n');
  process.exit(1);
}
const timeoutMs = Number(process.env.HEALTHCHECK_TIMEOUT_MS) || 3000;
try {
  const status = await checkHealth(`127.0.0.1:${port}`, { timeoutMs });
  if (status !== 'SERVING') {
    process.stderr.write(`health: ${status}\n`);
    process.exit(1);
  }
  process.exit(0);
} catch (err) {
  process.stderr.write(`health check of 127.0.0.1:${port} failed: ${err?.message ?? err}\n`);
  process.exit(1);
}
