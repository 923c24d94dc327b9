/**
 * runServiceMain in real child processes: --help, bad settings (exit 2, one line naming the
 * setting), a failing start (exit 1, one line), the announce line, graceful SIGTERM.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const viteNode = join(root, 'node_modules', '.bin', 'vite-node');
const fixture = join(import.meta.dirname, 'fixtures', 'service-main-child.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the toy service; `signalOn` sends SIGTERM once stdout contains that text. */
function run(args: string[], env: Record<string, string> = {}, signalOn?: string): Promise<Run> {
  return new Promise((resolve) => {
    const proc = spawn(viteNode, [fixture, '--', ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    let signalled = false;
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (signalOn && !signalled && stdout.includes(signalOn)) {
        signalled = true;
        proc.kill('SIGTERM');
      }
    });
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

describe('runServiceMain (real child processes)', () => {
  it('--help lists every setting with its flag, env variable and default; exit 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('metaprune toy service');
    expect(r.stdout).toMatch(/--port\s+TOY_PORT\s+default 7000/);
    expect(r.stdout).toMatch(/--log-level\s+TOY_LOG_LEVEL\s+default info/);
  }, 60_000);

  it('a bad setting exits 2 with one line naming it and the allowed range', async () => {
    const r = await run([], { TOY_PORT: '70000' });
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(/^toy: .*TOY_PORT.*\[1, 65535\].*"70000"/);
    const flag = await run(['--port', 'x']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toContain('--port');
    const positional = await run(['serve']);
    expect(positional.code).toBe(2);
    expect(positional.stderr).toContain('unexpected argument serve');
  }, 120_000);

  it('a failing start exits 1 with one line, no stack trace', async () => {
    const r = await run([], { FAIL_START: '1' });
    expect(r.code).toBe(1);
    expect(lines(r.stderr)).toEqual(['toy: cannot bind: address in use']);
  }, 60_000);

  it('announces one JSON line once started; SIGTERM closes it and exits 0', async () => {
    const r = await run(['--port', '7123'], {}, '"started":true');
    expect(r.code).toBe(0);
    const announce = lines(r.stdout).find((l) => l.includes('"started"'));
    expect(JSON.parse(announce as string)).toEqual({ service: 'toy', port: 7123, started: true });
    expect(r.stdout).toContain('closed 7123');
  }, 60_000);
});
