/**
 * Static checks of the root Dockerfile, for machines without a Docker engine: every service
 * has a target (and the tensor services a CUDA one) that runs its built main.js as a
 * non-root user, exposes and health-checks the port its config listens on, and sets only
 * environment variables its config schema knows.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, describeSettings, loadConfig } from '@metaprune/runtime';
import type { ServiceSpec } from './services.js';

export interface Instruction {
  keyword: string;
  args: string;
  line: number;
}

export interface Stage {
  name: string;
  /** Image or earlier stage it starts from (ARGs expanded). */
  from: string;
  instructions: Instruction[];
}

export interface Dockerfile {
  args: Record<string, string>;
  stages: Stage[];
}

/** Parses instructions (continuations joined, comments dropped) into stages. */
export function parseDockerfile(text: string): Dockerfile {
  const logical: Instruction[] = [];
  let buffer = '';
  let start = 0;
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (buffer === '' && (trimmed === '' || trimmed.startsWith('#'))) return;
    if (buffer !== '' && trimmed.startsWith('#')) return;
    if (buffer === '') start = i + 1;
    if (trimmed.endsWith('\\')) {
      buffer += `${trimmed.slice(0, -1)} `;
      return;
    }
    const full = (buffer + trimmed).trim();
    buffer = '';
    if (full === '') return;
    const m = /^(\S+)\s*(.*)$/s.exec(full)!;
    logical.push({ keyword: m[1]!.toUpperCase(), args: m[2]!.replace(/\s+/g, ' '), line: start });
  });

  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  const expand = (s: string): string =>
    s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => {
      const key = (a ?? b)!;
      return args[key] ?? '';
    });
  for (const ins of logical) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile line ${ins.line}: cannot parse FROM ${ins.args}`);
      stages.push({ name: m[2] ?? `#${stages.length}`, from: expand(m[1]!), instructions: [] });
    } else if (stages.length === 0) {
      if (ins.keyword === 'ARG') {
        const [name, value = ''] = ins.args.split('=', 2);
        args[name!.trim()] = value.trim();
      }
    } else {
      stages[stages.length - 1]!.instructions.push(ins);
    }
  }
  return { args, stages };
}

/** The stage and the stages it builds on, nearest first. */
export function stageChain(df: Dockerfile, target: string): Stage[] {
  const chain: Stage[] = [];
  let current = df.stages.find((s) => s.name === target);
  while (current && !chain.includes(current)) {
    chain.push(current);
    const from = current.from;
    current = df.stages.find((s) => s.name === from);
  }
  return chain;
}

/** The last value of an instruction along the chain (what the image ends up with). */
export function effective(chain: Stage[], keyword: string): Instruction | undefined {
  for (const stage of chain) {
    const found = stage.instructions.filter((i) => i.keyword === keyword);
    if (found.length > 0) return found[found.length - 1];
  }
  return undefined;
}

/** ENV of the chain, outermost base first so nearer stages override. */
export function effectiveEnv(chain: Stage[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const stage of [...chain].reverse()) {
    for (const i of stage.instructions.filter((x) => x.keyword === 'ENV')) {
      for (const m of i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)) {
        env[m[1]!] = m[2]!.replace(/^"|"$/g, '');
      }
    }
  }
  return env;
}

function jsonArgs(ins: Instruction | undefined, prefix?: RegExp): string[] | undefined {
  if (!ins) return undefined;
  const text = prefix ? ins.args.replace(prefix, '').trim() : ins.args;
  try {
    const parsed: unknown = JSON.parse(text);
    return Array.isArray(parsed) && parsed.every((x) => typeof x === 'string') ? parsed : undefined;
  } catch {
    return undefined;
  }
}

export interface DockerTarget {
  service: ServiceSpec;
  target: string;
  gpu: boolean;
}

export function dockerTargets(services: readonly ServiceSpec[]): DockerTarget[] {
  const gpu = new Set(['weight-generator', 'evaluator']);
  return services.flatMap((service) => [
    { service, target: service.name, gpu: false },
    ...(gpu.has(service.name) ? [{ service, target: `${service.name}-gpu`, gpu: true }] : []),
  ]);
}

/** Problems of the Dockerfile against the services; `root` is the repository root. */
export function checkDockerfile(
  text: string,
  services: readonly ServiceSpec[],
  root: string,
): string[] {
  const problems: string[] = [];
  const df = parseDockerfile(text);
  const allRuns = (chain: Stage[]): string =>
    chain
      .flatMap((s) => s.instructions)
      .filter((i) => i.keyword === 'RUN')
      .map((i) => i.args)
      .join('\n');

  const build = df.stages.find((s) => s.name === 'build');
  const buildRuns = build ? allRuns([build]) : '';
  if (!/\bnpm ci\b/.test(buildRuns)) problems.push('stage build: no `npm ci`');
  if (!/turbo run build/.test(buildRuns)) problems.push('stage build: no `turbo run build`');
  if (!/npm prune --omit=dev/.test(buildRuns)) {
    problems.push('stage build: dev dependencies are not pruned (npm prune --omit=dev)');
  }

  for (const { service, target, gpu } of dockerTargets(services)) {
    const at = `target ${target}`;
    const chain = stageChain(df, target);
    if (chain.length === 0) {
      problems.push(`${at}: missing`);
      continue;
    }
    const base = chain[chain.length - 1]!.from;
    if (gpu ? !base.startsWith('nvidia/cuda:') : !/^node:20-bookworm-slim/.test(base)) {
      problems.push(`${at}: based on ${base}`);
    }
    if (gpu) {
      const copiedFrom = chain
        .flatMap((s) => s.instructions)
        .filter((i) => i.keyword === 'COPY')
        .map((i) => /--from=(\S+)/.exec(i.args)?.[1])
        .filter((s): s is string => s !== undefined)
        .flatMap((s) => stageChain(df, s));
      if (!/@tensorflow\/tfjs-node-gpu/.test(allRuns([...chain, ...copiedFrom]))) {
        problems.push(`${at}: does not install @tensorflow/tfjs-node-gpu`);
      }
    }
    const user = effective(chain, 'USER')?.args ?? '0';
    const [uid, gid] = user.split(':');
    if (!/^[1-9]\d*$/.test(uid ?? '') || (gid !== undefined && !/^[1-9]\d*$/.test(gid))) {
      problems.push(`${at}: USER ${user} must be a numeric non-root uid[:gid]`);
    }

    const cmd = jsonArgs(effective(chain, 'CMD'));
    const main = `services/${service.name}/dist/main.js`;
    if (cmd?.[0] !== 'node' || cmd[1] !== main) {
      problems.push(`${at}: CMD must be ["node", "${main}"]`);
    }
    if (!existsSync(join(root, 'services', service.name, 'src', 'main.ts'))) {
      problems.push(`${at}: services/${service.name}/src/main.ts does not exist`);
    }

    const settings = describeSettings(service.schema, { envPrefix: service.envPrefix });
    const portSetting = settings.find((s) => s.key === service.portKey)!;
    const hc = jsonArgs(effective(chain, 'HEALTHCHECK'), /^.*?\bCMD\b/);
    if (!hc) problems.push(`${at}: no HEALTHCHECK CMD [...] in JSON form`);
    else {
      const [node, script, portEnv, port] = hc;
      if (node !== 'node' || script !== '/app/deploy/docker/healthcheck.mjs') {
        problems.push(`${at}: HEALTHCHECK must run node /app/deploy/docker/healthcheck.mjs`);
      }
      if (portEnv !== portSetting.env || port !== portSetting.default) {
        problems.push(
          `${at}: HEALTHCHECK checks ${portEnv}/${port}, the service listens on ${portSetting.env} (default ${portSetting.default})`,
        );
      }
    }
    const exposed = (effective(chain, 'EXPOSE')?.args ?? '').split(' ');
    if (!exposed.includes(portSetting.default)) {
      problems.push(`${at}: EXPOSE ${exposed.join(' ')} lacks ${portSetting.default}`);
    }

    const env = effectiveEnv(chain);
    const known = new Set(settings.map((s) => s.env));
    const serviceEnv: Record<string, string> = {};
    for (const [name, value] of Object.entries(env)) {
      if (name.startsWith(service.envPrefix)) {
        if (!known.has(name))
          problems.push(`${at}: ENV ${name} is not a setting of ${service.name}`);
        serviceEnv[name] = value;
      } else if (services.some((s) => name.startsWith(s.envPrefix))) {
        problems.push(`${at}: ENV ${name} belongs to another service`);
      }
    }
    try {
      const cfg = loadConfig(service.schema, { env: serviceEnv, envPrefix: service.envPrefix });
      if (cfg[service.hostKey as keyof typeof cfg] !== '0.0.0.0') {
        problems.push(`${at}: ${service.hostKey} must be 0.0.0.0 in the image`);
      }
    } catch (err) {
      problems.push(
        `${at}: ENV rejected by the service: ${err instanceof ConfigError ? err.message : String(err)}`,
      );
    }
  }
  if (!existsSync(join(root, 'deploy', 'docker', 'healthcheck.mjs'))) {
    problems.push('deploy/docker/healthcheck.mjs is missing');
  }
  return problems;
}

/** The .dockerignore keeps dependencies and build output out, and nothing the build needs. */
export function checkDockerignore(text: string): string[] {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const problems: string[] = [];
  for (const needed of ['**/node_modules', '**/dist']) {
    if (!lines.includes(needed)) problems.push(`.dockerignore: add ${needed}`);
  }
  for (const kept of ['libs', 'services', 'proto', 'deploy', 'tests', 'buf.yaml', 'package.json']) {
    if (lines.some((l) => l.replace(/^\/|\/$/g, '') === kept || l === `${kept}/**`)) {
      problems.push(`.dockerignore: ${kept} is needed by the build`);
    }
  }
  return problems;
}
