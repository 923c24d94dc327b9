import { describe, expect, it } from 'vitest';
import { resizeCover } from '../src/image-folder/resize.js';

const image = (
  w: number,
  h: number,
  c: number,
  f: (x: number, y: number, ch: number) => number,
) => {
  const a = new Uint8Array(w * h * c);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let ch = 0; ch < c; ch++) a[(y * w + x) * c + ch] = f(x, y, ch);
  return a;
};

describe('resizeCover', () => {
  it('is the identity at the same size', () => {
    const a = image(9, 9, 3, (x, y, c) => (x * 31 + y * 7 + c * 50) % 256);
    expect(resizeCover(a, 9, 9, 3, 9)).toEqual(a);
  });

  it('keeps a constant image constant when shrinking and enlarging', () => {
    const a = image(40, 30, 1, () => 77);
    expect(resizeCover(a, 40, 30, 1, 8).every((v) => v === 77)).toBe(true);
    expect(resizeCover(a, 40, 30, 1, 64).every((v) => v === 77)).toBe(true);
  });

  it('crops the centre square of a wide image', () => {
    // Left and right 10 columns are 0, the centre 20x20 is 200: only the centre remains.
    const a = image(40, 20, 1, (x) => (x >= 10 && x < 30 ? 200 : 0));
    expect(resizeCover(a, 40, 20, 1, 5).every((v) => v === 200)).toBe(true);
  });

  it('keeps a linear ramp linear away from the borders (triangle filter, 4x shrink)', () => {
    const a = image(64, 64, 1, (x) => 2 * x + 40);
    const out = resizeCover(a, 64, 64, 1, 16);
    // Output column i averages input columns around (i + 0.5) * 4 - 0.5: value 2 * that + 40.
    for (let i = 2; i < 14; i++)
      expect(out[5 * 16 + i]).toBe(Math.round(2 * ((i + 0.5) * 4 - 0.5) + 40));
  });
});
