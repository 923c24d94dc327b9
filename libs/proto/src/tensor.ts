import { DataType, type Tensor, type TensorChunk } from './gen/metaprune/common/v1/common.js';

/** Default largest payload per TensorChunk: 1 MiB, well under gRPC's 4 MiB message limit. */
export const DEFAULT_MAX_CHUNK_BYTES = 1 << 20;

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function elementSize(dtype: DataType): number {
  if (dtype === DataType.FLOAT32) return 4;
  throw new RangeError(`unsupported tensor dtype ${dtype} (only FLOAT32)`);
}

function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const [i, d] of shape.entries()) {
    if (!Number.isInteger(d) || d < 0) {
      throw new RangeError(`tensor shape[${i}] = ${d} is not a non-negative integer`);
    }
    n *= d;
  }
  return n;
}

function packFloat32(values: Float32Array): Buffer {
  if (LITTLE_ENDIAN) {
    return Buffer.from(new Uint8Array(values.buffer, values.byteOffset, values.byteLength));
  }
  const out = Buffer.allocUnsafe(values.length * 4);
  for (let i = 0; i < values.length; i++) out.writeFloatLE(values[i]!, i * 4);
  return out;
}

/** A FLOAT32 Tensor of `shape` holding a copy of `values` (row-major). */
export function float32Tensor(shape: readonly number[], values: Float32Array): Tensor {
  const n = elementCount(shape);
  if (n !== values.length) {
    throw new RangeError(
      `tensor shape [${shape.join(', ')}] needs ${n} values, got ${values.length}`,
    );
  }
  return { shape: [...shape], dtype: DataType.FLOAT32, data: packFloat32(values) };
}

/** The elements of a FLOAT32 Tensor as a new Float32Array; throws if the tensor is malformed. */
export function tensorToFloat32(tensor: Tensor): Float32Array {
  const size = elementSize(tensor.dtype);
  const n = elementCount(tensor.shape);
  if (tensor.data.length !== n * size) {
    throw new RangeError(
      `tensor of shape [${tensor.shape.join(', ')}] needs ${n * size} bytes, got ${tensor.data.length}`,
    );
  }
  const out = new Float32Array(n);
  if (LITTLE_ENDIAN) {
    new Uint8Array(out.buffer).set(tensor.data);
  } else {
    const view = new DataView(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    for (let i = 0; i < n; i++) out[i] = view.getFloat32(i * 4, true);
  }
  return out;
}

/**
 * Splits a tensor into TensorChunks of at most `maxChunkBytes` payload bytes (rounded down
 * to whole elements). An empty tensor gives one chunk with empty data. Chunks share memory
 * with `tensor.data`.
 */
export function* chunkTensor(
  name: string,
  tensor: Tensor,
  maxChunkBytes: number = DEFAULT_MAX_CHUNK_BYTES,
): Generator<TensorChunk> {
  const size = elementSize(tensor.dtype);
  const total = elementCount(tensor.shape) * size;
  if (tensor.data.length !== total) {
    throw new RangeError(`tensor "${name}" needs ${total} bytes, got ${tensor.data.length}`);
  }
  const step = Math.floor(maxChunkBytes / size) * size;
  if (!(step > 0)) throw new RangeError(`maxChunkBytes ${maxChunkBytes} is below one element`);
  let offset = 0;
  do {
    const end = Math.min(total, offset + step);
    yield {
      name,
      shape: [...tensor.shape],
      dtype: tensor.dtype,
      offsetBytes: offset,
      totalBytes: total,
      data: tensor.data.subarray(offset, end),
    };
    offset = end;
  } while (offset < total);
}

interface Pending {
  name: string;
  shape: number[];
  dtype: DataType;
  data: Buffer;
  received: number;
}

/**
 * Reassembles tensors from a stream of TensorChunks (the order chunkTensor emits:
 * a tensor's chunks consecutive, offsets increasing). Throws on any gap, overlap,
 * inconsistent header or interleaving, naming the tensor.
 */
export class TensorAssembler {
  private pending: Pending | undefined;

  /** Adds a chunk; returns the tensor it completes, if any. */
  push(chunk: TensorChunk): { name: string; tensor: Tensor } | undefined {
    let p = this.pending;
    if (!p) {
      const size = elementSize(chunk.dtype);
      const total = elementCount(chunk.shape) * size;
      if (chunk.totalBytes !== total) {
        throw new RangeError(
          `tensor "${chunk.name}": total_bytes ${chunk.totalBytes} does not match shape [${chunk.shape.join(', ')}] (${total} bytes)`,
        );
      }
      p = {
        name: chunk.name,
        shape: [...chunk.shape],
        dtype: chunk.dtype,
        data: Buffer.alloc(total),
        received: 0,
      };
      this.pending = p;
    } else if (
      chunk.name !== p.name ||
      chunk.dtype !== p.dtype ||
      chunk.totalBytes !== p.data.length ||
      chunk.shape.length !== p.shape.length ||
      chunk.shape.some((d, i) => d !== p!.shape[i])
    ) {
      throw new RangeError(
        `tensor "${chunk.name}" started before tensor "${p.name}" was complete, or its header changed`,
      );
    }
    if (chunk.offsetBytes !== p.received) {
      throw new RangeError(
        `tensor "${p.name}": chunk at offset ${chunk.offsetBytes}, expected ${p.received}`,
      );
    }
    if (p.received + chunk.data.length > p.data.length) {
      throw new RangeError(`tensor "${p.name}": chunk overruns total_bytes ${p.data.length}`);
    }
    if (chunk.data.length === 0 && p.data.length > 0) {
      throw new RangeError(`tensor "${p.name}": empty chunk at offset ${chunk.offsetBytes}`);
    }
    chunk.data.copy(p.data, p.received);
    p.received += chunk.data.length;
    if (p.received < p.data.length) return undefined;
    this.pending = undefined;
    return { name: p.name, tensor: { shape: p.shape, dtype: p.dtype, data: p.data } };
  }

  /** Name of a tensor whose chunks started but did not finish, if any. */
  get incomplete(): string | undefined {
    return this.pending?.name;
  }
}

/** Collects a whole chunk stream into tensors by name; throws on duplicates or a truncated stream. */
export async function assembleTensors(
  chunks: AsyncIterable<TensorChunk> | Iterable<TensorChunk>,
): Promise<Map<string, Tensor>> {
  const assembler = new TensorAssembler();
  const out = new Map<string, Tensor>();
  for await (const chunk of chunks) {
    const done = assembler.push(chunk);
    if (!done) continue;
    if (out.has(done.name)) throw new RangeError(`tensor "${done.name}" appears twice`);
    out.set(done.name, done.tensor);
  }
  if (assembler.incomplete !== undefined) {
    throw new RangeError(`stream ended inside tensor "${assembler.incomplete}"`);
  }
  return out;
}
