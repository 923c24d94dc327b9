/** gRPC clients of the running stack (controller) for the CLI. */
import * as grpc from '@grpc/grpc-js';
import { controller, weightgen } from '@metaprune/proto';
import { envClient, FIELD_METADATA_KEY, grpcClientOptions } from '@metaprune/runtime';
import { UsageError } from './errors.js';
import { readStackFile, stackFilePath } from './stack.js';

/** --controller, then $METAPRUNE_CONTROLLER, then the stack file of `metaprune up`. */
export function controllerAddress(flag: string | undefined): string {
  const addr = flag ?? process.env['METAPRUNE_CONTROLLER'] ?? readStackFile()?.controller;
  if (!addr) {
    throw new UsageError(
      `no controller: start the stack with \`metaprune up\` (it writes ${stackFilePath()}), or pass --controller host:port`,
    );
  }
  return addr;
}

/** TLS and token from METAPRUNE_TLS_CA / _CERT / _KEY / _SERVER_NAME and METAPRUNE_TOKEN. */
export function searchClient(address: string): controller.SearchServiceClient {
  const c = envClient(grpcClientOptions());
  return new controller.SearchServiceClient(address, c.credentials, c.options);
}

/** A gRPC error as the CLI reports it: INVALID_ARGUMENT is a usage error (exit 2). */
export function cliError(err: unknown, what: string): Error {
  const e = err as grpc.ServiceError;
  if (typeof e?.code !== 'number') return err instanceof Error ? err : new Error(String(err));
  if (e.code === grpc.status.INVALID_ARGUMENT) {
    const field = e.metadata?.get(FIELD_METADATA_KEY)[0];
    return new UsageError(field ? e.details : `${what}: ${e.details}`);
  }
  if (e.code === grpc.status.UNAVAILABLE) {
    return new Error(
      `${what}: the controller is unavailable (${e.details}); is \`metaprune up\` running?`,
    );
  }
  return new Error(`${what}: ${grpc.status[e.code]}: ${e.details}`);
}

export function call<Req, Res>(
  client: grpc.Client,
  method: (
    req: Req,
    meta: grpc.Metadata,
    opts: Partial<grpc.CallOptions>,
    cb: (err: grpc.ServiceError | null, res: Res) => void,
  ) => grpc.ClientUnaryCall,
  req: Req,
  deadlineMs = 30_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(
      client,
      req,
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + deadlineMs) },
      (err, res) => (err ? reject(err) : resolve(res)),
    );
  });
}

const RETRYABLE = new Set([
  grpc.status.CANCELLED,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.INTERNAL,
  grpc.status.UNAVAILABLE,
]);

const TERMINAL_STATES: ReadonlySet<controller.SearchState> = new Set([
  controller.SearchState.SUCCEEDED,
  controller.SearchState.FAILED,
  controller.SearchState.CANCELLED,
]);

export interface FollowOptions {
  onProgress?: (p: controller.SearchProgress) => void;
  /** Give up reconnecting after this long without any message (default 5 min). */
  reconnectMs?: number;
  /** The controller's address may change (a restart on another port): asked on reconnect. */
  address?: () => string;
}

/**
 * Follows a search until it is terminal: WatchSearch, reconnecting when the controller goes
 * away (restart) — searches resume by themselves — then GetSearch for the full result.
 */
export async function followSearch(
  initial: controller.SearchServiceClient,
  searchId: string,
  o: FollowOptions = {},
): Promise<controller.Search> {
  const reconnectMs = o.reconnectMs ?? 5 * 60_000;
  let client = initial;
  let currentAddress: string | undefined;
  const owned: controller.SearchServiceClient[] = [];
  const refresh = () => {
    if (!o.address) return;
    const addr = o.address();
    if (addr === currentAddress) return;
    currentAddress = addr;
    client = searchClient(addr);
    owned.push(client);
  };
  try {
    let giveUpAt = Date.now() + reconnectMs;
    let terminal = false;
    for (;;) {
      try {
        await new Promise<void>((resolve, reject) => {
          const stream = client.watchSearch({ searchId });
          stream.on('data', (msg: controller.WatchSearchResponse) => {
            giveUpAt = Date.now() + reconnectMs;
            if (!msg.progress) return;
            terminal = TERMINAL_STATES.has(msg.progress.state);
            o.onProgress?.(msg.progress);
          });
          stream.on('error', reject);
          stream.on('end', () => resolve());
        });
        if (terminal) break;
        // the stream ended before the search did (a controller shutting down): watch again
        if (Date.now() > giveUpAt) throw new Error('WatchSearch: the controller stopped answering');
        await new Promise((r) => setTimeout(r, 500));
        refresh();
      } catch (err) {
        const code = (err as grpc.ServiceError).code;
        if (!RETRYABLE.has(code) || Date.now() > giveUpAt) throw cliError(err, 'WatchSearch');
        await new Promise((r) => setTimeout(r, 500));
        refresh();
      }
    }
    for (let i = 0; ; i++) {
      try {
        return (await call(client, client.getSearch, { searchId })).search!;
      } catch (err) {
        if (i >= 60 || !RETRYABLE.has((err as grpc.ServiceError).code)) {
          throw cliError(err, 'GetSearch');
        }
        await new Promise((r) => setTimeout(r, 500));
        refresh();
      }
    }
  } finally {
    for (const c of owned) c.close();
  }
}

export interface TrainedPruningNet {
  pruningnetId: string;
  version: number;
  jobId: string;
}

/**
 * Trains a PruningNet on the weight generator at `address` (StartTraining, then GetTraining
 * until the job is terminal) — for tests, benches and the demo.
 */
export async function trainOnStack(
  address: string,
  config: Parameters<typeof weightgen.TrainingConfig.fromPartial>[0],
  o: {
    displayName?: string;
    timeoutMs?: number;
    onProgress?: (j: weightgen.TrainingJob) => void;
  } = {},
): Promise<TrainedPruningNet> {
  const c = envClient(grpcClientOptions());
  const client = new weightgen.WeightGeneratorServiceClient(address, c.credentials, c.options);
  try {
    const started = await call(
      client,
      client.startTraining,
      weightgen.StartTrainingRequest.fromPartial({
        config: weightgen.TrainingConfig.fromPartial(config),
        displayName: o.displayName ?? '',
      }),
    ).catch((err: unknown) => {
      throw cliError(err, 'StartTraining');
    });
    const until = Date.now() + (o.timeoutMs ?? 10 * 60_000);
    for (;;) {
      const { job } = await call(client, client.getTraining, { jobId: started.jobId });
      if (job) o.onProgress?.(job);
      const state = job?.progress?.state;
      if (state === weightgen.TrainingState.SUCCEEDED) {
        return {
          pruningnetId: started.pruningnetId,
          version: job!.latestVersion,
          jobId: started.jobId,
        };
      }
      if (state === weightgen.TrainingState.FAILED || state === weightgen.TrainingState.CANCELLED) {
        throw new Error(
          `training job ${started.jobId} ended ${weightgen.trainingStateToJSON(state)}: ${job?.error}`,
        );
      }
      if (Date.now() > until)
        throw new Error(`training job ${started.jobId} did not finish in time`);
      await new Promise((r) => setTimeout(r, 300));
    }
  } finally {
    client.close();
  }
}
