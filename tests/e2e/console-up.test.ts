/**
 * `metaprune up` serves the web console: it prints its URL among the endpoints, the page
 * and the API answer with the stack's services up, and SIGTERM stops it with the stack.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Overview } from '@metaprune/console';
import { describe, expect, it } from 'vitest';

describe('metaprune up serves the console', () => {
  it('prints "console http://127.0.0.1:PORT", serves the page, stops on SIGTERM', async () => {
    const home = mkdtempSync(join(tmpdir(), 'metaprune-up-console-'));
    const cli = resolve(import.meta.dirname, '../../libs/cli/dist/main.js');
    const child = spawn(
      process.execPath,
      [cli, 'up', '--evaluators', '1', '--home', home, '--console-port', '0'],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, METAPRUNE_STACK_FILE: '' } },
    );
    try {
      let stdout = '';
      await new Promise<void>((ok, fail) => {
        const timer = setTimeout(() => fail(new Error(`no "ready" line:\n${stdout}`)), 120_000);
        child.stdout.on('data', (d) => {
          stdout += d;
          if (/^ready$/m.test(stdout)) {
            clearTimeout(timer);
            ok();
          }
        });
        child.on('exit', (code) => fail(new Error(`up exited with ${code}:\n${stdout}`)));
      });
      const url = /^console\s+(http:\/\/127\.0\.0\.1:\d+)$/m.exec(stdout)?.[1];
      expect(url, stdout).toBeDefined();
      const page = await fetch(`${url}/`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('metaprune console');
      // every service of the stack reports as reachable within a few polls
      let ov: Overview | undefined;
      for (let i = 0; i < 50; i++) {
        ov = (await (await fetch(`${url}/api/overview`)).json()) as Overview;
        if (ov.services.every((s) => s.ok)) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(ov?.services.map((s) => [s.name, s.ok])).toEqual(
        expect.arrayContaining([
          ['controller', true],
          ['weight-generator', true],
          ['latency-profiler', true],
          ['nats', true],
        ]),
      );
      expect(ov?.exportsEnabled).toBe(true);
      const exited = new Promise<number | null>((ok) => child.on('exit', (code) => ok(code)));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    } finally {
      child.kill('SIGKILL');
      rmSync(home, { recursive: true, force: true });
    }
  }, 180_000);
});
