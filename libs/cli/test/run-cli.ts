import { spawn } from 'node:child_process';
import { join } from 'node:path';

/** The built CLI entry point, as users run it. */
export const CLI = join(import.meta.dirname, '..', 'dist', 'main.js');

/**
 * Runs the CLI in a real process, asynchronously, so the test worker keeps answering
 * vitest meanwhile (a blocked worker times out vitest's RPC on a loaded machine).
 */
export function runCli(
  ...args: string[]
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((done) => {
    const p = spawn(process.execPath, [CLI, ...args]);
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => {
      out += d;
    });
    p.stderr.on('data', (d) => {
      err += d;
    });
    p.on('close', (code) => done({ code, out, err }));
  });
}
