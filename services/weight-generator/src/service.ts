/**
 * The gRPC handlers of weightgen.v1.WeightGeneratorService. Every request field is
 * validated first (INVALID_ARGUMENT naming it); typed errors map to statuses in
 * @metaprune/runtime's toGrpcStatus.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Metadata } from '@grpc/grpc-js';
import { buildNetwork, countCost, type Encoding, geneChannels } from '@metaprune/core';
import {
  chunkTensor,
  common,
  DEFAULT_MAX_CHUNK_BYTES,
  float32Tensor,
  weightgen,
} from '@metaprune/proto';
import {
  CancelledError,
  InvalidArgumentError,
  type Logger,
  requireBearer,
  requireNumber,
  SPAN_NAMES,
  TELEMETRY_ATTRS,
  tracedServerStream,
  tracedUnary,
  UnavailableError,
  withSpan,
  writeMessage,
} from '@metaprune/runtime';
import { isTerminal, specToProto } from '@metaprune/wire';
import type { KV } from '@nats-io/kv';
import type { PruningNetCache } from './cache.js';
import { decodeRecord, type JobManager, type StartJobInput } from './jobs.js';
import { requireId, requireName, requireWritable, resolveInside } from './paths.js';
import type { CheckpointStore, StoredVersion } from './store.js';
import type { Exporter } from './types.js';
import { encodingFor, resolveTrainingConfig, trainingConfigToProto } from './validate.js';

const { TrainingState } = weightgen;

export interface ServiceDeps {
  jobs: JobManager;
  store: CheckpointStore;
  cache: PruningNetCache;
  exporter: Exporter;
  /** BN recalibration batches of an export. */
  exportRecalBatches: number;
  backend: string;
  kv: KV;
  dataRoot: string;
  exportRoot: string;
  /** Largest gRPC message; chunks stay below it. */
  maxMessageBytes: number;
  authToken: string | undefined;
  /** Training threads recorded with every new job (0 = the engine adapter's default). */
  trainWorkers: number;
  logger: Logger;
}

const MAX_CHUNK_LIMIT = 4 * 1024 * 1024;
const MIN_CHUNK = 1024;
const MAX_PAGE = 1000;
const DEFAULT_PAGE = 50;

/** The PruningNet message of a stored version. */
export function pruningNetMessage(v: StoredVersion): weightgen.PruningNet {
  const m = v.manifest.meta;
  const net = buildNetwork(m.config.network);
  return weightgen.PruningNet.fromPartial({
    pruningnetId: v.pruningnetId,
    version: v.version,
    network: specToProto(m.config.network),
    dataset: m.config.dataset,
    displayName: m.displayName,
    epochsTrained: m.epochsTrained,
    ...(m.validationAccuracy !== undefined ? { validationAccuracy: m.validationAccuracy } : {}),
    jobId: m.jobId,
    geneCount: net.genes.length,
    sha256: v.manifest.digest,
    createTime: new Date(m.createTime),
    config: trainingConfigToProto(m.config),
    sizeBytes: v.manifest.sizeBytes,
  });
}

function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString('base64url');
}

function decodePageToken(token: string): number {
  if (token === '') return 0;
  try {
    const o = (JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown }).o;
    if (typeof o === 'number' && Number.isSafeInteger(o) && o >= 0) return o;
  } catch {
    // fall through
  }
  throw new InvalidArgumentError('page_token', 'is not a token returned by ListPruningNets');
}

/** Default export name: <id>-v<version>-<first 8 hex of the encoding's hash>. */
function defaultExportName(id: string, version: number, enc: Encoding): string {
  const h = Buffer.from(enc.join(','))
    .reduce((a, b) => Math.imul(a ^ b, 16777619) >>> 0, 2166136261)
    .toString(16)
    .padStart(8, '0');
  return `${id}-v${version}-${h}`.slice(0, 128);
}

async function dirSize(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? await dirSize(p) : (await stat(p)).size;
  }
  return total;
}

export class WeightGeneratorHandlers {
  private readonly watchers = new Set<() => void>();
  private closing = false;

  constructor(private readonly deps: ServiceDeps) {}

  /** Ends every WatchTraining stream with UNAVAILABLE (clients re-watch after a restart). */
  closeWatchers(): void {
    this.closing = true;
    for (const stop of [...this.watchers]) stop();
    this.watchers.clear();
  }

  /** Mutating calls (StartTraining incl. resume, CancelTraining, ExportNetwork) need the token. */
  private authorize(metadata: Metadata, what = 'this call'): void {
    requireBearer(metadata, this.deps.authToken, what);
  }

  implementation(): weightgen.WeightGeneratorServiceServer {
    const logger = this.deps.logger;
    return {
      startTraining: tracedUnary((call) => this.startTraining(call.request, call.metadata), {
        logger,
      }),
      watchTraining: tracedServerStream((call, ctx) => this.watchTraining(call, ctx.signal), {
        logger,
      }),
      getTraining: tracedUnary(
        async (call) => {
          const jobId = requireId('job_id', call.request.jobId);
          return { job: await this.deps.jobs.get(jobId) };
        },
        { logger },
      ),
      cancelTraining: tracedUnary(
        async (call) => {
          this.authorize(call.metadata);
          const jobId = requireId('job_id', call.request.jobId);
          return { job: await this.deps.jobs.cancel(jobId) };
        },
        { logger },
      ),
      listPruningNets: tracedUnary((call) => this.listPruningNets(call.request), { logger }),
      listTrainingJobs: tracedUnary(async (call) => this.listTrainingJobs(call.request), {
        logger,
      }),
      generateWeights: tracedServerStream((call, ctx) => this.generateWeights(call, ctx.signal), {
        logger,
      }),
      exportNetwork: tracedUnary(
        (call, ctx) => {
          // an export replaces the file of the same name: a write like any other
          this.authorize(call.metadata, 'ExportNetwork');
          return this.exportNetwork(call.request, ctx.signal);
        },
        { logger },
      ),
    };
  }

  async startTraining(
    req: weightgen.StartTrainingRequest,
    metadata: Metadata,
  ): Promise<weightgen.StartTrainingResponse> {
    this.authorize(metadata);
    if (req.displayName.length > 128) {
      throw new InvalidArgumentError(
        'display_name',
        `has ${req.displayName.length} characters; at most 128`,
      );
    }
    const resolved = resolveTrainingConfig(req.config, this.deps.dataRoot);
    if (this.deps.trainWorkers > 0) resolved.workers = this.deps.trainWorkers;
    let continuePruningnet: StartJobInput['continuePruningnet'];
    if (req.resumePruningnetId !== '') {
      const id = requireId('resume_pruningnet_id', req.resumePruningnetId);
      const v = await this.deps.store.resolve(id, 0);
      continuePruningnet = {
        pruningnetId: id,
        version: v.version,
        epochsTrained: v.manifest.meta.epochsTrained,
        config: v.manifest.meta.config,
      };
    }
    // the job will write checkpoints: refuse now, not after it was accepted
    await requireWritable(this.deps.store.pruningnetsDir, 'the checkpoint root');
    await requireWritable(this.deps.store.jobsDir, 'the checkpoint root');
    const job = await this.deps.jobs.start({
      resolved,
      displayName: req.displayName,
      ...(continuePruningnet ? { continuePruningnet } : {}),
    });
    return { jobId: job.jobId, pruningnetId: job.pruningnetId };
  }

  async watchTraining(
    call: import('@grpc/grpc-js').ServerWritableStream<
      weightgen.WatchTrainingRequest,
      weightgen.WatchTrainingResponse
    >,
    signal: AbortSignal,
  ): Promise<void> {
    const jobId = requireId('job_id', call.request.jobId);
    if (this.closing) throw new UnavailableError('the weight generator is shutting down');
    const first = await this.deps.jobs.get(jobId); // NOT_FOUND
    let lastSeq = 0;
    const send = async (job: weightgen.TrainingJob): Promise<boolean> => {
      const p = job.progress;
      if (!p) return false;
      if (p.sequence > lastSeq) {
        lastSeq = p.sequence;
        await writeMessage(call, { jobId, progress: p });
      }
      return isTerminal(p.state);
    };
    if (await send(first)) return;
    const iter = await this.deps.kv.watch({ key: jobId });
    let shutdown = false;
    const stop = (): void => {
      shutdown = true;
      iter.stop();
    };
    this.watchers.add(stop);
    const onAbort = (): void => iter.stop();
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      for await (const entry of iter) {
        if (entry.operation !== 'PUT') continue;
        let job: weightgen.TrainingJob;
        try {
          job = decodeRecord(entry.value).job;
        } catch {
          continue;
        }
        if (await send(job)) return;
      }
    } finally {
      this.watchers.delete(stop);
      signal.removeEventListener('abort', onAbort);
      iter.stop();
    }
    if (signal.aborted) throw new CancelledError('the client cancelled the call');
    if (shutdown) throw new UnavailableError('the weight generator is shutting down; watch again');
    throw new UnavailableError('the job state stream ended; watch again');
  }

  async listPruningNets(
    req: weightgen.ListPruningNetsRequest,
  ): Promise<weightgen.ListPruningNetsResponse> {
    requireNumber('page_size', req.pageSize, { min: 0, max: MAX_PAGE, integer: true });
    const pageSize = req.pageSize === 0 ? DEFAULT_PAGE : req.pageSize;
    const offset = decodePageToken(req.pageToken);
    const filter =
      req.pruningnetId === '' ? undefined : requireId('pruningnet_id', req.pruningnetId);
    let versions = await this.deps.store.list(filter);
    if (req.latestOnly) {
      const latest = new Map<string, StoredVersion>();
      for (const v of versions) {
        const cur = latest.get(v.pruningnetId);
        if (!cur || v.version > cur.version) latest.set(v.pruningnetId, v);
      }
      versions = [...latest.values()];
    }
    const items = versions
      .map((v) => pruningNetMessage(v))
      .sort(
        (a, b) =>
          (b.createTime?.getTime() ?? 0) - (a.createTime?.getTime() ?? 0) ||
          a.pruningnetId.localeCompare(b.pruningnetId) ||
          b.version - a.version,
      );
    const page = items.slice(offset, offset + pageSize);
    const next = offset + pageSize < items.length ? encodePageToken(offset + pageSize) : '';
    return { pruningnets: page, nextPageToken: next };
  }

  listTrainingJobs(req: weightgen.ListTrainingJobsRequest): weightgen.ListTrainingJobsResponse {
    requireNumber('page_size', req.pageSize, { min: 0, max: MAX_PAGE, integer: true });
    const pageSize = req.pageSize === 0 ? DEFAULT_PAGE : req.pageSize;
    const offset = decodePageToken(req.pageToken);
    // every job of the bucket is loaded at start (JobManager.recover)
    const items = this.deps.jobs
      .list()
      .sort(
        (a, b) =>
          (b.createTime?.getTime() ?? 0) - (a.createTime?.getTime() ?? 0) ||
          a.jobId.localeCompare(b.jobId),
      );
    const next = offset + pageSize < items.length ? encodePageToken(offset + pageSize) : '';
    return { jobs: items.slice(offset, offset + pageSize), nextPageToken: next };
  }

  private chunkLimit(requested: number): number {
    if (requested === 0)
      return Math.min(DEFAULT_MAX_CHUNK_BYTES, this.deps.maxMessageBytes - 16 * 1024);
    requireNumber('max_chunk_bytes', requested, {
      min: MIN_CHUNK,
      max: MAX_CHUNK_LIMIT,
      integer: true,
    });
    // leave room for the chunk's header fields within the server's message limit
    return Math.min(requested, this.deps.maxMessageBytes - 16 * 1024);
  }

  async generateWeights(
    call: import('@grpc/grpc-js').ServerWritableStream<
      weightgen.GenerateWeightsRequest,
      weightgen.GenerateWeightsResponse
    >,
    signal: AbortSignal,
  ): Promise<void> {
    const req = call.request;
    const id = requireId('pruningnet_id', req.pruningnetId);
    requireNumber('version', req.version, { min: 0, max: 0xffff_ffff, integer: true });
    if (!req.encoding) throw new InvalidArgumentError('encoding', 'is required');
    const maxChunk = this.chunkLimit(req.maxChunkBytes);
    const v = await this.deps.store.resolve(id, req.version);
    const net = buildNetwork(v.manifest.meta.config.network);
    const enc = encodingFor(net, req.encoding);
    const tensors = await withSpan(
      SPAN_NAMES.generateWeights,
      () => this.deps.cache.use(v, (pn) => pn.generate(enc)),
      { 'metaprune.pruningnet.id': id, [TELEMETRY_ATTRS.pruningNetVersion]: v.version },
    );
    if (signal.aborted) throw new CancelledError('the client cancelled the call');
    const totalBytes = tensors.reduce((s, t) => s + t.values.length * 4, 0);
    await writeMessage(call, {
      payload: {
        $case: 'header',
        value: {
          pruningnetId: id,
          version: v.version,
          network: specToProto(net.spec),
          tensorCount: tensors.length,
          totalBytes,
          channels: geneChannels(net, enc),
          pruningnet: pruningNetMessage(v),
        },
      },
    });
    for (const t of tensors) {
      for (const chunk of chunkTensor(t.name, float32Tensor(t.shape, t.values), maxChunk)) {
        await writeMessage(call, { payload: { $case: 'chunk', value: chunk } });
      }
    }
  }

  async exportNetwork(
    req: weightgen.ExportNetworkRequest,
    signal?: AbortSignal,
  ): Promise<weightgen.ExportNetworkResponse> {
    const id = requireId('pruningnet_id', req.pruningnetId);
    requireNumber('version', req.version, { min: 0, max: 0xffff_ffff, integer: true });
    if (!req.encoding) throw new InvalidArgumentError('encoding', 'is required');
    const outDir = resolveInside(this.deps.exportRoot, req.outputDir, 'output_dir');
    if (req.name !== '') requireName('name', req.name);
    const v = await this.deps.store.resolve(id, req.version);
    const net = buildNetwork(v.manifest.meta.config.network);
    const enc = encodingFor(net, req.encoding);
    const name = req.name !== '' ? req.name : defaultExportName(id, v.version, enc);
    const target = join(outDir, name);
    // re-check with the name joined (a symbolic link named like the export must not lead out)
    resolveInside(this.deps.exportRoot, join(req.outputDir, name), 'name');
    await requireWritable(outDir, 'the export directory');
    const tmp = join(outDir, `.${name}.tmp-${randomBytes(4).toString('hex')}`);
    try {
      const meta = v.manifest.meta;
      await this.deps.exporter.export(
        {
          checkpointDir: v.dir,
          config: meta.config,
          encoding: enc,
          outDir: tmp,
          metadata: { pruningnet: id, pruningnet_version: v.version },
          recalBatches: this.deps.exportRecalBatches,
          backend: this.deps.backend,
        },
        signal,
      );
      const old = `${target}.old-${randomBytes(4).toString('hex')}`;
      let replaced = false;
      try {
        await rename(target, old);
        replaced = true;
      } catch (err) {
        if ((err as { code?: string }).code !== 'ENOENT') throw err;
      }
      await rename(tmp, target);
      if (replaced) await rm(old, { recursive: true, force: true });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
    const cost = countCost(net, enc);
    return {
      path: join(target, 'model.json'),
      network: specToProto(net.spec),
      encoding: common.Encoding.fromPartial({ genes: [...enc] }),
      channels: geneChannels(net, enc),
      macs: cost.macs,
      params: cost.params,
      version: v.version,
      sizeBytes: await dirSize(target),
    };
  }
}

export { TrainingState };
