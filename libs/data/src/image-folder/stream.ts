/**
 * Batches of an image folder without holding it in memory: images are decoded on demand by
 * the decode pool, the next `prefetch` batches are requested ahead so the workers stay
 * busy while the caller trains, and decoded images are kept in an LRU cache of at most
 * `cacheBytes`. Memory is therefore bounded by the cache, the prefetch window and one
 * batch of floats, whatever the folder's size.
 *
 * Same contract as {@link BatchIterator}: batch `(epoch, step)` is a pure function of the
 * entries, the options and `(epoch, step)` (same shuffle and augmentation streams), so a
 * streamed run and an in-memory run of the same folder see the same batches, and training
 * resumes exactly. `batch` is async; the engine's trainer awaits it.
 */
import {
  augmentAt,
  type Batch,
  type BatchOptions,
  countBatches,
  shuffledOrder,
} from '../batches.js';
import {
  type AugmentOptions,
  ImagePreprocessor,
  type PreprocessConfig,
  preprocessConfig,
  resolveAugment,
} from '../preprocess.js';
import { hashSeed } from '../random.js';
import { type Decoded, DecodeFailure, type DecodePool } from './pool.js';
import type { ImageEntry } from './scan.js';

/** The batch iterator's options (same meaning, same defaults) and where images come from. */
export interface ImageFolderStreamOptions extends BatchOptions {
  entries: readonly ImageEntry[];
  pool: DecodePool;
  /** Decoded side in pixels and channels (the stored image, before preprocessing). */
  size: number;
  channels: 1 | 3;
  /** Batches requested ahead of the one asked for. Default 2. */
  prefetch?: number;
  /** Bytes of decoded images kept for reuse (LRU). Default 64 MiB; 0 keeps none. */
  cacheBytes?: number;
  /**
   * Called for an image that fails to decode; it is replaced by a black image in this
   * batch (the batch keeps its size, so steps stay addressable). Default: the failure is thrown.
   */
  onBadImage?: (path: string, reason: string) => void;
}

/** Image indices kept for reuse, least recently used first out (a Map keeps insertion order). */
class LruCache {
  private readonly map = new Map<number, Uint8Array>();
  bytes = 0;
  constructor(private readonly cap: number) {}
  get(k: number): Uint8Array | undefined {
    const v = this.map.get(k);
    if (v) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: number, v: Uint8Array): void {
    if (v.byteLength > this.cap || this.map.has(k)) return;
    this.map.set(k, v);
    this.bytes += v.byteLength;
    while (this.bytes > this.cap) {
      const [oldK, oldV] = this.map.entries().next().value as [number, Uint8Array];
      this.map.delete(oldK);
      this.bytes -= oldV.byteLength;
    }
  }
  get size(): number {
    return this.map.size;
  }
}

export class ImageFolderStream {
  readonly batchSize: number;
  readonly batchesPerEpoch: number;
  readonly config: PreprocessConfig;
  readonly seed: number;
  readonly shuffle: boolean;
  private readonly entries: readonly ImageEntry[];
  private readonly pool: DecodePool;
  private readonly size: number;
  private readonly channels: 1 | 3;
  private readonly augment: Required<AugmentOptions> | undefined;
  private readonly pre: ImagePreprocessor;
  private readonly prefetch: number;
  private readonly cache: LruCache;
  private readonly inFlight = new Map<number, Promise<Uint8Array>>();
  private readonly onBadImage: ImageFolderStreamOptions['onBadImage'];
  private readonly perm: Uint32Array;
  private readonly identity: Uint32Array;
  private permEpoch = -1;
  private readonly images: Float32Array;
  private readonly labels: Int32Array;
  private readonly picked: Uint32Array;
  /** Images decoded so far (cache misses), for tests and benchmarks. */
  decoded = 0;

  constructor(o: ImageFolderStreamOptions) {
    if (!Number.isInteger(o.batchSize) || o.batchSize < 1) {
      throw new RangeError(`batchSize must be a positive integer, got ${o.batchSize}`);
    }
    this.entries = o.entries;
    this.pool = o.pool;
    this.size = o.size;
    this.channels = o.channels;
    this.batchSize = o.batchSize;
    this.seed = o.seed ?? 0;
    hashSeed(this.seed);
    this.shuffle = o.shuffle ?? true;
    const shape = [o.size, o.size, o.channels] as const;
    const p = o.preprocess;
    this.config = p !== undefined && 'outputShape' in p ? p : preprocessConfig(shape, p ?? {});
    const aug = o.augment ?? false;
    this.augment = aug === false ? undefined : resolveAugment(shape, aug === true ? {} : aug);
    this.pre = new ImagePreprocessor(this.config);
    this.batchesPerEpoch = countBatches(o.entries.length, o.batchSize, o.dropLast ?? false);
    this.prefetch = o.prefetch ?? 2;
    this.cache = new LruCache(o.cacheBytes ?? 64 * 2 ** 20);
    this.onBadImage = o.onBadImage;
    this.identity = new Uint32Array(o.entries.length);
    for (let i = 0; i < this.identity.length; i++) this.identity[i] = i;
    this.perm = this.shuffle ? new Uint32Array(o.entries.length) : this.identity;
    this.images = new Float32Array(o.batchSize * this.pre.outputSize);
    this.labels = new Int32Array(o.batchSize);
    this.picked = new Uint32Array(o.batchSize);
  }

  get imageShape(): [number, number, number] {
    return this.config.outputShape;
  }

  /** Decoded images held in the cache now (bytes). */
  get cachedBytes(): number {
    return this.cache.bytes;
  }

  private order(epoch: number): Uint32Array {
    if (this.shuffle && this.permEpoch !== epoch) {
      shuffledOrder(this.identity, this.seed, epoch, this.perm);
      this.permEpoch = epoch;
    }
    return this.perm;
  }

  private image(idx: number): Promise<Uint8Array> {
    const hit = this.cache.get(idx);
    if (hit) return Promise.resolve(hit);
    let p = this.inFlight.get(idx);
    if (!p) {
      const e = this.entries[idx]!;
      this.decoded++;
      p = this.pool
        .decode({ path: e.path, size: this.size, channels: this.channels })
        .then(
          (d: Decoded) => d.pixels,
          (err: unknown) => {
            if (!(err instanceof DecodeFailure) || !this.onBadImage) throw err;
            this.onBadImage(e.path, err.message.slice(e.path.length + 2));
            return new Uint8Array(this.size * this.size * this.channels);
          },
        )
        .finally(() => this.inFlight.delete(idx));
      p.then(
        (px) => this.cache.set(idx, px),
        () => {},
      );
      this.inFlight.set(idx, p);
    }
    return p;
  }

  private request(epoch: number, step: number): Promise<Uint8Array>[] {
    const order = this.order(epoch);
    const first = step * this.batchSize;
    const n = Math.min(this.batchSize, this.entries.length - first);
    const out: Promise<Uint8Array>[] = [];
    for (let i = 0; i < n; i++) out.push(this.image(order[first + i]!));
    return out;
  }

  /**
   * Batch `step` of epoch `epoch`, decoded (or from the cache), augmented and
   * preprocessed; the next `prefetch` batches of the epoch are requested before it returns.
   * The arrays are reused by the next call: copy them first.
   */
  async batch(epoch: number, step: number): Promise<Batch> {
    if (!Number.isInteger(step) || step < 0 || step >= this.batchesPerEpoch) {
      throw new RangeError(`step must be in 0..${this.batchesPerEpoch - 1}, got ${step}`);
    }
    const wanted = this.request(epoch, step);
    for (let k = 1; k <= this.prefetch && step + k < this.batchesPerEpoch; k++) {
      // Prefetched decodes that fail are reported when their batch is asked for.
      for (const p of this.request(epoch, step + k)) p.catch(() => {});
    }
    const pixels = await Promise.all(wanted);
    const order = this.order(epoch);
    const first = step * this.batchSize;
    const per = this.pre.outputSize;
    for (let i = 0; i < pixels.length; i++) {
      const idx = order[first + i]!;
      this.picked[i] = idx;
      this.labels[i] = this.entries[idx]!.label;
      const aug = this.augment ? augmentAt(this.augment, this.seed, epoch, first + i) : undefined;
      this.pre.fill(pixels[i]!, 0, this.images, i * per, aug);
    }
    const size = pixels.length;
    const [oh, ow, oc] = this.config.outputShape;
    return {
      images: this.images.subarray(0, size * per),
      labels: this.labels.subarray(0, size),
      indices: this.picked.subarray(0, size),
      size,
      shape: [size, oh, ow, oc],
      epoch,
      step,
    };
  }
}
