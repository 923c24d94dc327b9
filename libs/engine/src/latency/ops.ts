/**
 * The inference ops of one latency unit (see core's `latencyUnits`), shared by the per-layer
 * measurement and the whole-network forward so both time exactly the same kernels:
 * batch norm is folded into the conv bias, so a conv / depthwise layer is one fused op
 * (conv + bias + activation); the layer ending a residual block adds the shortcut (and
 * applies the activation after the add); the classifier pools globally first (avgPool over
 * the whole map, then a fused matMul + bias); ResNet's ImageNet stem max-pools after.
 */
import {
  type Encoding,
  type LatencyUnit,
  latencyUnits,
  type Network,
  widthOf,
} from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';

/** Weights of one unit at one (Cin, Cout), BN already folded into `bias`. */
export interface UnitWeights {
  /** conv `[k, k, cin, cout]`, depthwise `[k, k, c, 1]`, fc `[cin, cout]`. */
  readonly filter: tf.Tensor;
  readonly bias: tf.Tensor1D;
}

type FusedAct = 'linear' | 'relu' | 'relu6';
const fusedAct = (a: 'relu' | 'relu6' | 'none'): FusedAct => (a === 'none' ? 'linear' : a);

/**
 * Weights for a unit. Values do not change the kernels' speed, so they are constants
 * (`tf.fill` runs in the backend; drawing random numbers cost as much as the layer's
 * first forward): each output is 0.5 x the mean of its inputs + 0.1, which keeps
 * activations of any depth in a normal float range — never denormal (slow on CPUs),
 * never overflowing.
 */
export function unitWeights(u: LatencyUnit, cin: number, cout: number): UnitWeights {
  const l = u.layer;
  const k = l.kernel;
  const shape: number[] =
    l.kind === 'fc' ? [cin, cout] : l.kind === 'depthwise' ? [k, k, cin, 1] : [k, k, cin, cout];
  const fanIn = l.kind === 'depthwise' ? k * k : l.kind === 'fc' ? cin : k * k * cin;
  return {
    filter: tf.fill(shape, 0.5 / fanIn, 'float32'),
    bias: tf.fill([l.kind === 'depthwise' ? cin : cout], 0.1, 'float32') as tf.Tensor1D,
  };
}

export function disposeWeights(w: UnitWeights): void {
  w.filter.dispose();
  w.bias.dispose();
}

/** Input tensor of a unit: `[batch, size, size, cin]` (`size` is the pooled size for fc). */
export function unitInputShape(u: LatencyUnit, batch: number, cin: number): number[] {
  if (u.layer.kind === 'fc') {
    return u.poolBeforeSize > 0 ? [batch, u.poolBeforeSize, u.poolBeforeSize, cin] : [batch, cin];
  }
  return [batch, u.layer.inSize, u.layer.inSize, cin];
}

/** Shape of the residual addend of a unit with `addAfter`. */
export function unitOutputShape(u: LatencyUnit, batch: number, cout: number): number[] {
  if (u.layer.kind === 'fc') return [batch, cout];
  return [batch, u.layer.outSize, u.layer.outSize, cout];
}

/**
 * Runs one unit: returns a new tensor and disposes every intermediate it made (never
 * `x`, the weights or `addend`).
 */
export function runUnit(
  u: LatencyUnit,
  x: tf.Tensor,
  w: UnitWeights,
  addend?: tf.Tensor,
): tf.Tensor {
  const l = u.layer;
  const act = fusedAct(l.act);
  let y: tf.Tensor;
  if (l.kind === 'fc') {
    let a: tf.Tensor2D;
    if (u.poolBeforeSize > 0) {
      const p = tf.avgPool(x as tf.Tensor4D, u.poolBeforeSize, 1, 'valid');
      a = tf.reshape(p, [x.shape[0] as number, x.shape[3] as number]);
      p.dispose();
    } else {
      a = x as tf.Tensor2D;
    }
    y = tf.fused.matMul({ a, b: w.filter as tf.Tensor2D, bias: w.bias, activation: act });
    if (a !== x) a.dispose();
  } else if (l.kind === 'depthwise') {
    y = tf.fused.depthwiseConv2d({
      x: x as tf.Tensor4D,
      filter: w.filter as tf.Tensor4D,
      bias: w.bias,
      strides: l.stride,
      pad: 'same',
      activation: act,
    });
  } else {
    y = tf.fused.conv2d({
      x: x as tf.Tensor4D,
      filter: w.filter as tf.Tensor4D,
      bias: w.bias,
      strides: l.stride,
      pad: 'same',
      activation: act,
    });
  }
  if (u.addAfter) {
    if (!addend) throw new Error(`unit ${l.name} ends a residual block and needs its addend`);
    const s = tf.add(y, addend);
    y.dispose();
    y = s;
    if (u.actAfterAdd !== 'none') {
      const r = u.actAfterAdd === 'relu6' ? tf.relu6(y) : tf.relu(y);
      y.dispose();
      y = r;
    }
  }
  if (u.maxPoolAfter) {
    const p = tf.maxPool(y as tf.Tensor4D, 3, 2, 'same');
    y.dispose();
    y = p;
  }
  return y;
}

/**
 * A pruned network ready for inference timing: weights for every layer at the encoding's
 * widths (BN folded, random values), and `run(x)` = the forward pass as a sequence of
 * {@link runUnit} calls, disposing every intermediate as soon as it is consumed.
 */
export class NetworkRunner {
  private readonly units: LatencyUnit[];
  private readonly weights: UnitWeights[];
  private readonly byLayer: Map<LatencyUnit['layer'], number>;
  readonly inputShape: [number, number, number, number];

  constructor(
    readonly net: Network,
    readonly encoding: Encoding,
    readonly batchSize: number,
  ) {
    this.units = latencyUnits(net);
    this.byLayer = new Map(this.units.map((u, i) => [u.layer, i]));
    this.weights = this.units.map((u) =>
      unitWeights(u, widthOf(u.layer.in, encoding), widthOf(u.layer.out, encoding)),
    );
    const s = net.spec;
    this.inputShape = [batchSize, s.inputSize, s.inputSize, s.inputChannels];
  }

  /** A random input batch (the caller disposes it). */
  input(): tf.Tensor4D {
    return tf.randomUniform(this.inputShape, 0, 1, 'float32') as tf.Tensor4D;
  }

  /**
   * The logits `[batch, classes]` (the caller disposes them). With `times`, each unit's
   * wall time (its `runUnit` call) goes to `times[layer index]`, ms.
   */
  forward(input: tf.Tensor, times?: Float64Array): tf.Tensor {
    const byLayer = this.byLayer;
    let x = input;
    const drop = (t: tf.Tensor) => {
      if (t !== input) t.dispose();
    };
    for (const block of this.net.blocks) {
      const blockIn = x;
      const keepIn = block.shortcut !== 'none';
      let y = blockIn;
      for (const layer of block.layers) {
        const i = byLayer.get(layer) as number;
        const u = this.units[i] as LatencyUnit;
        const addend = u.addAfter ? blockIn : undefined;
        const t0 = times ? performance.now() : 0;
        const next = runUnit(u, y, this.weights[i] as UnitWeights, addend);
        if (times) times[i] = performance.now() - t0;
        if (y !== blockIn || !keepIn) drop(y);
        y = next;
      }
      if (typeof block.shortcut === 'object') {
        const i = byLayer.get(block.shortcut) as number;
        const t0 = times ? performance.now() : 0;
        const out = runUnit(
          this.units[i] as LatencyUnit,
          blockIn,
          this.weights[i] as UnitWeights,
          y,
        );
        if (times) times[i] = performance.now() - t0;
        drop(y);
        y = out;
      }
      if (keepIn) drop(blockIn);
      x = y;
    }
    return x;
  }

  /** One timed inference: forward and read the logits back (`times` as in `forward`). */
  run(input: tf.Tensor, times?: Float64Array): void {
    const out = this.forward(input, times);
    out.dataSync();
    out.dispose();
  }

  dispose(): void {
    for (const w of this.weights) disposeWeights(w);
  }
}
