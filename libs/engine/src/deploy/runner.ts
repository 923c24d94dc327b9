/**
 * The delivered execution path for any encoding, without training: the plain model of
 * the encoding (scratch weights) folded and loaded as a tfjs graph model in memory, run
 * with `GraphModel.predict` exactly as an exported inference form runs. Latency tables are
 * calibrated on it (their constant is fitted to these forwards, see measure.ts): every
 * encoding of a network has the same graph, so the graph executor's per-op cost beside
 * the kernels is one constant.
 */
import type { Encoding, Network } from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { buildPlainModel } from '../plain/model.js';
import { artifactsOf, foldArtifacts } from './convert.js';
import { toGraphModel } from './graph-model.js';

export class DeliveredRunner {
  readonly inputShape: [number, number, number, number];

  private constructor(
    private readonly model: tf.GraphModel,
    shape: [number, number, number, number],
  ) {
    this.inputShape = shape;
  }

  /** Builds the graph model of `encoding` (batch `batchSize` inputs). */
  static async create(
    net: Network,
    encoding: Encoding,
    batchSize = 1,
    seed = 0,
  ): Promise<DeliveredRunner> {
    const plain = buildPlainModel(net, encoding, { seed });
    let graph: ReturnType<typeof toGraphModel>;
    try {
      graph = toGraphModel(foldArtifacts(await artifactsOf(plain)));
    } finally {
      plain.dispose();
    }
    const model = await tf.loadGraphModel(
      tf.io.fromMemory({
        modelTopology: graph.modelTopology as unknown as tf.io.ModelJSON['modelTopology'],
        weightSpecs: graph.weightSpecs,
        weightData: graph.weightData,
        format: 'graph-model',
      }),
    );
    const s = net.spec;
    return new DeliveredRunner(model, [batchSize, s.inputSize, s.inputSize, s.inputChannels]);
  }

  input(): tf.Tensor4D {
    return tf.randomUniform(this.inputShape, 0, 1, 'float32') as tf.Tensor4D;
  }

  /** One timed inference: predict and read the output back. */
  run(x: tf.Tensor): void {
    const y = this.model.predict(x) as tf.Tensor;
    y.dataSync();
    y.dispose();
  }

  dispose(): void {
    this.model.dispose();
  }
}
