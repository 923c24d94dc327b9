/**
 * Starts an engine worker thread from the module next to the caller: `<name>.js` in the
 * built package; from the TypeScript sources (tests, scripts) `<name>.ts` with a module
 * hook that transpiles on the fly.
 */
import { Worker } from 'node:worker_threads';

export function spawnWorker(callerUrl: string, name: string, workerData: unknown): Worker {
  const fromSource = callerUrl.endsWith('.ts');
  const url = new URL(`./${name}.${fromSource ? 'ts' : 'js'}`, callerUrl);
  const execArgv = fromSource
    ? ['--import', new URL('./ts-register.mjs', import.meta.url).href]
    : [];
  return new Worker(url, { workerData, execArgv });
}
