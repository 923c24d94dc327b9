/**
 * Writing image folders: a loaded dataset's images as PNG / JPEG / WebP files in the
 * `ImageFolder` layout (fixtures for tests, `metaprune datasets` examples), and seeded
 * synthetic folders of any size (benchmarks, the bounded-memory check). Encoding runs on
 * sharp in the calling thread, a few files at a time.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { ImageSet, ImageShape } from '../dataset.js';
import { hashSeed, Rng } from '../random.js';

export type ImageFormat = 'png' | 'jpeg' | 'webp';

type Sharp = typeof import('sharp');
function sharp(): Sharp {
  return createRequire(import.meta.url)('sharp') as Sharp;
}

async function encode(
  pixels: Uint8Array,
  [h, w, c]: ImageShape,
  format: ImageFormat,
  quality: number,
  side?: number,
): Promise<Buffer> {
  let img = sharp()(pixels, { raw: { width: w, height: h, channels: c as 1 | 3 } });
  if (side !== undefined && side !== w) img = img.resize(side, side, { kernel: 'cubic' });
  // Grey stays one channel in the file (sharp would otherwise write sRGB).
  if (c === 1) img = img.toColourspace('b-w');
  if (format === 'png') return img.png().toBuffer();
  if (format === 'jpeg') return img.jpeg({ quality }).toBuffer();
  return img.webp({ quality }).toBuffer();
}

async function inBatches(n: number, each: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const run = async () => {
    while (next < n) await each(next++);
  };
  await Promise.all(Array.from({ length: 8 }, run));
}

export interface WriteImageFolderOptions {
  format: ImageFormat;
  /** JPEG / WebP quality. Default 90. */
  quality?: number;
  /** Images written per class (the first ones of the set). Default all. */
  perClass?: number;
}

/**
 * Writes the images of `set` to `<root>/<class name>/<index>.<ext>` (class names with `/`
 * have it replaced by `-`). Returns the number of files written.
 */
export async function writeImageFolder(
  root: string,
  set: ImageSet,
  shape: ImageShape,
  classNames: readonly string[],
  options: WriteImageFolderOptions,
): Promise<number> {
  const dirs = classNames.map((n) => join(root, n.replaceAll('/', '-')));
  await Promise.all(dirs.map((d) => mkdir(d, { recursive: true })));
  const per = shape[0] * shape[1] * shape[2];
  const perClass = new Uint32Array(classNames.length);
  const picked: number[] = [];
  for (let i = 0; i < set.count; i++) {
    const l = set.labels[i]!;
    if (options.perClass === undefined || perClass[l]! < options.perClass) {
      perClass[l]!++;
      picked.push(i);
    }
  }
  const ext = options.format === 'jpeg' ? 'jpg' : options.format;
  await inBatches(picked.length, async (k) => {
    const i = picked[k]!;
    const bytes = await encode(
      set.images.subarray(i * per, (i + 1) * per),
      shape,
      options.format,
      options.quality ?? 90,
    );
    await writeFile(join(dirs[set.labels[i]!]!, `${String(i).padStart(6, '0')}.${ext}`), bytes);
  });
  return picked.length;
}

export interface SyntheticFolderOptions {
  classes: number;
  perClass: number;
  /** Side of the written images (each image its own size within +-25 % when `vary`). */
  size: number;
  vary?: boolean;
  channels?: 1 | 3;
  /** Formats used in turn (file i gets formats[i % n]). Default PNG and JPEG. */
  formats?: readonly ImageFormat[];
  seed?: number;
}

/**
 * A seeded synthetic folder: per class a distinct smooth colour gradient plus noise, so a
 * network can tell the classes apart and the files compress like photographs rather than
 * like constant images. Returns the file count.
 */
export async function writeSyntheticImageFolder(
  root: string,
  o: SyntheticFolderOptions,
): Promise<number> {
  const formats = o.formats ?? ['png', 'jpeg'];
  const c = o.channels ?? 3;
  const total = o.classes * o.perClass;
  const dirs = Array.from({ length: o.classes }, (_, k) =>
    join(root, `class${String(k).padStart(3, '0')}`),
  );
  await Promise.all(dirs.map((d) => mkdir(d, { recursive: true })));
  await inBatches(total, async (i) => {
    const k = i % o.classes;
    const rng = new Rng(hashSeed(0x5e7, o.seed ?? 0, i));
    const side = o.vary ? Math.max(8, Math.round(o.size * (0.75 + 0.5 * rng.next()))) : o.size;
    // Drawn at most 48 px wide and scaled up by the encoder: large folders are written
    // quickly, and still have structure and noise at every size.
    const base = Math.min(side, 48);
    const px = new Uint8Array(base * base * c);
    for (let y = 0; y < base; y++) {
      for (let x = 0; x < base; x++) {
        for (let ch = 0; ch < c; ch++) {
          const phase = ((k * 37 + ch * 91) % 256) / 256;
          const v =
            128 + 100 * Math.sin(6.283 * (phase + (x * (k + 1) + y * (ch + 1)) / (base * 2)));
          px[(y * base + x) * c + ch] = Math.max(
            0,
            Math.min(255, Math.round(v + 20 * (rng.next() - 0.5))),
          );
        }
      }
    }
    const format = formats[i % formats.length]!;
    const bytes = await encode(px, [base, base, c], format, 90, side);
    const ext = format === 'jpeg' ? 'jpg' : format;
    await writeFile(join(dirs[k]!, `${String(i).padStart(7, '0')}.${ext}`), bytes);
  });
  return total;
}
