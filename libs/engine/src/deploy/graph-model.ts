/**
 * Writes an {@link InferenceGraph} as a tfjs *graph model* (`format: 'graph-model'`, a
 * TensorFlow GraphDef in JSON), which plain `tf.loadGraphModel` runs. Why a graph model
 * and not a folded Layers model: tfjs-layers fuses only relu (not relu6) into Conv2D and
 * never fuses DepthwiseConv2D (depthwise, then bias add, then activation as three ops),
 * and its per-layer execution costs more than the kernels of a small network at batch 1.
 * The graph ops here are exactly the kernels the engine's forward runs (`_FusedConv2D`,
 * `FusedDepthwiseConv2dNative`, `_FusedMatMul` with bias + activation, `AddV2`, `Mean`),
 * so the delivered model runs what the latency table measured (docs/benchmarks.md, W6).
 */
import type { ConvOp, DenseOp, InferenceGraph } from './fold.js';

/** What `tf.io` needs: a model.json body (without weightsManifest paths) and the weights. */
export interface GraphArtifacts {
  modelTopology: {
    node: GraphNode[];
    library: Record<string, never>;
    versions: { producer: number };
  };
  weightSpecs: { name: string; shape: number[]; dtype: 'float32' | 'int32' }[];
  weightData: ArrayBuffer;
}

interface GraphNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, unknown>;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const FLOAT = { type: 'DT_FLOAT' };
const ints = (xs: readonly number[]) => ({ list: { i: xs.map(String) } });
const strs = (xs: readonly string[]) => ({ list: { s: xs.map(b64) } });
const ACT_OP = { relu: 'Relu', relu6: 'Relu6' } as const;

/** Builds the graph-model topology and weights of `g`. */
export function toGraphModel(g: InferenceGraph): GraphArtifacts {
  const nodes: GraphNode[] = [];
  const specs: GraphArtifacts['weightSpecs'] = [];
  const chunks: ArrayBuffer[] = [];
  const constant = (name: string, values: Float32Array | Int32Array, shape: number[]): string => {
    const dtype = values instanceof Int32Array ? 'int32' : 'float32';
    specs.push({ name, shape, dtype });
    chunks.push(values.slice().buffer as ArrayBuffer);
    nodes.push({
      name,
      op: 'Const',
      attr: {
        dtype: { type: dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT' },
        value: {
          tensor: {
            dtype: dtype === 'int32' ? 'DT_INT32' : 'DT_FLOAT',
            tensorShape: { dim: shape.map((d) => ({ size: String(d) })) },
          },
        },
      },
    });
    return name;
  };
  const fused = (op: ConvOp | DenseOp) =>
    op.act === 'linear' ? ['BiasAdd'] : ['BiasAdd', ACT_OP[op.act] as string];

  for (const op of g.ops) {
    const x = op.inputs[0] as string;
    switch (op.kind) {
      case 'input':
        nodes.push({
          name: op.name,
          op: 'Placeholder',
          attr: {
            dtype: FLOAT,
            shape: { shape: { dim: op.shape.map((d) => ({ size: String(d ?? -1) })) } },
          },
        });
        break;
      case 'pad': {
        const p = constant(`${op.name}/paddings`, Int32Array.from(op.paddings.flat()), [4, 2]);
        if (op.value === 0) {
          nodes.push({ name: op.name, op: 'Pad', input: [x, p], attr: { T: FLOAT } });
        } else {
          const v = constant(`${op.name}/value`, Float32Array.of(op.value), []);
          nodes.push({ name: op.name, op: 'PadV2', input: [x, p, v], attr: { T: FLOAT } });
        }
        break;
      }
      case 'conv':
      case 'depthwise': {
        const k = constant(`${op.name}/kernel`, op.kernel, op.kernelShape);
        const b = constant(`${op.name}/bias`, op.bias, [op.bias.length]);
        nodes.push({
          name: op.name,
          op: op.kind === 'conv' ? '_FusedConv2D' : 'FusedDepthwiseConv2dNative',
          input: [x, k, b],
          attr: {
            T: FLOAT,
            strides: ints([1, op.strides[0], op.strides[1], 1]),
            padding: { s: b64(op.padding.toUpperCase()) },
            data_format: { s: b64('NHWC') },
            dilations: ints([1, 1, 1, 1]),
            fused_ops: strs(fused(op)),
            num_args: { i: '1' },
            epsilon: { f: 0 },
          },
        });
        break;
      }
      case 'dense': {
        const k = constant(`${op.name}/kernel`, op.kernel, [...op.kernelShape]);
        const units = op.kernelShape[1];
        let a = x;
        if (op.rank !== 2) {
          // [..., n] -> [-1, n] -> matMul -> [..., units] (the bilinear input stage).
          const flat = constant(`${op.name}/flat`, Int32Array.of(-1, op.kernelShape[0]), [2]);
          a = `${op.name}/flat_in`;
          nodes.push({ name: a, op: 'Reshape', input: [x, flat], attr: { T: FLOAT } });
        }
        const out = op.rank !== 2 ? `${op.name}/mm` : op.name;
        const attr = { T: FLOAT, transpose_a: { b: false }, transpose_b: { b: false } };
        if (op.bias) {
          const b = constant(`${op.name}/bias`, op.bias, [units]);
          nodes.push({
            name: out,
            op: '_FusedMatMul',
            input: [a, k, b],
            attr: { ...attr, fused_ops: strs(fused(op)), num_args: { i: '1' }, epsilon: { f: 0 } },
          });
        } else {
          nodes.push({ name: out, op: 'MatMul', input: [a, k], attr });
          if (op.act !== 'linear') throw new Error(`${op.name}: activation without bias`);
        }
        if (op.rank !== 2) {
          // The output keeps the input's leading dims: read them from the input's shape.
          const shape = `${op.name}/shape`;
          const lead = `${op.name}/lead`;
          const begin = constant(`${op.name}/begin`, Int32Array.of(0), [1]);
          const size = constant(`${op.name}/size`, Int32Array.of(op.rank - 1), [1]);
          const unitsC = constant(`${op.name}/units`, Int32Array.of(units), [1]);
          const axis = constant(`${op.name}/axis`, Int32Array.of(0), []);
          nodes.push({
            name: shape,
            op: 'Shape',
            input: [x],
            attr: { T: FLOAT, out_type: { type: 'DT_INT32' } },
          });
          nodes.push({
            name: lead,
            op: 'Slice',
            input: [shape, begin, size],
            attr: { T: { type: 'DT_INT32' } },
          });
          const full = `${op.name}/out_shape`;
          nodes.push({
            name: full,
            op: 'ConcatV2',
            input: [lead, unitsC, axis],
            attr: { N: { i: '2' }, T: { type: 'DT_INT32' } },
          });
          nodes.push({ name: op.name, op: 'Reshape', input: [out, full], attr: { T: FLOAT } });
        }
        break;
      }
      case 'add':
        nodes.push({ name: op.name, op: 'AddV2', input: [...op.inputs], attr: { T: FLOAT } });
        break;
      case 'act':
        nodes.push({ name: op.name, op: ACT_OP[op.act], input: [x], attr: { T: FLOAT } });
        break;
      case 'softmax':
        nodes.push({ name: op.name, op: 'Softmax', input: [x], attr: { T: FLOAT } });
        break;
      case 'mean': {
        const axes = constant(`${op.name}/axes`, Int32Array.of(1, 2), [2]);
        nodes.push({
          name: op.name,
          op: 'Mean',
          input: [x, axes],
          attr: { T: FLOAT, keep_dims: { b: false } },
        });
        break;
      }
      case 'maxpool':
        nodes.push({
          name: op.name,
          op: 'MaxPool',
          input: [x],
          attr: {
            T: FLOAT,
            ksize: ints([1, op.size[0], op.size[1], 1]),
            strides: ints([1, op.strides[0], op.strides[1], 1]),
            padding: { s: b64(op.padding.toUpperCase()) },
            data_format: { s: b64('NHWC') },
          },
        });
        break;
      case 'transpose': {
        const perm = constant(`${op.name}/perm`, Int32Array.from(op.perm), [op.perm.length]);
        nodes.push({ name: op.name, op: 'Transpose', input: [x, perm], attr: { T: FLOAT } });
        break;
      }
    }
  }
  // No Identity node renaming the output: the graph executor charges every node (~7 us
  // beside its kernel on wasm here), and tf.loadGraphModel finds the output as the one
  // node nothing reads.
  const total = chunks.reduce((n, c) => n + c.byteLength, 0);
  const data = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    data.set(new Uint8Array(c), at);
    at += c.byteLength;
  }
  return {
    modelTopology: { node: nodes, library: {}, versions: { producer: 1 } },
    weightSpecs: specs,
    weightData: data.buffer,
  };
}
