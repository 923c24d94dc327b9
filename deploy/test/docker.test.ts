/**
 * No Docker engine runs here, so the Dockerfile is checked statically against the services,
 * and its HEALTHCHECK script is run for real against a gRPC health server.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { type GrpcServerHandle, startGrpcServer } from '@metaprune/runtime';
import { freePort } from '@metaprune/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkDockerfile,
  checkDockerignore,
  DEPLOY_DIR,
  dockerTargets,
  parseDockerfile,
  parseImage,
  REPO_ROOT,
  renderKustomization,
  SERVICES,
  stageChain,
  workloads,
} from '../src/index.js';

const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
const dockerignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8');
const check = (text: string): string => checkDockerfile(text, SERVICES, REPO_ROOT).join('\n');

describe('Dockerfile', () => {
  it('has a non-root, health-checked target per service and CUDA targets for the tensor services', () => {
    expect(checkDockerfile(dockerfile, SERVICES, REPO_ROOT)).toEqual([]);
    expect(checkDockerignore(dockerignore)).toEqual([]);
    const df = parseDockerfile(dockerfile);
    expect(dockerTargets(SERVICES).map((t) => t.target)).toEqual([
      'weight-generator',
      'weight-generator-gpu',
      'controller',
      'evaluator',
      'evaluator-gpu',
      'latency-profiler',
    ]);
    expect(stageChain(df, 'evaluator-gpu').map((s) => s.name)).toEqual([
      'evaluator-gpu',
      'runtime-gpu',
    ]);
    expect(stageChain(df, 'runtime-gpu')[0]?.from).toBe(
      'nvidia/cuda:11.8.0-cudnn8-runtime-ubuntu22.04',
    );
    expect(stageChain(df, 'controller').at(-1)?.from).toBe('node:20-bookworm-slim');
    expect(df.stages.map((s) => s.name)).toContain('cli');
  });

  it('builds the images the manifests run', () => {
    const targets = new Set(parseDockerfile(dockerfile).stages.map((s) => s.name));
    const images = (dir: string) =>
      workloads(renderKustomization(join(DEPLOY_DIR, dir)))
        .filter((w) => w.object.kind === 'Deployment')
        .flatMap((w) => w.pod.containers)
        .map((c) => parseImage(c.image ?? ''));
    for (const img of images('base')) {
      expect(img.name.startsWith('metaprune/')).toBe(true);
      expect(targets).toContain(img.name.slice('metaprune/'.length));
    }
    for (const img of images('overlays/gpu')) {
      const target =
        img.name.slice('metaprune/'.length) + (img.tag?.endsWith('-gpu') ? '-gpu' : '');
      expect(targets).toContain(target);
    }
  });

  const broken: [string, (t: string) => string, RegExp][] = [
    [
      'a root user',
      (t) =>
        t.replace(
          'USER 10001:10001\nENTRYPOINT ["/usr/bin/tini", "--"]\n\n# ---- GPU dependencies',
          'USER root\nENTRYPOINT ["/usr/bin/tini", "--"]\n\n# ---- GPU dependencies',
        ),
      /target controller: USER root must be a numeric non-root/,
    ],
    [
      'a health check on the wrong setting',
      (t) => t.replace('"CONTROLLER_PORT", "50052"', '"CONTROLLER_HTTP_PORT", "50052"'),
      /HEALTHCHECK checks CONTROLLER_HTTP_PORT\/50052, the service listens on CONTROLLER_PORT/,
    ],
    [
      'a health check on the wrong port',
      (t) =>
        t.replace(
          '"EVALUATOR_HEALTH_PORT", "50054"]\nCMD ["node", "services/evaluator',
          '"EVALUATOR_HEALTH_PORT", "50055"]\nCMD ["node", "services/evaluator',
        ),
      /target evaluator: HEALTHCHECK checks EVALUATOR_HEALTH_PORT\/50055/,
    ],
    [
      'a wrong entry point',
      (t) =>
        t.replace(
          'CMD ["node", "services/latency-profiler/dist/main.js"]',
          'CMD ["node", "services/latency-profiler/main.js"]',
        ),
      /target latency-profiler: CMD must be/,
    ],
    [
      'an unknown setting',
      (t) =>
        t.replace('ENV CONTROLLER_HOST=0.0.0.0', 'ENV CONTROLLER_HOST=0.0.0.0 CONTROLLER_LISTEN=x'),
      /ENV CONTROLLER_LISTEN is not a setting of controller/,
    ],
    [
      'a loopback listener',
      (t) => t.replace('ENV LATENCY_PROFILER_HOST=0.0.0.0', 'ENV LATENCY_PROFILER_HOST=127.0.0.1'),
      /target latency-profiler: host must be 0.0.0.0/,
    ],
    [
      'no tfjs-node-gpu',
      (t) => t.replaceAll('@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'),
      /target evaluator-gpu: does not install @tensorflow\/tfjs-node-gpu/,
    ],
    [
      'a missing target',
      (t) => t.replace('AS evaluator-gpu', 'AS evaluator-cuda'),
      /target evaluator-gpu: missing/,
    ],
    [
      'dev dependencies kept',
      (t) => t.replace('npm prune --omit=dev', 'true'),
      /dev dependencies are not pruned/,
    ],
    [
      'a GPU target on a CPU base',
      (t) =>
        t.replace(
          'FROM runtime-gpu AS weight-generator-gpu',
          'FROM runtime AS weight-generator-gpu',
        ),
      /target weight-generator-gpu: based on node:20-bookworm-slim/,
    ],
  ];
  for (const [what, mutate, expected] of broken) {
    it(`catches ${what}`, () => {
      const text = mutate(dockerfile);
      expect(text).not.toBe(dockerfile);
      expect(check(text)).toMatch(expected);
    });
  }

  it('catches a .dockerignore that drops what the build needs or keeps node_modules', () => {
    expect(checkDockerignore(`${dockerignore}\nproto\n`).join()).toMatch(/proto is needed/);
    expect(checkDockerignore(dockerignore.replace('**/node_modules\n', '')).join()).toMatch(
      /add \*\*\/node_modules/,
    );
  });
});

describe('deploy/docker/healthcheck.mjs', () => {
  const script = join(DEPLOY_DIR, 'docker', 'healthcheck.mjs');
  let server: GrpcServerHandle;
  const run = async (
    env: Record<string, string>,
    args: string[],
  ): Promise<{ code: number; stderr: string }> => {
    try {
      await promisify(execFile)(process.execPath, [script, ...args], {
        env: { ...process.env, ...env },
        timeout: 20_000,
      });
      return { code: 0, stderr: '' };
    } catch (err) {
      const e = err as { code?: number; stderr?: string };
      return { code: e.code ?? -1, stderr: e.stderr ?? '' };
    }
  };

  beforeAll(async () => {
    server = await startGrpcServer({ host: '127.0.0.1', port: 0, services: [] });
  });
  afterAll(async () => {
    await server?.shutdown(1000);
  });

  it('exits 0 while the server is SERVING, on the port its setting names', async () => {
    expect(
      await run({ TEST_SERVICE_PORT: String(server.port) }, ['TEST_SERVICE_PORT', '1']),
    ).toEqual({
      code: 0,
      stderr: '',
    });
    // the setting unset: the default port
    expect((await run({}, ['TEST_SERVICE_PORT_UNSET', String(server.port)])).code).toBe(0);
  });

  it('exits 1 when nothing listens, and on bad usage', async () => {
    const closed = await freePort();
    const down = await run({}, ['X_PORT', String(closed)]);
    expect(down.code).toBe(1);
    expect(down.stderr).toMatch(new RegExp(`127.0.0.1:${closed} failed`));
    const usage = await run({}, ['X_PORT', '0']);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toMatch(/usage/);
  });

  it('exits 1 once the server reports NOT_SERVING (shutting down)', async () => {
    server.health.setAll('NOT_SERVING');
    const r = await run({}, ['X_PORT', String(server.port)]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/NOT_SERVING/);
  });
});
