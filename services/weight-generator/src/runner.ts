/**
 * Runs training in a child Node process, so the gRPC server stays responsive and a crash
 * (or an out-of-memory kill) of the tensor work cannot take the service down. The child
 * (`training-process.js`) runs the engine's Trainer; this side implements the same Trainer
 * interface over IPC.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type Logger, nullLogger } from '@metaprune/runtime';
import type { FromExportChild, ToExportChild } from './export-process.js';
import type {
  Exporter,
  ExportRequest,
  StopReason,
  Trainer,
  TrainerCheckpoint,
  TrainerHooks,
  TrainerOutcome,
  TrainerProgress,
  TrainerRequest,
} from './types.js';

/** Messages parent → child. */
export type ToChild =
  | { type: 'start'; request: TrainerRequest }
  | { type: 'stop'; reason: StopReason }
  | { type: 'checkpoint-done'; id: number; error?: string };

/** Messages child → parent. */
export type FromChild =
  | { type: 'progress'; progress: TrainerProgress }
  | { type: 'checkpoint'; id: number; checkpoint: TrainerCheckpoint }
  | { type: 'done'; outcome: TrainerOutcome }
  | { type: 'failed'; error: string; stack?: string };

/** The child process exited without reporting an outcome. */
export class TrainingProcessExitedError extends Error {
  constructor(
    readonly code: number | null,
    readonly signal: NodeJS.Signals | null,
  ) {
    super(
      `the training process exited unexpectedly (${signal ? `signal ${signal}` : `exit code ${code}`})`,
    );
    this.name = 'TrainingProcessExitedError';
  }
}

/** Path of a built child entry (dist/<name>.js), also when running from src (tests). */
export function childEntry(name: 'training-process' | 'export-process'): string {
  const here = fileURLToPath(new URL(`./${name}.js`, import.meta.url));
  if (existsSync(here)) return here;
  const dist = fileURLToPath(new URL(`../dist/${name}.js`, import.meta.url));
  if (existsSync(dist)) return dist;
  throw new Error(
    `${name} entry not found (looked for ${here} and ${dist}); build the package first: npm run build -w @metaprune/weight-generator`,
  );
}

/** Path of the built training child entry. */
export function trainingProcessEntry(): string {
  return childEntry('training-process');
}

export interface ProcessTrainerOptions {
  /** Child entry module (default: trainingProcessEntry()). */
  entry?: string;
  /** After a stop request, how long the child may take to checkpoint before it is killed. */
  stopGraceMs?: number;
  /** Extra environment for the child. */
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

/** A Trainer that runs every training in a fresh child process. */
export class ProcessTrainer implements Trainer {
  private readonly entry: string;
  private readonly stopGraceMs: number;
  private readonly logger: Logger;
  private readonly env: NodeJS.ProcessEnv;
  private readonly children = new Set<ChildProcess>();

  constructor(opts: ProcessTrainerOptions = {}) {
    this.entry = opts.entry ?? trainingProcessEntry();
    this.stopGraceMs = opts.stopGraceMs ?? 60_000;
    this.logger = opts.logger ?? nullLogger;
    this.env = { ...process.env, ...opts.env };
  }

  train(request: TrainerRequest, hooks: TrainerHooks): Promise<TrainerOutcome> {
    return new Promise<TrainerOutcome>((resolve, reject) => {
      const child = fork(this.entry, [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
        execArgv: [],
        env: this.env,
      });
      this.children.add(child);
      let settled = false;
      let killTimer: NodeJS.Timeout | undefined;
      const send = (msg: ToChild): void => {
        if (child.connected)
          child.send(msg, (err) => err && this.logger.debug('IPC send failed', { err }));
      };
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        hooks.signal.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = (): void => {
        const reason = (hooks.signal.reason === 'pause' ? 'pause' : 'cancel') as StopReason;
        this.logger.info('asking the training process to stop', { job: request.jobId, reason });
        send({ type: 'stop', reason });
        killTimer = setTimeout(() => {
          this.logger.warn('training process did not stop in time: killing it', {
            job: request.jobId,
            graceMs: this.stopGraceMs,
          });
          child.kill('SIGKILL');
        }, this.stopGraceMs);
        killTimer.unref();
      };
      hooks.signal.addEventListener('abort', onAbort, { once: true });

      child.on('message', (raw) => {
        const msg = raw as FromChild;
        switch (msg.type) {
          case 'progress':
            hooks.onProgress(msg.progress);
            break;
          case 'checkpoint':
            hooks.onCheckpoint(msg.checkpoint).then(
              () => send({ type: 'checkpoint-done', id: msg.id }),
              (err: unknown) =>
                send({
                  type: 'checkpoint-done',
                  id: msg.id,
                  error: err instanceof Error ? err.message : String(err),
                }),
            );
            break;
          case 'done':
            finish(() => resolve(msg.outcome));
            break;
          case 'failed': {
            const err = new Error(msg.error);
            if (msg.stack) err.stack = msg.stack;
            finish(() => reject(err));
            break;
          }
        }
      });
      child.once('error', (err) => {
        finish(() => reject(err));
      });
      child.once('exit', (code, signal) => {
        this.children.delete(child);
        if (killTimer) clearTimeout(killTimer);
        finish(() => {
          // Killed after a stop request: nothing newer than the last checkpoint survives.
          if (hooks.signal.aborted) resolve({ status: 'stopped' });
          else reject(new TrainingProcessExitedError(code, signal));
        });
      });
      send({ type: 'start', request });
      if (hooks.signal.aborted) onAbort();
    });
  }

  /** Kills every child at once (last resort on exit). */
  killAll(): void {
    for (const c of this.children) c.kill('SIGKILL');
  }
}

export interface ProcessExporterOptions {
  /** Child entry module (default: childEntry('export-process')). */
  entry?: string;
  env?: NodeJS.ProcessEnv;
  logger?: Logger;
}

/** An Exporter that runs every export in a fresh child process (killed when aborted). */
export class ProcessExporter implements Exporter {
  private readonly entry: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly logger: Logger;
  private readonly children = new Set<ChildProcess>();

  constructor(opts: ProcessExporterOptions = {}) {
    this.entry = opts.entry ?? childEntry('export-process');
    this.env = { ...process.env, ...opts.env };
    this.logger = opts.logger ?? nullLogger;
  }

  export(request: ExportRequest, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    return new Promise<void>((resolve, reject) => {
      const child = fork(this.entry, [], {
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        serialization: 'advanced',
        execArgv: [],
        env: this.env,
      });
      this.children.add(child);
      let settled = false;
      const finish = (fn: () => void): void => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = (): void => {
        this.logger.info('export cancelled: stopping its process', { dir: request.outDir });
        child.kill('SIGKILL');
        finish(() => reject(signal?.reason ?? new Error('export cancelled')));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      child.on('message', (raw) => {
        const msg = raw as FromExportChild;
        if (msg.type === 'done') finish(resolve);
        else if (msg.type === 'failed') {
          const err = new Error(msg.error);
          if (msg.stack) err.stack = msg.stack;
          finish(() => reject(err));
        }
      });
      child.once('error', (err) => finish(() => reject(err)));
      child.once('exit', (code, sig) => {
        this.children.delete(child);
        finish(() =>
          reject(
            new Error(
              `the export process exited unexpectedly (${sig ? `signal ${sig}` : `exit code ${code}`})`,
            ),
          ),
        );
      });
      const msg: ToExportChild = { type: 'export', request };
      child.send(msg);
    });
  }

  killAll(): void {
    for (const c of this.children) c.kill('SIGKILL');
  }
}
