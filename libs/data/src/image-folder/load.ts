/**
 * Loading an image folder into a {@link Dataset}: every image decoded once by the decode
 * pool (worker threads, sharp), resized to cover `size x size` and centre-cropped, grey or
 * sRGB, stored as uint8 HWC like the IDX and CIFAR-10 loaders store theirs — so splits,
 * statistics, batching, the engine and the services treat it like any other dataset.
 * Memory is `images * size^2 * channels` bytes, checked against `maxBytes` before
 * anything is decoded; a folder above it goes through {@link ImageFolderStream} instead.
 */
import type { Dataset, ImageSet } from '../dataset.js';
import { DatasetError } from '../errors.js';
import { type BadFile, checkBadFiles, DEFAULT_MAX_BAD_FRACTION } from './bad-files.js';
import { type ChannelMode, DecodeFailure, DecodePool } from './pool.js';
import { type ImageEntry, type ImageFolderScan, scanImageFolder } from './scan.js';

/** The dataset id prefix: `imagefolder:<dir>`. */
export const IMAGE_FOLDER_PREFIX = 'imagefolder:';
export const MIN_IMAGE_SIZE = 8;
export const MAX_IMAGE_SIZE = 1024;
/** Default memory cap of an in-memory image folder (decoded bytes). */
export const DEFAULT_MAX_DATASET_BYTES = 2 * 1024 ** 3;

export interface ImageFolderOptions {
  /** Stored image side in pixels (the network's input size, usually 32..224). */
  size: number;
  /** 1 (grey), 3 (RGB), or 'auto': the images' own, which must then agree. Default 'auto'. */
  channels?: ChannelMode;
  /** Fraction of files that may be skipped as unreadable or unsupported. Default 0.001. */
  maxBadFraction?: number;
  /** Decoded bytes allowed in memory. Default 2 GiB. */
  maxBytes?: number;
  /** A pool to decode with (kept open); by default one is made and closed. */
  pool?: DecodePool;
  workers?: number;
  /** Told about every skipped file (path and reason). */
  onSkip?: (bad: BadFile) => void;
  onProgress?: (done: number, total: number) => void;
}

export interface ImageFolderDataset extends Dataset {
  /** Files skipped as unreadable or unsupported (within the threshold). */
  skipped: BadFile[];
  testFrom: ImageFolderScan['testFrom'];
}

function checkSize(size: number): void {
  if (!Number.isInteger(size) || size < MIN_IMAGE_SIZE || size > MAX_IMAGE_SIZE) {
    throw new RangeError(
      `image size must be an integer in ${MIN_IMAGE_SIZE}..${MAX_IMAGE_SIZE}, got ${size}`,
    );
  }
}

/** Decodes `entries` into one ImageSet; failures go to `bad`. Keeps at most `window` decodes outstanding. */
async function decodeSplit(
  entries: readonly ImageEntry[],
  o: {
    pool: DecodePool;
    size: number;
    channels: ChannelMode;
    bad: BadFile[];
    onSkip?: (b: BadFile) => void;
    tick: () => void;
    /** Fixed by the first image decoded in 'auto' mode; shared across splits. */
    seen: { channels?: number; example?: string };
  },
): Promise<ImageSet> {
  const pixelsPer = o.size * o.size;
  let c = o.channels === 'auto' ? o.seen.channels : o.channels;
  let images: Uint8Array | undefined =
    c !== undefined ? new Uint8Array(entries.length * pixelsPer * c) : undefined;
  const labels = new Uint8Array(entries.length);
  const ok = new Uint8Array(entries.length);
  let mixed: DatasetError | undefined;
  const window = o.pool.workers * 8;
  let next = 0;
  const run = async (): Promise<void> => {
    while (next < entries.length && !mixed) {
      const i = next++;
      const e = entries[i]!;
      try {
        const d = await o.pool.decode({ path: e.path, size: o.size, channels: o.channels });
        if (o.channels === 'auto') {
          if (o.seen.channels === undefined) {
            o.seen.channels = d.channels;
            o.seen.example = e.path;
          } else if (d.channels !== o.seen.channels) {
            mixed ??= new DatasetError(
              e.path,
              `${o.seen.channels} channel(s) like ${o.seen.example}`,
              {
                kind: 'invalid',
                actual: `${d.channels} (mixed grey and colour images: choose 1 or 3 input channels to convert them all)`,
              },
            );
            return;
          }
          c ??= d.channels;
          images ??= new Uint8Array(entries.length * pixelsPer * c);
        }
        images!.set(d.pixels, i * pixelsPer * c!);
        labels[i] = e.label;
        ok[i] = 1;
      } catch (err) {
        if (!(err instanceof DecodeFailure)) throw err;
        const b = { path: e.path, reason: err.message.slice(e.path.length + 2) };
        o.bad.push(b);
        o.onSkip?.(b);
      }
      o.tick();
    }
  };
  await Promise.all(Array.from({ length: Math.min(window, entries.length) }, run));
  if (mixed) throw mixed;
  // Compact away the skipped files.
  let n = 0;
  const per = pixelsPer * (c ?? 1);
  for (let i = 0; i < entries.length; i++) {
    if (!ok[i]) continue;
    if (n !== i) {
      images!.copyWithin(n * per, i * per, (i + 1) * per);
      labels[n] = labels[i]!;
    }
    n++;
  }
  return {
    images: images ? images.slice(0, n * per) : new Uint8Array(0),
    labels: labels.slice(0, n),
    count: n,
  };
}

function checkClasses(scan: ImageFolderScan, set: ImageSet, split: string): void {
  const counts = new Uint32Array(scan.classNames.length);
  for (const l of set.labels) counts[l]!++;
  const empty = counts.indexOf(0);
  if (empty >= 0) {
    throw new DatasetError(scan.root, `readable images of every class in the ${split} split`, {
      kind: 'invalid',
      actual: `none of class ${scan.classNames[empty]} could be decoded`,
    });
  }
}

/**
 * Loads `dir` (see {@link scanImageFolder} for the layout) into memory. Unreadable,
 * undecodable and unsupported files are skipped within `maxBadFraction` of all files
 * (reported through `onSkip` and in `skipped`); beyond it, or for an empty folder, a
 * single class, an empty class or (channels 'auto') mixed grey and colour images, a
 * {@link DatasetError} says which.
 */
export async function loadImageFolder(
  dir: string,
  options: ImageFolderOptions,
): Promise<ImageFolderDataset> {
  checkSize(options.size);
  const channels = options.channels ?? 'auto';
  const maxBad = options.maxBadFraction ?? DEFAULT_MAX_BAD_FRACTION;
  if (!(maxBad >= 0 && maxBad < 1))
    throw new RangeError(`maxBadFraction must be in [0, 1), got ${maxBad}`);
  const scan = await scanImageFolder(dir);
  const total = scan.train.length + scan.test.length + scan.unsupported.length;
  const bytes =
    (scan.train.length + scan.test.length) *
    options.size ** 2 *
    (channels === 'auto' ? 3 : channels);
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_DATASET_BYTES;
  if (bytes > maxBytes) {
    throw new DatasetError(
      dir,
      `at most ${(maxBytes / 2 ** 20).toFixed(0)} MiB of decoded images in memory`,
      {
        kind: 'invalid',
        actual: `${(bytes / 2 ** 20).toFixed(0)} MiB (${scan.train.length + scan.test.length} images at ${options.size}x${options.size}); stream it (ImageFolderStream) or lower the image size`,
      },
    );
  }
  const bad: BadFile[] = scan.unsupported.map((path) => ({
    path,
    reason: 'not a JPEG, PNG or WebP file name',
  }));
  for (const b of bad) options.onSkip?.(b);
  // Fail early when the unsupported files alone cross the threshold.
  checkBadFiles(dir, bad, total, maxBad);
  const pool =
    options.pool ??
    new DecodePool(options.workers !== undefined ? { workers: options.workers } : {});
  let done = 0;
  const tick = () => options.onProgress?.(++done, total - scan.unsupported.length);
  const seen: { channels?: number; example?: string } = {};
  try {
    const common = {
      pool,
      size: options.size,
      channels,
      bad,
      tick,
      seen,
      ...(options.onSkip ? { onSkip: options.onSkip } : {}),
    };
    const train = await decodeSplit(scan.train, common);
    const test = await decodeSplit(scan.test, common);
    checkBadFiles(dir, bad, total, maxBad);
    checkClasses(scan, train, 'train');
    if (test.count === 0) {
      throw new DatasetError(
        dir,
        'a test split: a test/ or val/ folder, or 10 or more images in a class',
        {
          kind: 'invalid',
          actual: 'no test images',
        },
      );
    }
    const c = channels === 'auto' ? (seen.channels ?? 3) : channels;
    return {
      name: `${IMAGE_FOLDER_PREFIX}${dir}`,
      classNames: scan.classNames,
      imageShape: [options.size, options.size, c],
      train,
      test,
      source: { dir, files: [] },
      skipped: bad,
      testFrom: scan.testFrom,
    };
  } finally {
    if (!options.pool) await pool.close();
  }
}
