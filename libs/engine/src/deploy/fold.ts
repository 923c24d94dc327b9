/**
 * Training form -> inference form: reads the Keras topology of an exported plain model
 * (`model.json` of a tfjs LayersModel) with its weights and rewrites it as a short list of
 * inference ops, the way tfjs-converter and TFLite prepare a model for deployment:
 * - batch norm folded into the preceding convolution / dense layer: kernel x
 *   gamma / sqrt(var + eps) per output channel, bias (b - mean) x that + beta;
 * - ReLU / ReLU6 fused into the convolution that feeds it (tfjs' fused conv kernels);
 * - the input normalisation (a frozen 1x1 conv) folded into the stem convolution when a
 *   single pad value maps to zero after it (the stem's own 'same' padding then becomes an
 *   explicit pad with that value, so borders stay exact).
 * Pure arithmetic on Float32Arrays: the emitters (graph-model.ts) turn the ops into files.
 */

export type Act = 'linear' | 'relu' | 'relu6';

interface OpBase {
  /** Output name (unique). */
  readonly name: string;
  /** Names of the ops whose outputs this op reads. */
  inputs: string[];
}

export interface ConvOp extends OpBase {
  kind: 'conv' | 'depthwise';
  /** conv `[k, k, cin, cout]`, depthwise `[k, k, c, mult]`. */
  kernel: Float32Array;
  kernelShape: number[];
  bias: Float32Array;
  strides: [number, number];
  padding: 'same' | 'valid';
  act: Act;
}

export interface DenseOp extends OpBase {
  kind: 'dense';
  kernel: Float32Array;
  kernelShape: [number, number];
  bias: Float32Array | null;
  act: Act;
  /** Input rank (dense over the last axis of a rank-4 tensor reshapes around a matMul). */
  rank: number;
}

export type InferenceOp =
  | (OpBase & { kind: 'input'; shape: (number | null)[] })
  | (OpBase & { kind: 'pad'; paddings: [number, number][]; value: number })
  | ConvOp
  | DenseOp
  | (OpBase & { kind: 'add' })
  | (OpBase & { kind: 'act'; act: Exclude<Act, 'linear'> })
  | (OpBase & { kind: 'softmax' })
  | (OpBase & { kind: 'mean' })
  | (OpBase & {
      kind: 'maxpool';
      size: [number, number];
      strides: [number, number];
      padding: 'same' | 'valid';
    })
  | (OpBase & { kind: 'transpose'; perm: number[] });

export interface InferenceGraph {
  readonly ops: InferenceOp[];
  readonly input: string;
  readonly output: string;
  /** Layers of the training form, and what folding removed. */
  readonly stats: { trainingLayers: number; foldedBatchNorms: number; fusedActivations: number };
}

export class UnsupportedModelError extends Error {
  override name = 'UnsupportedModelError';
}

/** One layer of a Keras `model_config` (as tfjs writes it). */
export interface KerasLayer {
  class_name: string;
  name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[];
}

function inboundNames(l: KerasLayer): string[] {
  const node = l.inbound_nodes[0] as unknown[] | undefined;
  if (!node) return [];
  return node.map((n) => {
    if (Array.isArray(n)) return String(n[0]);
    throw new UnsupportedModelError(`layer ${l.name}: unreadable inbound node`);
  });
}

function pair(v: unknown, what: string): [number, number] {
  if (typeof v === 'number') return [v, v];
  if (Array.isArray(v) && v.length === 2) return [Number(v[0]), Number(v[1])];
  throw new UnsupportedModelError(`${what}: expected a pair, got ${JSON.stringify(v)}`);
}

function actOf(name: unknown, layer: string): Act | 'softmax' {
  if (name === undefined || name === null || name === 'linear') return 'linear';
  if (name === 'relu' || name === 'relu6' || name === 'softmax') return name;
  throw new UnsupportedModelError(`layer ${layer}: activation ${String(name)} is not supported`);
}

/** ReLU layer config -> relu / relu6 (other thresholds / slopes are not supported). */
function reluOf(c: Record<string, unknown>, layer: string): Exclude<Act, 'linear'> {
  const max = c['max_value'] ?? c['maxValue'];
  const slope = c['negative_slope'] ?? 0;
  const threshold = c['threshold'] ?? 0;
  if (slope !== 0 || threshold !== 0) {
    throw new UnsupportedModelError(`layer ${layer}: ReLU with slope / threshold is not supported`);
  }
  if (max === undefined || max === null) return 'relu';
  if (max === 6) return 'relu6';
  throw new UnsupportedModelError(`layer ${layer}: ReLU max_value ${String(max)} is not supported`);
}

/** A weight by name (`layer/weight`), checked for size. */
type Weights = ReadonlyMap<string, Float32Array>;
function weight(w: Weights, layer: string, key: string, size?: number): Float32Array {
  const v = w.get(`${layer}/${key}`);
  if (!v) throw new UnsupportedModelError(`weight ${layer}/${key} is missing`);
  if (size !== undefined && v.length !== size) {
    throw new UnsupportedModelError(
      `weight ${layer}/${key} has ${v.length} values, expected ${size}`,
    );
  }
  return v;
}

/**
 * Rewrites `layers` (topologically ordered, as tfjs saves them) into inference ops.
 * Throws UnsupportedModelError naming the layer for anything it cannot express.
 */
export function foldTrainingForm(layers: readonly KerasLayer[], weights: Weights): InferenceGraph {
  const consumers = new Map<string, number>();
  for (const l of layers) {
    for (const n of inboundNames(l)) consumers.set(n, (consumers.get(n) ?? 0) + 1);
  }
  const ops: InferenceOp[] = [];
  const byName = new Map<string, InferenceOp>();
  /** Keras layer name -> name of the op holding its output. */
  const alias = new Map<string, string>();
  let foldedBatchNorms = 0;
  let fusedActivations = 0;
  const push = (op: InferenceOp) => {
    ops.push(op);
    byName.set(op.name, op);
    alias.set(op.name, op.name);
  };
  const src = (l: KerasLayer, i = 0): string => {
    const n = inboundNames(l)[i];
    const a = n === undefined ? undefined : alias.get(n);
    if (a === undefined) throw new UnsupportedModelError(`layer ${l.name}: input ${n} is unknown`);
    return a;
  };
  /** The op feeding `l` when it may be rewritten in place (its output read only by `l`). */
  const soleProducer = (l: KerasLayer): InferenceOp | undefined => {
    const n = inboundNames(l)[0] as string;
    if ((consumers.get(n) ?? 0) !== 1) return undefined;
    return byName.get(alias.get(n) as string);
  };

  for (const l of layers) {
    const c = l.config;
    switch (l.class_name) {
      case 'InputLayer': {
        const shape = (c['batch_input_shape'] ?? c['batchInputShape']) as (number | null)[];
        if (!Array.isArray(shape)) throw new UnsupportedModelError(`input ${l.name} has no shape`);
        push({ kind: 'input', name: l.name, inputs: [], shape: [...shape] });
        break;
      }
      case 'ZeroPadding2D': {
        const p = c['padding'] as [[number, number], [number, number]];
        push({
          kind: 'pad',
          name: l.name,
          inputs: [src(l)],
          paddings: [[0, 0], pair(p[0], l.name), pair(p[1], l.name), [0, 0]],
          value: 0,
        });
        break;
      }
      case 'Conv2D':
      case 'DepthwiseConv2D': {
        const depthwise = l.class_name === 'DepthwiseConv2D';
        const dil = pair(c['dilation_rate'] ?? 1, `${l.name}.dilation_rate`);
        if (dil[0] !== 1 || dil[1] !== 1) {
          throw new UnsupportedModelError(
            `layer ${l.name}: dilated convolutions are not supported`,
          );
        }
        if ((c['data_format'] ?? 'channels_last') !== 'channels_last') {
          throw new UnsupportedModelError(`layer ${l.name}: only channels_last is supported`);
        }
        const k = weight(weights, l.name, depthwise ? 'depthwise_kernel' : 'kernel');
        const [kh, kw] = pair(c['kernel_size'], `${l.name}.kernel_size`);
        const cout = depthwise ? undefined : Number(c['filters']);
        const cin = depthwise
          ? k.length / (kh * kw * Number(c['depth_multiplier'] ?? 1))
          : k.length / (kh * kw * (cout as number));
        const mult = Number(c['depth_multiplier'] ?? 1);
        const outCh = depthwise ? cin * mult : (cout as number);
        const bias = c['use_bias']
          ? weight(weights, l.name, 'bias', outCh).slice()
          : new Float32Array(outCh);
        const act = actOf(c['activation'], l.name);
        if (act === 'softmax')
          throw new UnsupportedModelError(`layer ${l.name}: softmax on a convolution`);
        const padding = c['padding'] === 'same' ? 'same' : 'valid';
        push({
          kind: depthwise ? 'depthwise' : 'conv',
          name: l.name,
          inputs: [src(l)],
          kernel: k.slice(),
          kernelShape: depthwise ? [kh, kw, cin, mult] : [kh, kw, cin, outCh],
          bias,
          strides: pair(c['strides'] ?? 1, `${l.name}.strides`),
          padding,
          act,
        });
        break;
      }
      case 'Dense': {
        const units = Number(c['units']);
        const k = weight(weights, l.name, 'kernel');
        const act = actOf(c['activation'], l.name);
        const op: DenseOp = {
          kind: 'dense',
          name: l.name,
          inputs: [src(l)],
          kernel: k.slice(),
          kernelShape: [k.length / units, units],
          bias: c['use_bias'] ? weight(weights, l.name, 'bias', units).slice() : null,
          act: act === 'softmax' ? 'linear' : act,
          rank: 0,
        };
        push(op);
        if (act === 'softmax') {
          const s = `${l.name}.softmax`;
          push({ kind: 'softmax', name: s, inputs: [l.name] });
          alias.set(l.name, s);
        }
        break;
      }
      case 'BatchNormalization': {
        const p = soleProducer(l);
        const axis = c['axis'] ?? -1;
        if (
          !p ||
          (p.kind !== 'conv' && p.kind !== 'depthwise' && p.kind !== 'dense') ||
          p.act !== 'linear' ||
          (axis !== -1 && axis !== 3)
        ) {
          throw new UnsupportedModelError(
            `layer ${l.name}: batch norm not directly after a linear convolution cannot be folded`,
          );
        }
        const n = p.bias ? p.bias.length : (p.kernelShape[1] as number);
        const eps = Number(c['epsilon'] ?? 1e-3);
        const gamma = c['scale'] === false ? null : weight(weights, l.name, 'gamma', n);
        const beta = c['center'] === false ? null : weight(weights, l.name, 'beta', n);
        const mean = weight(weights, l.name, 'moving_mean', n);
        const variance = weight(weights, l.name, 'moving_variance', n);
        const scale = new Float32Array(n);
        for (let o = 0; o < n; o++) {
          scale[o] = (gamma ? (gamma[o] as number) : 1) / Math.sqrt((variance[o] as number) + eps);
        }
        // Output channel of every kernel value is its index modulo the output width
        // (conv [k,k,cin,cout], depthwise [k,k,c,m] -> channel c*m + m, dense [cin,cout]).
        for (let i = 0; i < p.kernel.length; i++) p.kernel[i]! *= scale[i % n] as number;
        const bias = p.bias ?? new Float32Array(n);
        for (let o = 0; o < n; o++) {
          bias[o] =
            ((bias[o] as number) - (mean[o] as number)) * (scale[o] as number) +
            (beta ? (beta[o] as number) : 0);
        }
        p.bias = bias;
        alias.set(l.name, p.name);
        foldedBatchNorms++;
        break;
      }
      case 'ReLU':
      case 'Activation': {
        const act = l.class_name === 'ReLU' ? reluOf(c, l.name) : actOf(c['activation'], l.name);
        if (act === 'linear') {
          alias.set(l.name, src(l));
          break;
        }
        if (act === 'softmax') {
          push({ kind: 'softmax', name: l.name, inputs: [src(l)] });
          break;
        }
        const p = soleProducer(l);
        if (
          p &&
          (p.kind === 'conv' || p.kind === 'depthwise' || p.kind === 'dense') &&
          p.act === 'linear'
        ) {
          p.act = act;
          alias.set(l.name, p.name);
          fusedActivations++;
        } else {
          push({ kind: 'act', name: l.name, inputs: [src(l)], act });
        }
        break;
      }
      case 'Add': {
        const ins = inboundNames(l).map((_, i) => src(l, i));
        if (ins.length !== 2) throw new UnsupportedModelError(`layer ${l.name}: only two-way adds`);
        push({ kind: 'add', name: l.name, inputs: ins });
        break;
      }
      case 'GlobalAveragePooling2D':
        push({ kind: 'mean', name: l.name, inputs: [src(l)] });
        break;
      case 'MaxPooling2D':
        push({
          kind: 'maxpool',
          name: l.name,
          inputs: [src(l)],
          size: pair(c['pool_size'], `${l.name}.pool_size`),
          strides: pair(c['strides'] ?? c['pool_size'], `${l.name}.strides`),
          padding: c['padding'] === 'same' ? 'same' : 'valid',
        });
        break;
      case 'Permute': {
        const dims = c['dims'] as number[];
        push({ kind: 'transpose', name: l.name, inputs: [src(l)], perm: [0, ...dims] });
        break;
      }
      case 'Dropout':
      case 'Flatten':
        if (l.class_name === 'Flatten') {
          throw new UnsupportedModelError(`layer ${l.name}: Flatten is not supported`);
        }
        alias.set(l.name, src(l));
        break;
      default:
        throw new UnsupportedModelError(`layer ${l.name}: ${l.class_name} is not supported`);
    }
  }
  const inputOp = ops.find((o) => o.kind === 'input');
  const last = layers[layers.length - 1];
  if (!inputOp || !last) throw new UnsupportedModelError('the model has no input or no layers');
  foldInputNormalisation(ops, consumersOf(ops));
  markDenseRanks(ops);
  return {
    ops,
    input: inputOp.name,
    output: alias.get(last.name) as string,
    stats: { trainingLayers: layers.length, foldedBatchNorms, fusedActivations },
  };
}

function consumersOf(ops: readonly InferenceOp[]): Map<string, InferenceOp[]> {
  const m = new Map<string, InferenceOp[]>();
  for (const o of ops) for (const i of o.inputs) m.set(i, [...(m.get(i) ?? []), o]);
  return m;
}

/** Rank of each dense op's input (4 for the bilinear-resize stage, 2 for classifiers). */
function markDenseRanks(ops: InferenceOp[]): void {
  const rank = new Map<string, number>();
  for (const o of ops) {
    const inRank = rank.get(o.inputs[0] ?? '') ?? 4;
    switch (o.kind) {
      case 'input':
        rank.set(o.name, o.shape.length);
        break;
      case 'mean':
        rank.set(o.name, inRank - 2);
        break;
      case 'dense':
        o.rank = inRank;
        rank.set(o.name, inRank);
        break;
      default:
        rank.set(o.name, inRank);
    }
  }
}

/**
 * Folds a linear 1x1 stride-1 convolution (the frozen input normalisation) into the one
 * stride-1 'same' convolution that reads it, when one input value `v` maps to zero in
 * every channel: the stem then pads its input with `v` explicitly and runs 'valid' with
 * kernel W'[.., i, o] = sum_c K[i, c] W[.., c, o] and bias b + sum B[c] W[.., c, o].
 */
function foldInputNormalisation(ops: InferenceOp[], consumers: Map<string, InferenceOp[]>): void {
  for (const norm of ops) {
    if (norm.kind !== 'conv' || norm.act !== 'linear') continue;
    const [kh, kw, ic, oc] = norm.kernelShape as [number, number, number, number];
    if (kh !== 1 || kw !== 1 || norm.strides[0] !== 1 || norm.strides[1] !== 1) continue;
    const next = consumers.get(norm.name);
    const stem = next?.[0];
    if (next?.length !== 1 || !stem || stem.kind !== 'conv' || stem.padding !== 'same') continue;
    if (stem.strides[0] !== 1 || stem.strides[1] !== 1) continue;
    const [sh, sw, sc, so] = stem.kernelShape as [number, number, number, number];
    if (sc !== oc || sh % 2 === 0 || sw % 2 === 0) continue;
    // v with sum_i v K[i, c] + B[c] = 0 for every c.
    let v: number | null = null;
    let ok = true;
    for (let c = 0; c < oc && ok; c++) {
      let s = 0;
      for (let i = 0; i < ic; i++) s += norm.kernel[i * oc + c] as number;
      if (s === 0) ok = false;
      const vc = -(norm.bias[c] as number) / s;
      if (v === null) v = vc;
      else if (Math.abs(vc - v) > 1e-6 * Math.max(1, Math.abs(v))) ok = false;
    }
    if (!ok || v === null) continue;
    const kernel = new Float32Array(sh * sw * ic * so);
    const bias = stem.bias.slice();
    for (let p = 0; p < sh * sw; p++) {
      for (let c = 0; c < oc; c++) {
        const b = norm.bias[c] as number;
        for (let o = 0; o < so; o++) {
          const w = stem.kernel[(p * oc + c) * so + o] as number;
          bias[o]! += b * w;
          for (let i = 0; i < ic; i++)
            kernel[(p * ic + i) * so + o]! += (norm.kernel[i * oc + c] as number) * w;
        }
      }
    }
    const padName = `${stem.name}.pad`;
    const ph = (sh - 1) / 2;
    const pw = (sw - 1) / 2;
    const pad: InferenceOp = {
      kind: 'pad',
      name: padName,
      inputs: [...norm.inputs],
      paddings: [
        [0, 0],
        [ph, ph],
        [pw, pw],
        [0, 0],
      ],
      value: v,
    };
    stem.inputs = [padName];
    stem.kernel = kernel;
    stem.kernelShape = [sh, sw, ic, so];
    stem.bias = bias;
    stem.padding = 'valid';
    ops.splice(ops.indexOf(norm), 1, pad);
    return;
  }
}
