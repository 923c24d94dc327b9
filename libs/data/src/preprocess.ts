import type { ImageShape } from './dataset.js';
import type { Rng } from './random.js';
import type { Subset } from './split.js';

/**
 * Turning stored uint8 HWC images into network input (Float32, NHWC). The steps, in order:
 *
 * 1. scale: `x = pixel / 255` (so images are in [0, 1], the exported model's input);
 * 2. augmentation, training only (see {@link AugmentParams}): shift by `(dy, dx)` and
 *    optional horizontal flip, in the input's own coordinates, filling with 0;
 * 3. geometry to the output size: `'pad'` adds zeros around the image (centred; an odd
 *    surplus goes to the bottom / right), `'bilinear'` resizes exactly as
 *    `tf.image.resizeBilinear(x, size)` with its defaults (alignCorners = false,
 *    halfPixelCenters = false);
 * 4. normalise: `(x - mean[c]) / std[c]` per input channel;
 * 5. replicate a single channel to `outputShape[2]` channels when asked (1 -> 3).
 *
 * A {@link PreprocessConfig} is plain JSON, so a trained model can carry it and an
 * exported model can rebuild these steps with tensor ops (pad, resize, sub, div, tile).
 */

/** Per-channel statistics of pixels scaled to [0, 1]. */
export interface ChannelStats {
  mean: number[];
  std: number[];
}

/**
 * Mean and (population) standard deviation per channel over the images of `subset`, in
 * the [0, 1] pixel scale, over the native image (padding excluded). A channel with zero
 * spread gets std 1.
 */
export function computeChannelStats(subset: Subset): ChannelStats {
  const [h, w, c] = subset.imageShape;
  const pixels = h * w;
  const size = pixels * c;
  const sum = new Float64Array(c);
  const sumSq = new Float64Array(c);
  const images = subset.source.images;
  // Integer sums per image are exact; totals stay below 2^53 for any realistic set.
  const s = new Float64Array(c);
  const q = new Float64Array(c);
  for (const idx of subset.indices) {
    const base = idx * size;
    s.fill(0);
    q.fill(0);
    if (c === 1) {
      let a = 0;
      let b = 0;
      for (let p = 0; p < size; p++) {
        const v = images[base + p]!;
        a += v;
        b += v * v;
      }
      s[0] = a;
      q[0] = b;
    } else {
      for (let p = 0; p < size; p++) {
        const v = images[base + p]!;
        const ch = p % c;
        s[ch]! += v;
        q[ch]! += v * v;
      }
    }
    for (let ch = 0; ch < c; ch++) {
      sum[ch]! += s[ch]!;
      sumSq[ch]! += q[ch]!;
    }
  }
  const n = subset.indices.length * pixels;
  const mean: number[] = [];
  const std: number[] = [];
  for (let ch = 0; ch < c; ch++) {
    const m = n > 0 ? sum[ch]! / n : 0;
    const variance = n > 0 ? Math.max(0, sumSq[ch]! / n - m * m) : 0;
    const sd = Math.sqrt(variance) / 255;
    mean.push(m / 255);
    std.push(sd > 1e-8 ? sd : 1);
  }
  return { mean, std };
}

export type ResizeMode = 'none' | 'pad' | 'bilinear';

export interface PreprocessOptions {
  /** Per-channel mean in [0, 1] scale (one number applies to all channels). Default 0. */
  mean?: number | readonly number[];
  /** Per-channel std in [0, 1] scale. Default 1. */
  std?: number | readonly number[];
  /** Shorthand for mean and std, e.g. from {@link computeChannelStats}. */
  stats?: ChannelStats;
  /** Output height and width (a number: square). Default: the input size. */
  size?: number | readonly [height: number, width: number];
  /** How to reach `size`: default `'pad'` when it is no smaller than the input, else `'bilinear'`. */
  resize?: 'pad' | 'bilinear';
  /** Output channels: the input's, or 3 from a 1-channel input (replication). Default: the input's. */
  channels?: number;
}

/** A fully resolved, JSON-serialisable description of the preprocessing. */
export interface PreprocessConfig {
  inputShape: [height: number, width: number, channels: number];
  outputShape: [height: number, width: number, channels: number];
  /** Per input channel, [0, 1] scale. */
  mean: number[];
  /** Per input channel, [0, 1] scale. */
  std: number[];
  resize: ResizeMode;
  /** Zero padding `[top, bottom, left, right]` when `resize` is `'pad'`, else zeros. */
  pad: [top: number, bottom: number, left: number, right: number];
}

function perChannel(
  v: number | readonly number[] | undefined,
  c: number,
  dflt: number,
  what: string,
) {
  if (v === undefined) return new Array<number>(c).fill(dflt);
  if (typeof v === 'number') return new Array<number>(c).fill(v);
  if (v.length !== c)
    throw new RangeError(`${what} needs ${c} values (one per channel), got ${v.length}`);
  return [...v];
}

/** Resolves {@link PreprocessOptions} for images of `inputShape`. */
export function preprocessConfig(
  inputShape: ImageShape,
  options: PreprocessOptions = {},
): PreprocessConfig {
  const [h, w, c] = inputShape;
  const mean = perChannel(options.mean ?? options.stats?.mean, c, 0, 'mean');
  const std = perChannel(options.std ?? options.stats?.std, c, 1, 'std');
  if (std.some((s) => !(s > 0)))
    throw new RangeError(`std must be positive, got [${std.join(', ')}]`);
  const size = options.size ?? [h, w];
  const [oh, ow] = typeof size === 'number' ? [size, size] : size;
  if (![oh, ow].every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`size must be positive integers, got [${oh}, ${ow}]`);
  }
  const oc = options.channels ?? c;
  if (oc !== c && !(c === 1 && oc > 1)) {
    throw new RangeError(
      `channels: cannot turn ${c} channels into ${oc} (only 1 -> n replication)`,
    );
  }
  let resize: ResizeMode;
  if (oh === h && ow === w) resize = 'none';
  else resize = options.resize ?? (oh >= h && ow >= w ? 'pad' : 'bilinear');
  if (resize === 'pad' && (oh < h || ow < w)) {
    throw new RangeError(
      `cannot pad ${h}x${w} images to a smaller ${oh}x${ow}; use resize 'bilinear'`,
    );
  }
  const pad: [number, number, number, number] = [0, 0, 0, 0];
  if (resize === 'pad') {
    pad[0] = Math.floor((oh - h) / 2);
    pad[1] = oh - h - pad[0];
    pad[2] = Math.floor((ow - w) / 2);
    pad[3] = ow - w - pad[2];
  }
  return { inputShape: [h, w, c], outputShape: [oh, ow, oc], mean, std, resize, pad };
}

// ---------------------------------------------------------------- augmentation

export interface AugmentOptions {
  /**
   * Random crop with padding: the image is padded by this many zero pixels on every side
   * and a crop of the original size is taken at a uniform offset, i.e. shifted by
   * `dy, dx` in `[-crop, crop]`. Default `floor(min(h, w) / 8)` (3 for 28 px, 4 for 32 px);
   * 0 disables it.
   */
  crop?: number;
  /** Mirror left-right with probability 1/2. Default true. */
  flip?: boolean;
}

/** One image's augmentation: `out(y, x) = in(y + dy, flip ? W-1-x+dx : x+dx)`, 0 outside. */
export interface AugmentParams {
  dy: number;
  dx: number;
  flip: boolean;
}

/** Resolves the default crop padding for an image shape. */
export function resolveAugment(
  inputShape: ImageShape,
  options: AugmentOptions = {},
): Required<AugmentOptions> {
  const crop = options.crop ?? Math.floor(Math.min(inputShape[0], inputShape[1]) / 8);
  if (!Number.isInteger(crop) || crop < 0)
    throw new RangeError(`crop must be a non-negative integer, got ${crop}`);
  return { crop, flip: options.flip ?? true };
}

/** Draws one image's augmentation; always draws dy, dx and the flip coin, whatever the options. */
export function sampleAugment(options: Required<AugmentOptions>, rng: Rng): AugmentParams {
  const dy = rng.int(2 * options.crop + 1) - options.crop;
  const dx = rng.int(2 * options.crop + 1) - options.crop;
  const flip = rng.nextU32() >= 0x80000000;
  return { dy, dx, flip: options.flip && flip };
}

// ---------------------------------------------------------------- per-image fill

/**
 * Compiled form of a {@link PreprocessConfig}: writes one preprocessed (and optionally
 * augmented) image into a Float32 buffer. Keeps small scratch buffers, so one instance
 * must not be used from two threads at once (it never is in JavaScript).
 */
export class ImagePreprocessor {
  readonly config: PreprocessConfig;
  /** Floats per output image. */
  readonly outputSize: number;
  /** `lut[c * 256 + v]` = normalised value of pixel `v` in channel `c`. */
  private readonly lut: Float32Array;
  private readonly scratch: Float32Array;
  /** A black (0) pixel after normalisation, per output channel. */
  private readonly black: Float32Array;

  constructor(config: PreprocessConfig) {
    this.config = config;
    const [oh, ow, oc] = config.outputShape;
    const [h, w, c] = config.inputShape;
    this.outputSize = oh * ow * oc;
    this.lut = new Float32Array(c * 256);
    for (let ch = 0; ch < c; ch++) {
      for (let v = 0; v < 256; v++) {
        this.lut[ch * 256 + v] = (v / 255 - config.mean[ch]!) / config.std[ch]!;
      }
    }
    this.scratch = new Float32Array(config.resize === 'bilinear' ? h * w * c : 0);
    this.black = new Float32Array(oc);
    for (let ch = 0; ch < oc; ch++) this.black[ch] = this.lut[Math.floor((ch * c) / oc) * 256]!;
  }

  /**
   * Writes the image starting at byte `srcOffset` of `src` (HWC uint8 of the input shape)
   * to `dst` from `dstOffset` (HWC float32 of the output shape).
   */
  fill(
    src: Uint8Array,
    srcOffset: number,
    dst: Float32Array,
    dstOffset: number,
    aug?: AugmentParams,
  ): void {
    if (this.config.resize === 'bilinear') this.fillBilinear(src, srcOffset, dst, dstOffset, aug);
    else this.fillPadded(src, srcOffset, dst, dstOffset, aug);
  }

  private fillPadded(
    src: Uint8Array,
    srcOffset: number,
    dst: Float32Array,
    dstOffset: number,
    aug: AugmentParams | undefined,
  ): void {
    const { inputShape, outputShape, pad } = this.config;
    const [h, w, c] = inputShape;
    const [oh, ow, oc] = outputShape;
    const rep = oc / c;
    const lut = this.lut;
    const dy = aug?.dy ?? 0;
    const dx = aug?.dx ?? 0;
    const flip = aug?.flip ?? false;
    const left = pad[2];
    // Columns (in input coordinates nx = x - left) whose source column is inside the image:
    // sx = nx + dx, or sx = w - 1 - nx + dx when flipped.
    const nx0 = flip ? Math.max(0, dx) : Math.max(0, -dx);
    const nx1 = flip ? Math.min(w, w + dx) : Math.min(w, w - dx);
    const step = flip ? -c : c;
    let o = dstOffset;
    for (let y = 0; y < oh; y++) {
      const ny = y - pad[0];
      const sy = ny + dy;
      const rowEnd = o + ow * oc;
      if (ny < 0 || ny >= h || sy < 0 || sy >= h || nx0 >= nx1) {
        o = this.fillBlack(dst, o, rowEnd);
        continue;
      }
      o = this.fillBlack(dst, o, o + (left + nx0) * oc);
      const sx0 = flip ? w - 1 - nx0 + dx : nx0 + dx;
      let p = srcOffset + (sy * w + sx0) * c;
      const n = nx1 - nx0;
      if (c === 1 && rep === 1) {
        for (let i = 0; i < n; i++, p += step) dst[o++] = lut[src[p]!]!;
      } else if (c === 1) {
        for (let i = 0; i < n; i++, p += step) {
          const v = lut[src[p]!]!;
          for (let r = 0; r < rep; r++) dst[o++] = v;
        }
      } else {
        for (let i = 0; i < n; i++, p += step) {
          for (let ch = 0; ch < c; ch++) dst[o++] = lut[ch * 256 + src[p + ch]!]!;
        }
      }
      o = this.fillBlack(dst, o, rowEnd);
    }
  }

  /** Writes normalised black pixels into `dst[from, to)` (whole output pixels); returns `to`. */
  private fillBlack(dst: Float32Array, from: number, to: number): number {
    const black = this.black;
    const oc = black.length;
    if (oc === 1) dst.fill(black[0]!, from, to);
    else for (let o = from; o < to; o += oc) dst.set(black, o);
    return to;
  }

  private fillBilinear(
    src: Uint8Array,
    srcOffset: number,
    dst: Float32Array,
    dstOffset: number,
    aug: AugmentParams | undefined,
  ): void {
    const { inputShape, outputShape } = this.config;
    const [h, w, c] = inputShape;
    const [oh, ow, oc] = outputShape;
    const rep = oc / c;
    const lut = this.lut;
    const a = this.scratch;
    const dy = aug?.dy ?? 0;
    const dx = aug?.dx ?? 0;
    const flip = aug?.flip ?? false;
    // Augmented, normalised image at the input size (normalisation commutes with bilinear
    // interpolation, whose weights sum to 1).
    let o = 0;
    for (let y = 0; y < h; y++) {
      const sy = y + dy;
      for (let x = 0; x < w; x++) {
        const sx = flip ? w - 1 - x + dx : x + dx;
        const valid = sy >= 0 && sy < h && sx >= 0 && sx < w;
        const base = srcOffset + (sy * w + sx) * c;
        for (let ch = 0; ch < c; ch++) a[o++] = lut[ch * 256 + (valid ? src[base + ch]! : 0)]!;
      }
    }
    // tf.image.resizeBilinear, alignCorners = false, halfPixelCenters = false.
    const sH = h / oh;
    const sW = w / ow;
    o = dstOffset;
    for (let y = 0; y < oh; y++) {
      const fy = sH * y;
      const y0 = Math.floor(fy);
      const y1 = Math.min(h - 1, Math.ceil(fy));
      const ry = fy - y0;
      for (let x = 0; x < ow; x++) {
        const fx = sW * x;
        const x0 = Math.floor(fx);
        const x1 = Math.min(w - 1, Math.ceil(fx));
        const rx = fx - x0;
        for (let ch = 0; ch < c; ch++) {
          const tl = a[(y0 * w + x0) * c + ch]!;
          const tr = a[(y0 * w + x1) * c + ch]!;
          const bl = a[(y1 * w + x0) * c + ch]!;
          const br = a[(y1 * w + x1) * c + ch]!;
          const top = tl + (tr - tl) * rx;
          const bottom = bl + (br - bl) * rx;
          const v = top + (bottom - top) * ry;
          for (let r = 0; r < rep; r++) dst[o++] = v;
        }
      }
    }
  }
}
