/**
 * Phase: retraining jobs in child processes (`retrain-worker.js`), `concurrency` at a time,
 * with one live status line over all of them. An abort kills the running children.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { formatSeconds } from '../ui/progress.js';
import { bar, type Reporter } from './reporter.js';
import type { RetrainJob, RetrainOutcome, WorkerMessage } from './retrain-job.js';
import { throwIfAborted } from './session.js';

/** The built worker entry (the CLI package's dist, also when this module runs from src). */
export function retrainWorkerPath(): string {
  const require = createRequire(import.meta.url);
  return join(dirname(require.resolve('@metaprune/cli')), 'pipeline', 'retrain-worker.js');
}

export interface RetrainRunOptions {
  concurrency: number;
  reporter: Reporter;
  signal?: AbortSignal;
  label?: string;
  /** Told about every finished job (in completion order). */
  onDone?: (job: RetrainJob, outcome: RetrainOutcome) => void;
}

interface Running {
  job: RetrainJob;
  child: ChildProcess;
  fraction: number;
  phase: string;
  loss?: number;
}

/** Runs every job; resolves with the outcomes in job order, or rejects on the first failure. */
export async function runRetrains(
  jobs: readonly RetrainJob[],
  o: RetrainRunOptions,
): Promise<RetrainOutcome[]> {
  const worker = retrainWorkerPath();
  const outcomes = new Map<string, RetrainOutcome>();
  const running = new Map<string, Running>();
  const label = o.label ?? 'retrain';
  const t0 = Date.now();
  let next = 0;
  let failure: Error | undefined;

  const render = (force: boolean) => {
    const done = outcomes.size;
    const partial = [...running.values()].reduce((s, r) => s + r.fraction, 0);
    const frac = (done + partial) / Math.max(1, jobs.length);
    const elapsed = (Date.now() - t0) / 1000;
    const eta = frac > 0.02 ? (elapsed / frac) * (1 - frac) : Number.NaN;
    const now = [...running.values()]
      .map(
        (r) =>
          `${r.job.label} ${r.phase === 'eval' ? 'test' : `${Math.round(100 * r.fraction)}%`}${r.loss !== undefined && r.phase !== 'eval' ? ` loss ${r.loss.toFixed(2)}` : ''}`,
      )
      .join(' | ');
    o.reporter.status(
      `${label} ${bar(frac)} ${done}/${jobs.length} done  ETA ${formatSeconds(eta)}  ${now}`,
      force,
    );
  };

  const runOne = (job: RetrainJob): Promise<void> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [worker, JSON.stringify(job)], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: process.env,
      });
      const r: Running = { job, child, fraction: 0, phase: 'train' };
      running.set(job.id, r);
      let out = '';
      let err = '';
      let error: string | undefined;
      child.stdout?.on('data', (chunk: Buffer) => {
        out += chunk.toString('utf8');
        let nl = out.indexOf('\n');
        while (nl >= 0) {
          const line = out.slice(0, nl).trim();
          out = out.slice(nl + 1);
          nl = out.indexOf('\n');
          let m: WorkerMessage;
          try {
            m = JSON.parse(line) as WorkerMessage;
          } catch {
            continue;
          }
          if (m.type === 'progress') {
            r.phase = m.phase;
            r.fraction = m.phase === 'eval' ? 0.99 : Math.min(0.99, m.fraction);
            if (m.loss !== undefined) r.loss = m.loss;
            render(false);
          } else if (m.type === 'result') {
            const { type: _t, ...outcome } = m;
            outcomes.set(job.id, outcome);
            o.onDone?.(job, outcome);
          } else if (m.type === 'error') {
            error = m.message;
          }
        }
      });
      child.stderr?.on('data', (chunk: Buffer) => {
        err = (err + chunk.toString('utf8')).slice(-4000);
      });
      child.once('exit', (code, sig) => {
        running.delete(job.id);
        if (!outcomes.has(job.id) && !failure && !o.signal?.aborted) {
          failure = new Error(
            `retraining ${job.label} failed (exit ${code ?? sig}): ${error ?? err.trim().split('\n').slice(-5).join('\n')}`,
          );
        }
        render(true);
        resolve();
      });
    });

  const killAll = () => {
    for (const r of running.values()) r.child.kill('SIGTERM');
  };
  o.signal?.addEventListener('abort', killAll, { once: true });
  try {
    const lanes = Array.from(
      { length: Math.max(1, Math.min(o.concurrency, jobs.length)) },
      async () => {
        while (next < jobs.length && !failure && !o.signal?.aborted) {
          const job = jobs[next++] as RetrainJob;
          await runOne(job);
        }
      },
    );
    await Promise.all(lanes);
    o.reporter.clear();
    throwIfAborted(o.signal);
    if (failure) {
      killAll();
      throw failure;
    }
    return jobs.map((j) => {
      const r = outcomes.get(j.id);
      if (!r) throw new Error(`retraining ${j.label} produced no result`);
      return r;
    });
  } finally {
    o.signal?.removeEventListener('abort', killAll);
    killAll();
  }
}
