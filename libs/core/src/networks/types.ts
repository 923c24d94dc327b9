export type Family = 'mobilenetv1' | 'mobilenetv2' | 'resnet50';
export type Preset = 'imagenet' | 'small';
export type Activation = 'relu' | 'relu6' | 'none';

/** What a user names: a family, a preset and a width multiplier, plus input/output shape. */
export interface NetworkSpec {
  readonly family: Family;
  readonly preset: Preset;
  /** Width multiplier applied to the family's base widths to get the maximum widths. */
  readonly width: number;
  readonly inputSize: number;
  readonly inputChannels: number;
  readonly numClasses: number;
  /**
   * MobileNetV2 only. `metapruning`: the reference PruningNet's wider search space
   * (stage widths 44, 22, 33, 44, 88, 132, 224, 448; head 1280). `standard`: the
   * MobileNetV2 paper's widths (32, 16, 24, ...) with the divisible-by-8 rule.
   */
  readonly layout: 'metapruning' | 'standard';
  /** ResNet-50 only: keep the last stage's output width unpruned (the reference's choice). */
  readonly lastStageFull: boolean;
}

/** A channel dimension: its maximum, and the gene that prunes it (null: always `max`). */
export interface Width {
  readonly max: number;
  readonly gene: number | null;
}

export type LayerKind = 'conv' | 'depthwise' | 'fc';

/** One weight layer of the target network: a conv, a depthwise conv or the classifier. */
export interface Layer {
  readonly name: string;
  readonly kind: LayerKind;
  readonly kernel: number;
  readonly stride: number;
  readonly in: Width;
  /** For depthwise layers `out` is the same width as `in`. */
  readonly out: Width;
  /** Spatial size (square) of the input and the output feature map. */
  readonly inSize: number;
  readonly outSize: number;
  /** Followed by batch norm (all convs; not the classifier). */
  readonly bn: boolean;
  readonly act: Activation;
  /**
   * Genes whose scales are the weight generator's input (DESIGN 1.2: e.g. [mid, in, out]
   * for a block). Genes of fixed widths are skipped; an all-fixed layer gets scale 1.
   */
  readonly code: readonly (number | null)[];
  /** Hidden width of this layer's weight-generator MLP. */
  readonly hidden: number;
}

/** A residual unit (or stem/head/classifier) — the structure a forward pass follows. */
export interface Block {
  readonly name: string;
  readonly kind: 'stem' | 'separable' | 'inverted-residual' | 'bottleneck' | 'head' | 'classifier';
  /** Main path, applied in order. */
  readonly layers: readonly Layer[];
  /** `identity`: add the block input; a layer: add its projection of the block input. */
  readonly shortcut: 'none' | 'identity' | Layer;
  /** Activation applied after the residual add (ResNet: relu; MobileNetV2: none). */
  readonly actAfterAdd: Activation;
  /** Pooling applied to the block input before its layers. */
  readonly poolBefore: 'none' | 'global-avg';
  /** Pooling applied after the block (ResNet's 3x3/2 max pool after the stem). */
  readonly poolAfter: 'none' | 'max3x3s2';
}

export type GeneKind = 'stem' | 'stage' | 'mid';

/** One searchable width: every width slot that must be equal shares one gene. */
export interface Gene {
  readonly index: number;
  readonly name: string;
  readonly kind: GeneKind;
  readonly max: number;
}

/** A network family instantiated for a spec: its layer graph and its gene layout. */
export interface Network {
  readonly spec: NetworkSpec;
  readonly genes: readonly Gene[];
  readonly blocks: readonly Block[];
  /** Every weight layer (including shortcut projections), in forward order. */
  readonly layers: readonly Layer[];
}
