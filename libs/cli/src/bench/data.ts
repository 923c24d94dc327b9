/**
 * W5 `data`: an image folder (one subfolder per class, PNG and JPEG, seeded synthetic
 * images of varying size) decoded, resized to `size`, flipped at random and batched,
 * through every image once per epoch, on both cores (two decode worker threads). The
 * cache is off, so every epoch decodes every file, as torchvision's `ImageFolder` does.
 *
 * `data-stream`: the bounded-memory check. A folder whose decoded images are several times
 * a stated RSS cap is streamed (prefetching decode workers, a bounded cache) in a fresh
 * process, whose peak RSS is reported against the cap.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DecodePool,
  ImageFolderStream,
  scanImageFolder,
  writeSyntheticImageFolder,
} from '@metaprune/data';
import { type BenchLine, median, peakRssMb } from './record.js';

const WORKERS = 2;
const BATCH = 64;

/** Streams every image of `dir` `epochs` times; images per second of each epoch. */
export async function streamFolder(
  dir: string,
  o: { size: number; epochs: number; cacheBytes: number; prefetch?: number },
): Promise<{ rates: number[]; images: number; cachedBytes: number }> {
  const scan = await scanImageFolder(dir);
  const entries = [...scan.train, ...scan.test];
  const pool = new DecodePool({ workers: WORKERS });
  try {
    const stream = new ImageFolderStream({
      entries,
      pool,
      size: o.size,
      channels: 3,
      batchSize: BATCH,
      seed: 0,
      augment: { crop: 0, flip: true },
      cacheBytes: o.cacheBytes,
      prefetch: o.prefetch ?? 4,
    });
    const rates: number[] = [];
    let sink = 0;
    for (let e = 0; e < o.epochs; e++) {
      const t = performance.now();
      for (let s = 0; s < stream.batchesPerEpoch; s++) {
        const b = await stream.batch(e, s);
        sink += b.images[0]!;
      }
      rates.push(entries.length / ((performance.now() - t) / 1000));
    }
    if (!Number.isFinite(sink)) throw new Error('unreachable: pixels are finite');
    return { rates, images: entries.length, cachedBytes: stream.cachedBytes };
  } finally {
    await pool.close();
  }
}

export interface DataBenchOptions {
  size?: number;
  classes?: number;
  perClass?: number;
  /** Side of the written files (each varies within +-25 %). */
  source?: number;
  epochs?: number;
  /** Runs the reference on the folder before it is removed (the bench's --reference). */
  reference?: (dir: string, size: number) => Record<string, unknown> | null;
}

export async function benchData(o: DataBenchOptions = {}): Promise<BenchLine> {
  const size = o.size ?? 32;
  const classes = o.classes ?? 10;
  const perClass = o.perClass ?? 300;
  const dir = mkdtempSync(join(tmpdir(), 'metaprune-bench-data-'));
  try {
    await writeSyntheticImageFolder(dir, {
      classes,
      perClass,
      size: o.source ?? 64,
      vary: true,
      seed: 5,
    });
    // Epoch 0 is warm-up (worker start, page cache); the median of the rest is reported.
    const r = await streamFolder(dir, { size, epochs: (o.epochs ?? 3) + 1, cacheBytes: 0 });
    const line: BenchLine = {
      workload: 'data',
      backend: `sharp (libvips), ${WORKERS} decode worker threads`,
      batch: BATCH,
      size,
      width: null,
      images_per_s: Math.round(median(r.rates.slice(1))),
      images: r.images,
      source_px: o.source ?? 64,
      formats: 'png+jpeg',
      peak_rss_mb: peakRssMb(),
    };
    const ref = o.reference?.(dir, size);
    if (ref) line['reference'] = ref;
    return line;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface StreamBenchOptions {
  /**
   * The stated RSS cap (MiB): the runtime (Node and two worker threads with libvips, about
   * 270 MiB measured here) + one float batch (64 x 224x224x3: 38 MiB) + cache + prefetch.
   */
  capMb?: number;
  /** Decoded size (square, RGB). */
  size?: number;
  images?: number;
  cacheMb?: number;
  /** Batches decoded ahead. */
  prefetch?: number;
}

/**
 * The bounded-memory check: writes a folder of `images` files, streams it decoded at
 * `size` (RGB) in a child process with a `cacheMb` cache, and reports that process's
 * peak RSS beside the cap and the decoded bytes it went through.
 */
export async function benchDataStream(o: StreamBenchOptions = {}): Promise<BenchLine> {
  const capMb = o.capMb ?? 384;
  const size = o.size ?? 224;
  const images = o.images ?? 10000;
  const cacheMb = o.cacheMb ?? 32;
  const prefetch = o.prefetch ?? 2;
  const dir = mkdtempSync(join(tmpdir(), 'metaprune-bench-stream-'));
  try {
    const classes = 10;
    await writeSyntheticImageFolder(dir, {
      classes,
      perClass: Math.ceil(images / classes),
      size: 256,
      vary: true,
      formats: ['jpeg'],
      seed: 7,
    });
    const child = fileURLToPath(new URL('./data-child.js', import.meta.url));
    const r = spawnSync(
      process.execPath,
      [child, dir, String(size), String(cacheMb * 2 ** 20), String(prefetch)],
      {
        encoding: 'utf8',
      },
    );
    if (r.status !== 0) throw new Error(`data-stream child failed: ${r.stderr.trim()}`);
    const res = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as {
      images: number;
      rate: number;
      peakRssMb: number;
      cachedBytes: number;
    };
    const decodedMb = Math.round((res.images * size * size * 3) / 2 ** 20);
    return {
      workload: 'data-stream',
      backend: `sharp (libvips), ${WORKERS} decode worker threads`,
      batch: BATCH,
      size,
      width: null,
      images: res.images,
      images_per_s: Math.round(res.rate),
      decoded_mb: decodedMb,
      cap_mb: capMb,
      cache_mb: cacheMb,
      prefetch_batches: prefetch,
      decoded_over_cap: Number((decodedMb / capMb).toFixed(2)),
      peak_rss_mb: res.peakRssMb,
      under_cap: res.peakRssMb <= capMb,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
