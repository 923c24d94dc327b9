#!/usr/bin/env node
// Self-bootstrap for a fresh Debian machine with Node 20 (run as root), fast when all is
// already there: system packages -> npm dependencies -> code generation + build.
// Only Node built-ins here: this runs before any dependency is installed.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureBinLinks } from './bin-links.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = new Set(process.argv.slice(2));
const quiet = args.has('--quiet');
const log = (msg) => {
  if (!quiet) process.stderr.write(`[setup] ${msg}\n`);
};

function fail(msg) {
  process.stderr.write(`setup: ${msg}\n`);
  process.exit(1);
}

function onPath(cmd) {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
}

// --- system packages -------------------------------------------------------------
const FASHION = '/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz';
const systemNeeds = [
  {
    pkg: 'nats-server',
    present: () => onPath('nats-server') || existsSync('/usr/sbin/nats-server'),
    why: 'message broker for the services and their tests',
  },
  {
    pkg: 'dataset-fashion-mnist',
    present: () => existsSync(FASHION),
    why: 'the Fashion-MNIST dataset',
  },
  {
    pkg: 'chromium',
    present: () => existsSync('/usr/bin/chromium'),
    why: "headless browser for the web console's end-to-end tests",
  },
];
if (args.has('--bench')) {
  systemNeeds.push({
    pkg: 'python3-torchvision',
    present: () =>
      spawnSync('/usr/bin/python3', ['-c', 'import torch, torchvision'], { stdio: 'ignore' })
        .status === 0,
    why: 'the PyTorch reference benchmark',
  });
}
const missing = systemNeeds.filter((n) => !n.present());
if (missing.length > 0) {
  const names = missing.map((m) => m.pkg);
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (onPath('apt-get') && isRoot) {
    log(`installing ${names.join(', ')} with apt-get`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    execFileSync('apt-get', ['update', '-qq'], { stdio: ['ignore', 'ignore', 'inherit'], env });
    execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...names], {
      stdio: ['ignore', 'ignore', 'inherit'],
      env,
    });
  } else {
    fail(
      `missing system packages: ${missing.map((m) => `${m.pkg} (${m.why})`).join('; ')}. ` +
        `Install them with your package manager (Debian/Ubuntu: apt-get install ${names.join(' ')}), ` +
        'or run this command as root on Debian so it can install them itself.',
    );
  }
  const still = missing.filter((n) => !n.present());
  if (still.length > 0) fail(`still missing after apt-get: ${still.map((m) => m.pkg).join(', ')}`);
}

// --- npm dependencies ------------------------------------------------------------
const lock = join(root, 'package-lock.json');
const stamp = join(root, 'node_modules', '.metaprune-deps');
const manifestHash = () => {
  const h = createHash('sha256');
  for (const f of [lock, join(root, 'package.json')]) if (existsSync(f)) h.update(readFileSync(f));
  return h.digest('hex');
};
if (!existsSync(stamp) || readFileSync(stamp, 'utf8') !== manifestHash()) {
  const cmd = existsSync(lock)
    ? ['ci', '--no-audit', '--no-fund']
    : ['install', '--no-audit', '--no-fund'];
  log(`npm ${cmd[0]}`);
  const r = spawnSync('npm', cmd, {
    cwd: root,
    stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'inherit'],
  });
  if (r.status !== 0) fail(`npm ${cmd[0]} failed (exit ${r.status})`);
  writeFileSync(stamp, manifestHash());
}

// --- code generation + build (turbo caches, so this is quick when nothing changed) --
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' };
log('codegen + build');
const b = spawnSync(
  join(root, 'node_modules', '.bin', 'turbo'),
  ['run', 'build', '--output-logs=errors-only'],
  {
    cwd: root,
    stdio: ['ignore', quiet ? 'ignore' : 'inherit', 'inherit'],
    env,
  },
);
if (b.status !== 0)
  fail(`build failed (exit ${b.status}); run "npx turbo run build" to see the errors`);

// `npx metaprune …` right after setup: the bins are committed launchers, so npm links them at
// install; repair the links where an earlier tree or an interrupted install left them out.
for (const name of ensureBinLinks(root)) log(`linked node_modules/.bin/${name}`);
