import { DatasetError } from './errors.js';

/**
 * The IDX format (LeCun's MNIST files, also Fashion-MNIST): a 4-byte big-endian magic
 * `0x0000TTNN` (TT = element type, 0x08 for unsigned bytes; NN = number of dimensions),
 * then NN big-endian uint32 dimension sizes, then the elements in row-major order.
 * 2051 = 0x00000803 (ubyte, 3 dims: images), 2049 = 0x00000801 (ubyte, 1 dim: labels).
 */
export const IDX_IMAGES_MAGIC = 2051;
export const IDX_LABELS_MAGIC = 2049;

export interface IdxArray {
  /** Dimension sizes from the header, outermost first. */
  dims: number[];
  /** The elements (a view into the input, no copy). */
  data: Uint8Array;
}

export interface IdxExpectation {
  /** Required magic number (2051 images, 2049 labels). */
  magic: number;
  /** Required sizes per dimension; `undefined` entries accept any size. */
  dims?: readonly (number | undefined)[];
}

/**
 * Parses an unsigned-byte IDX file (already gunzipped). Throws a {@link DatasetError}
 * naming `file` when the magic, dimensions or length are not as expected; a file shorter
 * or longer than its header announces reads "expected N bytes, got M".
 */
export function parseIdx(bytes: Uint8Array, file: string, expect: IdxExpectation): IdxArray {
  if (bytes.length < 4) {
    throw new DatasetError(file, `an IDX header (at least 4 bytes)`, {
      kind: 'truncated',
      actual: `${bytes.length} bytes`,
    });
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint32(0, false);
  if (magic !== expect.magic) {
    throw new DatasetError(file, `IDX magic ${expect.magic}`, {
      kind: 'corrupt',
      actual: `${magic}`,
    });
  }
  const ndims = magic & 0xff;
  const headerBytes = 4 + 4 * ndims;
  if (bytes.length < headerBytes) {
    throw new DatasetError(file, `an IDX header of ${headerBytes} bytes`, {
      kind: 'truncated',
      actual: `${bytes.length} bytes`,
    });
  }
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(view.getUint32(4 + 4 * i, false));
  if (expect.dims) {
    if (expect.dims.length !== ndims) {
      throw new DatasetError(file, `${expect.dims.length} IDX dimensions`, {
        kind: 'corrupt',
        actual: `${ndims}`,
      });
    }
    for (let i = 0; i < ndims; i++) {
      const want = expect.dims[i];
      if (want !== undefined && dims[i] !== want) {
        throw new DatasetError(file, `IDX dimension ${i} of size ${want}`, {
          kind: 'corrupt',
          actual: `${dims[i]}`,
        });
      }
    }
  }
  const elements = dims.reduce((a, b) => a * b, 1);
  const total = headerBytes + elements;
  if (bytes.length !== total) {
    throw new DatasetError(file, `${total} bytes`, {
      kind: bytes.length < total ? 'truncated' : 'corrupt',
      actual: `${bytes.length}`,
    });
  }
  return { dims, data: bytes.subarray(headerBytes, total) };
}

/** Encodes an unsigned-byte IDX file (for tests and for writing user data in this format). */
export function encodeIdx(dims: readonly number[], data: Uint8Array): Uint8Array {
  const elements = dims.reduce((a, b) => a * b, 1);
  if (data.length !== elements) {
    throw new RangeError(`encodeIdx: ${elements} elements expected, got ${data.length}`);
  }
  const out = new Uint8Array(4 + 4 * dims.length + elements);
  const view = new DataView(out.buffer);
  view.setUint32(0, 0x0800 | dims.length, false);
  dims.forEach((d, i) => {
    view.setUint32(4 + 4 * i, d, false);
  });
  out.set(data, 4 + 4 * dims.length);
  return out;
}
