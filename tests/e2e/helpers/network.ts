/** The tiny network the end-to-end tests train: MobileNetV2 small, width 0.25, 32x32. */
import { common } from '@metaprune/proto';

export function tinyMobileNetV2(over: Partial<common.NetworkSpec> = {}): common.NetworkSpec {
  return common.NetworkSpec.fromPartial({
    family: common.NetworkFamily.MOBILENET_V2,
    preset: common.NetworkPreset.SMALL,
    widthMultiplier: 0.25,
    inputSize: 32,
    ...over,
  });
}

/** A few training steps of `network` on `dataset` through the weight generator. */
export function quickTrainingConfig(
  network: common.NetworkSpec,
  dataset: string,
  validationImages: number,
) {
  return {
    network,
    dataset,
    epochs: 1,
    batchSize: 32,
    learningRate: 0.1,
    momentum: 0.9,
    seed: 1,
    maxStepsPerEpoch: 3,
    validationImages,
  };
}
