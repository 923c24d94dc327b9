/**
 * `metaprune up` as a supervisor (issue 15): a crashed service is restarted on its address
 * and reported; a SIGKILLed `up` leaves no orphans (services watch a pipe from it, nats-server
 * runs under a guardian); secrets and the NATS store persist in --home.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

/** Pids of every living descendant of `pid` (from /proc). */
function descendants(pid: number): number[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (fields[0] !== 'Z') parent.set(Number(d), Number(fields[1]));
    } catch {
      // gone meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    for (const [c, pp] of parent) {
      if (pp === p) {
        out.push(c);
        walk(c);
      }
    }
  };
  walk(pid);
  return out;
}
const alive = (pid: number) => {
  try {
    const state = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0];
    return state !== undefined && state !== 'Z';
  } catch {
    return false;
  }
};
const cmdline = (pid: number) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
};

describe('metaprune up supervises its services', () => {
  const home = mkdtempSync(join(tmpdir(), 'metaprune-up-sup-'));
  afterAll(() => rmSync(home, { recursive: true, force: true }));

  it('restarts a crashed service on its address, and SIGKILL of up leaves no orphans', async () => {
    const cli = resolve(import.meta.dirname, '../../libs/cli/dist/main.js');
    const child = spawn(
      process.execPath,
      [cli, 'up', '--evaluators', '1', '--home', home, '--console-port', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, METAPRUNE_STACK_FILE: '' } },
    );
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const until = async (cond: () => boolean, ms: number, what: string) => {
      const end = Date.now() + ms;
      while (!cond()) {
        if (Date.now() > end) throw new Error(`${what}\n${stdout}\n${stderr}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    let pids: number[] = [];
    try {
      await until(() => /^ready$/m.test(stdout), 120_000, 'no "ready" line');
      const wgAddress = /^weight-generator\s+(\S+)$/m.exec(stdout)![1]!;
      pids = descendants(child.pid!);
      const wg = pids.find((p) => cmdline(p).includes('weight-generator'))!;
      expect(wg).toBeDefined();
      expect(pids.some((p) => cmdline(p).includes('nats-server'))).toBe(true);
      expect(existsSync(join(home, 'nats'))).toBe(true); // the store persists in --home

      process.kill(wg, 'SIGKILL');
      await until(
        () => stderr.includes(`weight-generator restarted at ${wgAddress}`),
        60_000,
        'the weight generator was not restarted on its address',
      );
      expect(stderr).toMatch(/weight-generator exited \(code null, signal SIGKILL\)/);
      expect(child.exitCode).toBeNull(); // the stack lives on

      pids = descendants(child.pid!);
      expect(pids.length).toBeGreaterThanOrEqual(5);
      child.kill('SIGKILL');
      await until(() => pids.every((p) => !alive(p)), 30_000, 'orphans left behind');
    } finally {
      child.kill('SIGKILL');
      for (const p of pids) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
  }, 240_000);
});
