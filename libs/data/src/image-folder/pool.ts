/**
 * Decoding images off the main thread: a pool of worker threads, each running sharp
 * (libvips, prebuilt from npm) on one image at a time per in-flight slot. The main thread
 * keeps only the queue, so training (tfjs) and batching are not stalled by decoding.
 *
 * The worker is a small CommonJS script passed as source (`eval`): it needs no build step
 * and no TypeScript loader, so the same code runs from `src/` under vitest and from
 * `dist/`. It is deliberately tiny; everything testable lives in typed code here.
 */
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { resizeCover } from './resize.js';

/** What the decoder does with an image's colour: convert to 1 or 3 channels, or keep its own. */
export type ChannelMode = 1 | 3 | 'auto';

export interface DecodeRequest {
  path: string;
  /** Output height and width: the image is resized to cover `size x size` and centre-cropped. */
  size: number;
  /** 1: grey, 3: sRGB, 'auto': 1 for grey images, 3 for the rest (alpha is dropped). */
  channels: ChannelMode;
}

export interface Decoded {
  /** `size * size * channels` bytes, HWC. */
  pixels: Uint8Array;
  channels: number;
  /** The file's own colour channels without alpha (1: grey, 3: colour); 0 when not read (channels fixed, not a JPEG). */
  nativeChannels: number;
}

/** A file that could not be read or decoded (the message is sharp's or the file system's). */
export class DecodeFailure extends Error {
  override readonly name = 'DecodeFailure';
  constructor(
    readonly path: string,
    message: string,
  ) {
    super(`${path}: ${message}`);
  }
}

const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFile } = require('node:fs/promises');
const sharp = require(workerData.sharp);
// One libvips thread per worker (the pool is the parallelism) and no operation cache, so
// memory stays what the in-flight images need.
sharp.concurrency(1);
sharp.cache(false);
const resizeCover = ${resizeCover.toString()};
async function decode(req) {
  const buf = await readFile(req.path);
  // The header is read (a libvips call of its own) only when it decides something: the
  // channels in 'auto' mode, and whether a JPEG (magic FF D8) is large enough to shrink.
  const jpeg = buf[0] === 0xff && buf[1] === 0xd8;
  const meta = req.channels === 'auto' || jpeg ? await sharp(buf, { failOn: 'error' }).metadata() : undefined;
  const native = meta ? ((meta.channels || 3) - (meta.hasAlpha ? 1 : 0) >= 3 ? 3 : 1) : 0;
  const want = req.channels === 'auto' ? native : req.channels;
  const colour = (p) => (want === 1 ? p.toColourspace('b-w') : p.toColourspace('srgb'));
  // Large JPEGs: sharp's resize, which decodes them at 1/2..1/8 scale (shrink-on-load).
  // Everything else: decoded at its own size, cropped and resized by resizeCover.
  const shrink = jpeg && Math.min(meta.width, meta.height) >= 2 * req.size;
  let p = sharp(buf, { failOn: 'error' }).removeAlpha();
  if (shrink) p = p.resize(req.size, req.size, { fit: 'cover', position: 'centre', kernel: 'linear' });
  const { data, info } = await colour(p).raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  if (info.channels !== want) throw new Error('decoder gave ' + info.channels + ' channels');
  let out;
  if (info.width === req.size && info.height === req.size) {
    out = new Uint8Array(data.byteLength);
    out.set(data);
  } else {
    out = resizeCover(data, info.width, info.height, want, req.size);
  }
  return { pixels: out, channels: want, nativeChannels: native };
}
parentPort.on('message', (m) => {
  decode(m.req).then(
    (r) => parentPort.postMessage({ id: m.id, ok: true, r }, [r.pixels.buffer]),
    (e) => parentPort.postMessage({ id: m.id, ok: false, error: String((e && e.message) || e) }),
  );
});
`;

interface Pending {
  resolve: (d: Decoded) => void;
  reject: (e: Error) => void;
  path: string;
}

interface Slot {
  worker: Worker;
  inFlight: number;
}

export interface DecodePoolOptions {
  /** Worker threads. Default: the cores available (at most 8). */
  workers?: number;
  /** Images decoding at once per worker (overlaps file reads with decoding). Default 2. */
  inFlightPerWorker?: number;
}

/**
 * A pool of decode workers. `decode` resolves with the pixels or rejects with a
 * {@link DecodeFailure}; requests beyond the in-flight limit wait in a FIFO queue. Workers
 * hold the event loop only while there is work, so a forgotten pool never keeps a process
 * alive; `close()` ends them.
 */
export class DecodePool {
  readonly workers: number;
  private readonly slots: Slot[] = [];
  private readonly pending = new Map<number, Pending>();
  private readonly queue: { id: number; req: DecodeRequest }[] = [];
  private readonly perWorker: number;
  private nextId = 0;
  private closed = false;

  constructor(options: DecodePoolOptions = {}) {
    const n = options.workers ?? Math.min(8, availableParallelism());
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`workers must be >= 1, got ${n}`);
    this.workers = n;
    this.perWorker = options.inFlightPerWorker ?? 4;
    const require = createRequire(import.meta.url);
    const sharpPath = require.resolve('sharp');
    // Loaded once in the main thread first: libvips' shared library then stays resident,
    // which sharp's documentation asks for when it is used from worker threads.
    require(sharpPath);
    for (let i = 0; i < n; i++) {
      const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { sharp: sharpPath } });
      const slot: Slot = { worker, inFlight: 0 };
      worker.unref();
      worker.on('message', (m: { id: number; ok: boolean; r?: Decoded; error?: string }) => {
        slot.inFlight--;
        if (slot.inFlight === 0) worker.unref();
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        if (p) {
          if (m.ok) p.resolve(m.r!);
          else p.reject(new DecodeFailure(p.path, m.error ?? 'decode failed'));
        }
        this.pump();
      });
      worker.on('error', (err) => this.failAll(err));
      this.slots.push(slot);
    }
  }

  decode(req: DecodeRequest): Promise<Decoded> {
    if (this.closed) return Promise.reject(new Error('decode pool is closed'));
    const id = this.nextId++;
    const promise = new Promise<Decoded>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, path: req.path });
    });
    this.queue.push({ id, req });
    this.pump();
    return promise;
  }

  /** Requests queued or decoding. */
  get backlog(): number {
    return this.pending.size;
  }

  private pump(): void {
    while (this.queue.length > 0) {
      let best: Slot | undefined;
      for (const s of this.slots) if (!best || s.inFlight < best.inFlight) best = s;
      if (!best || best.inFlight >= this.perWorker) return;
      const job = this.queue.shift()!;
      if (best.inFlight === 0) best.worker.ref();
      best.inFlight++;
      best.worker.postMessage(job);
    }
  }

  private failAll(err: unknown): void {
    const e = err instanceof Error ? err : new Error(String(err));
    for (const [id, p] of this.pending) {
      this.pending.delete(id);
      p.reject(e);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error('decode pool closed'));
    this.queue.length = 0;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }
}
