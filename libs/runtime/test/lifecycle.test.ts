import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { onShutdownSignals } from '../src/index.js';

const root = join(import.meta.dirname, '..', '..', '..');
const viteNode = join(root, 'node_modules', '.bin', 'vite-node');
const fixture = join(import.meta.dirname, 'fixtures', 'shutdown-child.ts');

interface Child {
  proc: ChildProcess;
  out: () => string;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function startChild(env: Record<string, string>): Promise<Child> {
  const proc = spawn(viteNode, [fixture], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  proc.stderr?.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const until = Date.now() + 30_000;
  while (!out.includes('ready\n')) {
    if (Date.now() > until || proc.exitCode !== null)
      throw new Error(`child did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  return { proc, out: () => out, exit };
}

describe('onShutdownSignals (real child processes)', () => {
  it('SIGTERM runs the handler once and exits 0', async () => {
    const c = await startChild({ HANDLER_MS: '200' });
    c.proc.kill('SIGTERM');
    const { code } = await c.exit;
    expect(code).toBe(0);
    expect(c.out()).toContain('handler SIGTERM');
    expect(c.out()).toContain('handler done');
    expect(c.out()).toContain('"msg":"shutdown complete"');
  });

  it('SIGINT works the same way', async () => {
    const c = await startChild({});
    c.proc.kill('SIGINT');
    expect((await c.exit).code).toBe(0);
    expect(c.out()).toContain('handler SIGINT');
  });

  it('exits 1 when the handler outlives the grace period', async () => {
    const c = await startChild({ HANDLER_MS: '10000', GRACE_MS: '300' });
    const t0 = Date.now();
    c.proc.kill('SIGTERM');
    const { code } = await c.exit;
    expect(code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(c.out()).not.toContain('handler done');
    expect(c.out()).toContain('grace period');
  });

  it('a second signal forces exit 1 at once', async () => {
    const c = await startChild({ HANDLER_MS: '10000', GRACE_MS: '20000' });
    c.proc.kill('SIGTERM');
    while (!c.out().includes('handler SIGTERM')) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    c.proc.kill('SIGTERM');
    expect((await c.exit).code).toBe(1);
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(c.out().match(/handler SIGTERM/g)).toHaveLength(1);
  });

  it('exits 1 when the handler throws', async () => {
    const c = await startChild({ HANDLER_FAIL: '1' });
    c.proc.kill('SIGTERM');
    expect((await c.exit).code).toBe(1);
    expect(c.out()).toContain('shutdown failed');
  });
});

describe('onShutdownSignals (in process)', () => {
  it('trigger() runs the handler once; dispose() removes the listeners', async () => {
    const codes: number[] = [];
    let calls = 0;
    const before = process.listenerCount('SIGTERM');
    const { dispose, trigger } = onShutdownSignals(
      async () => {
        calls++;
      },
      { exit: (c) => codes.push(c), graceMs: 1000 },
    );
    expect(process.listenerCount('SIGTERM')).toBe(before + 1);
    await trigger();
    expect(calls).toBe(1);
    expect(codes).toEqual([0]);
    dispose();
    expect(process.listenerCount('SIGTERM')).toBe(before);
  });
});
