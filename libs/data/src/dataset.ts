import { access } from 'node:fs/promises';
import { join } from 'node:path';
import type { Dataset, ImageSet } from './dataset-types.js';
import { DatasetError } from './errors.js';
import { IDX_IMAGES_MAGIC, IDX_LABELS_MAGIC, parseIdx } from './idx.js';
import {
  IMAGE_FOLDER_PREFIX,
  type ImageFolderOptions,
  loadImageFolder,
} from './image-folder/load.js';
import { readMaybeGzip } from './io.js';

export type { Dataset, ImageSet, ImageShape } from './dataset-types.js';

export type DatasetName = 'fashion-mnist' | 'cifar10';
export const DATASET_NAMES: readonly DatasetName[] = ['fashion-mnist', 'cifar10'];

/** `imagefolder:<dir>`: a folder of JPEG / PNG / WebP images, one subfolder per class. */
export type ImageFolderId = `imagefolder:${string}`;

/** True for an `imagefolder:<dir>` dataset id (with a non-empty dir). */
export function isImageFolderId(name: string): name is ImageFolderId {
  return name.startsWith(IMAGE_FOLDER_PREFIX) && name.length > IMAGE_FOLDER_PREFIX.length;
}

export interface LoadDatasetOptions {
  name: DatasetName | ImageFolderId;
  /** Directory holding the files; defaults to {@link defaultDataDir} for the dataset. */
  dir?: string;
  /**
   * Put images and labels in `SharedArrayBuffer`s so worker threads can read them
   * without a copy. Default false.
   */
  shared?: boolean;
  /** How an image folder is decoded (size required for `imagefolder:` datasets). */
  image?: Omit<ImageFolderOptions, 'size'> & { size?: number };
}

export const FASHION_MNIST_DIR = '/usr/share/datasets/fashion-mnist';

export const FASHION_MNIST_CLASSES: readonly string[] = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
];

export const CIFAR10_CLASSES: readonly string[] = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

/** The directory a dataset is read from when no `dir` is given (undefined: none, `dir` required). */
export function defaultDataDir(name: DatasetName): string | undefined {
  return name === 'fashion-mnist' ? FASHION_MNIST_DIR : undefined;
}

/** Loads a dataset by name from its default directory or `dir`. */
export async function loadDataset(options: LoadDatasetOptions): Promise<Dataset> {
  let ds: Dataset;
  if (options.name === 'fashion-mnist') {
    ds = await loadIdxDataset(options.dir ?? FASHION_MNIST_DIR, {
      name: 'fashion-mnist',
      classNames: FASHION_MNIST_CLASSES,
    });
  } else if (options.name === 'cifar10') {
    if (options.dir === undefined) {
      throw new DatasetError('cifar10', 'a data directory (dir) with CIFAR-10 binary batches', {
        kind: 'invalid',
        actual: 'none given',
      });
    }
    ds = await loadCifar10(options.dir);
  } else if (isImageFolderId(options.name)) {
    const size = options.image?.size;
    if (size === undefined) {
      throw new DatasetError(options.name, 'an image size to decode the folder to', {
        kind: 'invalid',
        actual: 'none given',
      });
    }
    ds = await loadImageFolder(options.name.slice(IMAGE_FOLDER_PREFIX.length), {
      ...options.image,
      size,
    });
  } else {
    throw new DatasetError(
      String(options.name),
      `a dataset name, one of ${DATASET_NAMES.join(', ')} or imagefolder:<dir>`,
      {
        kind: 'invalid',
      },
    );
  }
  return options.shared ? toShared(ds) : ds;
}

/** Copies a dataset's arrays into `SharedArrayBuffer`s (for worker threads). */
export function toShared(ds: Dataset): Dataset {
  const share = (a: Uint8Array): Uint8Array => {
    const out = new Uint8Array(new SharedArrayBuffer(a.byteLength));
    out.set(a);
    return out;
  };
  const set = (s: ImageSet): ImageSet => ({
    images: share(s.images),
    labels: share(s.labels),
    count: s.count,
  });
  return { ...ds, train: set(ds.train), test: set(ds.test) };
}

/**
 * Checks that a dataset is self-consistent: array lengths match counts and the image
 * shape, labels are within the class list. Throws a {@link DatasetError} (file = the
 * dataset name and split) otherwise.
 */
export function validateDataset(ds: Dataset): void {
  const [h, w, c] = ds.imageShape;
  if (![h, w, c].every((d) => Number.isInteger(d) && d > 0)) {
    throw new DatasetError(ds.name, 'an image shape of positive integers', {
      kind: 'invalid',
      actual: `[${ds.imageShape.join(', ')}]`,
    });
  }
  for (const split of ['train', 'test'] as const) {
    const s = ds[split];
    const where = `${ds.name} ${split}`;
    if (s.images.length !== s.count * h * w * c) {
      throw new DatasetError(where, `${s.count * h * w * c} image bytes`, {
        kind: 'invalid',
        actual: `${s.images.length}`,
      });
    }
    if (s.labels.length !== s.count) {
      throw new DatasetError(where, `${s.count} labels`, {
        kind: 'invalid',
        actual: `${s.labels.length}`,
      });
    }
    checkLabels(s.labels, ds.classNames.length, where);
  }
}

function checkLabels(labels: Uint8Array, numClasses: number, file: string): void {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l >= numClasses) {
      throw new DatasetError(file, `labels in 0..${numClasses - 1}`, {
        kind: 'corrupt',
        actual: `${l} at index ${i}`,
      });
    }
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------- IDX (Fashion-MNIST)

export const IDX_FILES = {
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
} as const;

/** Finds `<base>.gz` or `<base>` in `dir`. */
async function resolveIdxFile(dir: string, base: string): Promise<string> {
  for (const name of [`${base}.gz`, base]) {
    const path = join(dir, name);
    if (await exists(path)) return path;
  }
  throw new DatasetError(join(dir, `${base}.gz`), `a readable file (or ${base} uncompressed)`, {
    kind: 'missing',
    actual: 'no such file (ENOENT)',
  });
}

export interface IdxDatasetOptions {
  name: string;
  classNames: readonly string[];
}

/**
 * Loads a dataset stored as the four MNIST-style IDX files
 * (`train-images-idx3-ubyte`, `train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte`,
 * `t10k-labels-idx1-ubyte`, each gzipped with a `.gz` suffix or plain). Image size comes
 * from the headers (one channel); train and test must agree.
 */
export async function loadIdxDataset(dir: string, options: IdxDatasetOptions): Promise<Dataset> {
  if (!(await exists(dir))) {
    throw new DatasetError(
      dir,
      `a directory with ${Object.values(IDX_FILES).join('.gz, ')}.gz` +
        (dir === FASHION_MNIST_DIR ? ' (Debian package dataset-fashion-mnist)' : ''),
      { kind: 'missing', actual: 'no such directory' },
    );
  }
  const files = await Promise.all(
    Object.values(IDX_FILES).map((base) => resolveIdxFile(dir, base)),
  );
  const [trainImagesFile, trainLabelsFile, testImagesFile, testLabelsFile] = files as [
    string,
    string,
    string,
    string,
  ];
  const [trainImagesRaw, trainLabelsRaw, testImagesRaw, testLabelsRaw] = await Promise.all(
    files.map((f) => readMaybeGzip(f)),
  );
  const trainImages = parseIdx(trainImagesRaw!, trainImagesFile, {
    magic: IDX_IMAGES_MAGIC,
    dims: [undefined, undefined, undefined],
  });
  const [count, h, w] = trainImages.dims as [number, number, number];
  const trainLabels = parseIdx(trainLabelsRaw!, trainLabelsFile, {
    magic: IDX_LABELS_MAGIC,
    dims: [count],
  });
  const testImages = parseIdx(testImagesRaw!, testImagesFile, {
    magic: IDX_IMAGES_MAGIC,
    dims: [undefined, h, w],
  });
  const testCount = testImages.dims[0]!;
  const testLabels = parseIdx(testLabelsRaw!, testLabelsFile, {
    magic: IDX_LABELS_MAGIC,
    dims: [testCount],
  });
  checkLabels(trainLabels.data, options.classNames.length, trainLabelsFile);
  checkLabels(testLabels.data, options.classNames.length, testLabelsFile);
  return {
    name: options.name,
    classNames: options.classNames,
    imageShape: [h, w, 1],
    train: { images: trainImages.data, labels: trainLabels.data, count },
    test: { images: testImages.data, labels: testLabels.data, count: testCount },
    source: { dir, files },
  };
}

// ---------------------------------------------------------------- CIFAR-10 binary

export const CIFAR10_TRAIN_FILES: readonly string[] = [1, 2, 3, 4, 5].map(
  (i) => `data_batch_${i}.bin`,
);
export const CIFAR10_TEST_FILE = 'test_batch.bin';
/** One record: 1 label byte + 32*32*3 pixel bytes (the red plane, then green, then blue). */
export const CIFAR10_RECORD_BYTES = 1 + 3072;

/**
 * Decodes one CIFAR-10 binary batch into HWC images (the file stores each image CHW) and
 * labels. The file must hold a whole, non-zero number of 3073-byte records.
 */
export function parseCifarBatch(bytes: Uint8Array, file: string, numClasses = 10): ImageSet {
  if (bytes.length === 0 || bytes.length % CIFAR10_RECORD_BYTES !== 0) {
    throw new DatasetError(
      file,
      `a multiple of ${CIFAR10_RECORD_BYTES} bytes (1 label byte + 3072 pixel bytes per image)`,
      { kind: bytes.length === 0 ? 'truncated' : 'corrupt', actual: `${bytes.length}` },
    );
  }
  const count = bytes.length / CIFAR10_RECORD_BYTES;
  const images = new Uint8Array(count * 3072);
  const labels = new Uint8Array(count);
  chwRecordsToHwc(bytes, count, images, labels, 0);
  checkLabels(labels, numClasses, file);
  return { images, labels, count };
}

function chwRecordsToHwc(
  bytes: Uint8Array,
  count: number,
  images: Uint8Array,
  labels: Uint8Array,
  first: number,
): void {
  for (let r = 0; r < count; r++) {
    const src = r * CIFAR10_RECORD_BYTES;
    labels[first + r] = bytes[src]!;
    const dst = (first + r) * 3072;
    for (let c = 0; c < 3; c++) {
      const plane = src + 1 + c * 1024;
      for (let p = 0; p < 1024; p++) images[dst + p * 3 + c] = bytes[plane + p]!;
    }
  }
}

/**
 * Loads CIFAR-10 from its binary version: `data_batch_1.bin` .. `data_batch_5.bin` and
 * `test_batch.bin` in `dir` or in `dir/cifar-10-batches-bin` (the archive's folder),
 * optionally gzipped. Class names come from `batches.meta.txt` when present.
 */
export async function loadCifar10(dir: string): Promise<Dataset> {
  let root = dir;
  if (
    !(await exists(join(dir, CIFAR10_TEST_FILE))) &&
    (await exists(join(dir, 'cifar-10-batches-bin', CIFAR10_TEST_FILE)))
  ) {
    root = join(dir, 'cifar-10-batches-bin');
  }
  const trainFiles = CIFAR10_TRAIN_FILES.map((f) => join(root, f));
  const testFile = join(root, CIFAR10_TEST_FILE);
  const [trainRaw, testRaw] = await Promise.all([
    Promise.all(trainFiles.map((f) => readMaybeGzip(f))),
    readMaybeGzip(testFile),
  ]);
  let classNames = CIFAR10_CLASSES;
  const metaFile = join(root, 'batches.meta.txt');
  if (await exists(metaFile)) {
    const names = new TextDecoder()
      .decode(await readMaybeGzip(metaFile))
      .split(/\r?\n/)
      .map((s) => s.trim())
      .filter((s) => s.length > 0);
    if (names.length > 0) classNames = names;
  }
  const parts = trainRaw.map((bytes, i) =>
    parseCifarBatch(bytes, trainFiles[i]!, classNames.length),
  );
  const count = parts.reduce((n, p) => n + p.count, 0);
  const images = new Uint8Array(count * 3072);
  const labels = new Uint8Array(count);
  let at = 0;
  for (const p of parts) {
    images.set(p.images, at * 3072);
    labels.set(p.labels, at);
    at += p.count;
  }
  const test = parseCifarBatch(testRaw, testFile, classNames.length);
  return {
    name: 'cifar10',
    classNames,
    imageShape: [32, 32, 3],
    train: { images, labels, count },
    test,
    source: { dir: root, files: [...trainFiles, testFile] },
  };
}
