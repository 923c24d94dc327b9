/**
 * `metaprune train --remote ...`: trains a PruningNet through the weight generator service
 * (gRPC StartTraining + WatchTraining) instead of in this process. The lead's `train`
 * command calls `trainRemote(argv)` when `--remote` is given.
 *
 * The service address comes from `--weightgen HOST:PORT`, else env METAPRUNE_WEIGHTGEN_ADDR,
 * else the stack file that `metaprune up` writes (while it runs), else 127.0.0.1:50051.
 */
import { type ServiceError, status } from '@grpc/grpc-js';
import { familyFromId, presetFromId, weightgen } from '@metaprune/proto';
import {
  DEFAULT_PORTS,
  isTerminal,
  unary,
  type WeightGeneratorClient,
  watchTraining,
  weightGeneratorClient,
} from '@metaprune/wire';
import { num, parseFlags, str } from '../args.js';
import { UsageError } from '../errors.js';
import { NETWORK_OPTIONS, networkFromFlags } from '../network-flags.js';
import { readStackFile } from '../stack.js';
import { formatSeconds } from '../ui/progress.js';

export const trainRemoteHelp = `metaprune train --remote --network mobilenetv2 [--preset small|imagenet] [--width 0.5]
                --dataset fashion-mnist [--epochs 1] [--json]
  Trains a PruningNet on the weight generator service and follows its progress.
  Training:  --epochs N (1)  --batch N (64)  --lr X (0.4 * batch / 64)  --momentum X (0.9)
             --label-smoothing X (0.1)  --weight-decay X (0)  --seed N (0; also the split's)
             --steps N (steps per epoch; default the whole split)  --val-images N (5000)
             --name TEXT  --continue PRUNINGNET_ID (train an existing PruningNet further)
             --no-weight-prediction (the RQ5 ablation: one shared weight tensor per layer,
             cropped per candidate, instead of generated weights)
  Service:   --weightgen HOST:PORT (env METAPRUNE_WEIGHTGEN_ADDR, else the stack of
             "metaprune up", else 127.0.0.1:${DEFAULT_PORTS.weightGenerator})  --token TOKEN
             (env METAPRUNE_TOKEN)  --detach (print the job and return at once)
  Output:    a progress bar on stderr; with --json one line on stdout:
             {"pruningnet":ID,"version":N,"job":ID,"state":"succeeded",...}
  Ctrl-C cancels the remote job (its last checkpoint stays usable).`;

const OPTIONS = {
  ...NETWORK_OPTIONS,
  remote: { type: 'boolean' },
  dataset: { type: 'string' },
  epochs: { type: 'string' },
  batch: { type: 'string' },
  'batch-size': { type: 'string' },
  lr: { type: 'string' },
  momentum: { type: 'string' },
  'label-smoothing': { type: 'string' },
  'weight-decay': { type: 'string' },
  seed: { type: 'string' },
  steps: { type: 'string' },
  'max-steps': { type: 'string' },
  'val-images': { type: 'string' },
  name: { type: 'string' },
  continue: { type: 'string' },
  'no-weight-prediction': { type: 'boolean' },
  weightgen: { type: 'string' },
  token: { type: 'string' },
  detach: { type: 'boolean' },
  json: { type: 'boolean' },
  // flags of the local `train` that mean nothing remotely: refused with a reason
  out: { type: 'string' },
  resume: { type: 'boolean' },
  backend: { type: 'string' },
  workers: { type: 'string' },
  'data-dir': { type: 'string' },
  'split-seed': { type: 'string' },
  'val-per-class': { type: 'string' },
} as const;

const LOCAL_ONLY: Record<string, string> = {
  out: 'checkpoints stay on the weight generator (ListPruningNets / metaprune search --pruningnet ID)',
  resume:
    'an interrupted remote job resumes by itself; use --continue PRUNINGNET_ID to train a PruningNet further',
  backend: 'the weight generator picks its backend (its --backend setting)',
  workers: 'the weight generator decides how many threads train',
  'data-dir':
    'the weight generator reads datasets below its --data-root (or give --dataset dir:<path>)',
  'split-seed': '--seed seeds the sub-train/sub-val split too',
  'val-per-class': 'give --val-images (total held-out images)',
};

export function weightgenAddress(flag: string | undefined): string {
  return (
    flag ??
    process.env['METAPRUNE_WEIGHTGEN_ADDR'] ??
    readStackFile()?.weightGenerator ??
    `127.0.0.1:${DEFAULT_PORTS.weightGenerator}`
  );
}

function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as { code?: unknown }).code === 'number';
}

/** A gRPC error as a CLI error: bad input → UsageError (exit 2), else a plain Error (exit 1). */
function cliError(err: unknown, address: string): Error {
  if (!isServiceError(err)) return err instanceof Error ? err : new Error(String(err));
  if (err.code === status.INVALID_ARGUMENT) {
    return new UsageError(err.details);
  }
  if (err.code === status.UNAVAILABLE) {
    return new Error(
      `the weight generator at ${address} is unavailable (${err.details}); start the stack with "metaprune up" or pass --weightgen HOST:PORT`,
    );
  }
  return new Error(`weight generator: ${status[err.code] ?? err.code}: ${err.details}`);
}

const STATE_NAMES: Record<number, string> = {
  [weightgen.TrainingState.QUEUED]: 'queued',
  [weightgen.TrainingState.RUNNING]: 'running',
  [weightgen.TrainingState.SUCCEEDED]: 'succeeded',
  [weightgen.TrainingState.FAILED]: 'failed',
  [weightgen.TrainingState.CANCELLED]: 'cancelled',
  [weightgen.TrainingState.PAUSED]: 'paused',
};

function stateName(s: weightgen.TrainingState): string {
  return STATE_NAMES[s] ?? 'unknown';
}

/** Draws the remote progress on stderr (one redrawn line on a terminal, else a line per 5 s). */
class RemoteProgress {
  private lastPlain = 0;
  private readonly tty = process.stderr.isTTY === true;
  private drawn = false;

  constructor(private readonly silent: boolean) {}

  show(p: weightgen.TrainingProgress, force = false): void {
    if (this.silent) return;
    if (p.stepsPerEpoch === 0 && !isTerminal(p.state)) return; // queued / starting: no numbers yet
    const now = Date.now();
    if (!this.tty && !force && now - this.lastPlain < 5000) return;
    this.lastPlain = now;
    const total = Math.max(1, p.epochs * Math.max(1, p.stepsPerEpoch));
    const done = p.epoch > 0 ? (p.epoch - 1) * p.stepsPerEpoch + p.step : 0;
    const frac = Math.min(1, done / total);
    const width = 24;
    const filled = Math.round(frac * width);
    const parts = [
      `train [${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`,
      `epoch ${p.epoch}/${p.epochs}`,
      `step ${p.step}/${p.stepsPerEpoch}`,
      `loss ${p.loss.toFixed(3)}`,
      `acc ${(p.accuracy * 100).toFixed(1)}%`,
      `${p.imagesPerSecond.toFixed(0)} img/s`,
      `ETA ${p.etaSeconds > 0 ? formatSeconds(p.etaSeconds) : '--:--'}`,
    ];
    if (p.validationAccuracy !== undefined)
      parts.push(`val ${(p.validationAccuracy * 100).toFixed(1)}%`);
    if (p.checkpointVersion !== undefined) parts.push(`saved v${p.checkpointVersion}`);
    if (p.state !== weightgen.TrainingState.RUNNING) parts.push(`[${stateName(p.state)}]`);
    const line = parts.join('  ');
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${line}`);
      this.drawn = true;
    } else {
      process.stderr.write(`${line}\n`);
    }
  }

  note(text: string): void {
    if (this.silent) return;
    if (this.tty && this.drawn) process.stderr.write('\n');
    this.drawn = false;
    process.stderr.write(`${text}\n`);
  }

  end(): void {
    if (this.tty && this.drawn && !this.silent) process.stderr.write('\n');
    this.drawn = false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Follows a job until it ends, re-watching across service restarts (up to `patienceMs` without contact). */
async function follow(
  client: WeightGeneratorClient,
  jobId: string,
  ui: RemoteProgress,
  token: string | undefined,
  cancelled: () => boolean,
  patienceMs = 300_000,
): Promise<weightgen.TrainingJob> {
  let lastContact = Date.now();
  let notedPause = false;
  for (;;) {
    try {
      for await (const msg of watchTraining(client, jobId, token ? { token } : {})) {
        lastContact = Date.now();
        const p = msg.progress;
        if (!p) continue;
        const important =
          p.checkpointVersion !== undefined || p.state !== weightgen.TrainingState.RUNNING;
        ui.show(p, important);
        if (p.state === weightgen.TrainingState.PAUSED && !notedPause) {
          ui.note(
            'the weight generator is shutting down; the job resumes from its checkpoint when it restarts',
          );
          notedPause = true;
        }
        if (isTerminal(p.state)) break;
      }
      const { job } = await unary(client, client.getTraining, { jobId }, { timeoutMs: 10_000 });
      if (job?.progress && isTerminal(job.progress.state)) return job;
    } catch (err) {
      if (cancelled()) throw err;
      if (
        !isServiceError(err) ||
        ![status.UNAVAILABLE, status.CANCELLED, status.DEADLINE_EXCEEDED, status.INTERNAL].includes(
          err.code,
        )
      ) {
        throw err;
      }
      if (Date.now() - lastContact > patienceMs) throw err;
      if (!notedPause) {
        ui.note(`lost the weight generator (${err.details}); reconnecting...`);
        notedPause = true;
      }
    }
    await sleep(1000);
  }
}

export async function trainRemote(argv: string[]): Promise<number> {
  const v = parseFlags(argv, OPTIONS);
  for (const [flag, why] of Object.entries(LOCAL_ONLY)) {
    if (v[flag] !== undefined)
      throw new UsageError(`--${flag} does not apply with --remote: ${why}`);
  }
  // training data are small images: the small preset unless told otherwise
  const net = networkFromFlags(v, { preset: 'small' });
  const dataset = str(v, 'dataset');
  if (!dataset)
    throw new UsageError('--dataset is required (fashion-mnist, cifar10 or dir:<path>)');
  const u32 = (name: string, min: number, max: number, fallback: number) =>
    num(v, name, { min, max, integer: true }, fallback) as number;
  const epochs = u32('epochs', 1, 1000, 1);
  const batchSize = u32('batch', 1, 8192, u32('batch-size', 1, 8192, 0));
  const config: weightgen.TrainingConfig = {
    network: {
      family: familyFromId(net.spec.family),
      preset: presetFromId(net.spec.preset),
      widthMultiplier: net.spec.width,
      // input size / channels / classes only when given: the service fits them to the dataset
      inputSize: u32('input-size', 8, 1024, 0),
      inputChannels: u32('input-channels', 1, 16, 0),
      numClasses: u32('classes', 2, 100000, 0),
      keepLastStageFull: net.spec.lastStageFull,
    },
    dataset,
    epochs,
    batchSize,
    learningRate: num(v, 'lr', { min: 1e-9, max: 10 }, 0) as number,
    momentum: num(v, 'momentum', { min: 0, max: 0.999999 }, 0.9) as number,
    labelSmoothing: num(v, 'label-smoothing', { min: 0, max: 0.999999 }, 0.1) as number,
    weightDecay: num(v, 'weight-decay', { min: 0, max: 0.999999 }, 0) as number,
    seed: u32('seed', 0, 0xffffffff, 0),
    maxStepsPerEpoch: u32('steps', 0, 1e9, u32('max-steps', 0, 1e9, 0)),
    validationImages: u32('val-images', 0, 1e6, 0),
    hiddenUnits: 0,
    noWeightPrediction: v['no-weight-prediction'] === true,
  };
  if (net.spec.layout !== 'metapruning') {
    throw new UsageError('--layout: the weight generator trains the metapruning layout only');
  }
  const address = weightgenAddress(str(v, 'weightgen'));
  const token = str(v, 'token') ?? process.env['METAPRUNE_TOKEN'];
  const json = v['json'] === true;
  const client = weightGeneratorClient(address);
  const ui = new RemoteProgress(json);
  let jobId: string | undefined;
  let cancelling = false;
  const onSigint = (): void => {
    if (cancelling || !jobId) process.exit(130);
    cancelling = true;
    ui.note(`cancelling job ${jobId}... (Ctrl-C again to leave it running)`);
    unary(
      client,
      client.cancelTraining,
      { jobId },
      { timeoutMs: 10_000, ...(token ? { token } : {}) },
    ).catch((err: unknown) =>
      ui.note(`cancel failed: ${err instanceof Error ? err.message : String(err)}`),
    );
  };
  try {
    const started = await unary(
      client,
      client.startTraining,
      weightgen.StartTrainingRequest.fromPartial({
        config,
        displayName: str(v, 'name') ?? '',
        resumePruningnetId: str(v, 'continue') ?? '',
      }),
      { timeoutMs: 30_000, ...(token ? { token } : {}) },
    );
    jobId = started.jobId;
    if (v['detach'] === true) {
      const out = { job: started.jobId, pruningnet: started.pruningnetId, state: 'queued' };
      if (json) console.log(JSON.stringify(out));
      else
        console.log(
          `job ${started.jobId} started on ${address}: PruningNet ${started.pruningnetId}`,
        );
      return 0;
    }
    ui.note(`job ${started.jobId} on ${address}: training PruningNet ${started.pruningnetId}`);
    process.on('SIGINT', onSigint);
    const job = await follow(client, started.jobId, ui, token, () => cancelling);
    ui.end();
    const p = job.progress!;
    const state = stateName(p.state);
    const result = {
      pruningnet: job.pruningnetId,
      version: job.latestVersion,
      job: job.jobId,
      state,
      epochs: p.epochs,
      loss: p.loss,
      accuracy: p.accuracy,
      ...(job.error ? { error: job.error } : {}),
    };
    if (json) console.log(JSON.stringify(result));
    else if (p.state === weightgen.TrainingState.SUCCEEDED) {
      console.log(
        `PruningNet ${job.pruningnetId} version ${job.latestVersion} trained (${p.epochs} epochs, loss ${p.loss.toFixed(3)}); search it with: metaprune search --pruningnet ${job.pruningnetId} ...`,
      );
    } else {
      console.log(
        `job ${job.jobId} ${state}${job.error ? `: ${job.error}` : ''}${job.latestVersion ? ` (last checkpoint: ${job.pruningnetId} v${job.latestVersion})` : ''}`,
      );
    }
    return p.state === weightgen.TrainingState.SUCCEEDED ? 0 : cancelling ? 130 : 1;
  } catch (err) {
    ui.end();
    throw cliError(err, address);
  } finally {
    process.off('SIGINT', onSigint);
    client.close();
  }
}
