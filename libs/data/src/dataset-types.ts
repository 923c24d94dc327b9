/**
 * The shapes every dataset source yields. Types only, so the loaders (image-folder/) and
 * dataset.ts (which dispatches to them) share them without importing each other.
 */

/** Image size as `[height, width, channels]`; images are stored NHWC. */
export type ImageShape = readonly [height: number, width: number, channels: number];

/** One split of a dataset as loaded: `count` images of `imageShape`, row-major NHWC uint8. */
export interface ImageSet {
  /** `count * h * w * c` bytes, image after image, each HWC (channels last). */
  images: Uint8Array;
  /** `count` class ids in `0 .. classNames.length - 1`. */
  labels: Uint8Array;
  count: number;
}

/**
 * A labelled image classification dataset. Every source (Fashion-MNIST IDX files,
 * CIFAR-10 binary batches, a user's directory in either format, or arrays built in
 * memory and checked with {@link validateDataset}) yields this shape.
 */
export interface Dataset {
  name: string;
  classNames: readonly string[];
  imageShape: ImageShape;
  train: ImageSet;
  test: ImageSet;
  /** Where it was read from (absent for datasets built in memory). */
  source?: { dir: string; files: readonly string[] };
}
