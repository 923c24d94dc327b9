/**
 * Network specs on the wire: the one pair of converters between `common.NetworkSpec` and
 * core's NetworkSpec / Network, used by every service, the CLI and the console. A bad field
 * is a core ValidationError naming `<field>.<proto field name>` (snake_case, as in the
 * .proto files and in server reflection), e.g. `config.network.width_multiplier`.
 */
import {
  buildNetwork,
  type Network,
  type NetworkSpec,
  sameSpec,
  ValidationError,
} from '@metaprune/core';
import { common, familyFromId, familyToId, presetFromId, presetToId } from '@metaprune/proto';

/** Core spec field -> proto field name, for error messages. */
const PROTO_FIELD: Record<string, string> = {
  network: 'family',
  family: 'family',
  preset: 'preset',
  width: 'width_multiplier',
  inputSize: 'input_size',
  inputChannels: 'input_channels',
  numClasses: 'num_classes',
  layout: 'layout',
  lastStageFull: 'keep_last_stage_full',
};

/** Upper bounds checked before a network is built (a huge spec must not be built at all). */
const LIMITS = { width_multiplier: 4, input_size: 1024, input_channels: 16, num_classes: 100_000 };

/** What a 0 input_channels / num_classes means when the caller knows better than the preset. */
export interface SpecDefaults {
  inputChannels?: number;
  numClasses?: number;
}

function checkNumber(field: string, v: number, max: number, integer: boolean): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) {
    throw new ValidationError(field, `must be a number in [0, ${max}] (got ${v})`);
  }
  if (integer && !Number.isInteger(v)) {
    throw new ValidationError(field, `must be an integer (got ${v})`);
  }
}

/**
 * The core network of a proto NetworkSpec. Zero fields take defaults: width 1, the preset's
 * input size, and `defaults` (else the preset's) for channels and classes.
 */
export function networkFromProto(
  spec: common.NetworkSpec | undefined,
  field = 'network',
  defaults: SpecDefaults = {},
): Network {
  if (!spec) throw new ValidationError(field, 'is required');
  let family: string;
  try {
    family = familyToId(spec.family);
  } catch {
    throw new ValidationError(
      `${field}.family`,
      `must be set to one of MOBILENET_V1, MOBILENET_V2, RESNET50 (got ${spec.family})`,
    );
  }
  let preset: string;
  try {
    preset = presetToId(spec.preset);
  } catch {
    throw new ValidationError(
      `${field}.preset`,
      `must be set to one of IMAGENET, SMALL (got ${spec.preset})`,
    );
  }
  checkNumber(`${field}.width_multiplier`, spec.widthMultiplier, LIMITS.width_multiplier, false);
  checkNumber(`${field}.input_size`, spec.inputSize, LIMITS.input_size, true);
  checkNumber(`${field}.input_channels`, spec.inputChannels, LIMITS.input_channels, true);
  checkNumber(`${field}.num_classes`, spec.numClasses, LIMITS.num_classes, true);
  const inputChannels = spec.inputChannels || defaults.inputChannels;
  const numClasses = spec.numClasses || defaults.numClasses;
  try {
    return buildNetwork({
      family,
      preset,
      width: spec.widthMultiplier === 0 ? 1 : spec.widthMultiplier,
      ...(spec.inputSize ? { inputSize: spec.inputSize } : {}),
      ...(inputChannels ? { inputChannels } : {}),
      ...(numClasses ? { numClasses } : {}),
      lastStageFull: spec.keepLastStageFull,
    });
  } catch (err) {
    if (err instanceof ValidationError) {
      const sub = PROTO_FIELD[err.field] ?? err.field;
      throw new ValidationError(`${field}.${sub}`, err.message.slice(err.field.length + 2), {
        cause: err,
      });
    }
    throw err;
  }
}

/** The validated core spec of a proto NetworkSpec (see {@link networkFromProto}). */
export function specFromProto(
  spec: common.NetworkSpec | undefined,
  field = 'network',
  defaults: SpecDefaults = {},
): NetworkSpec {
  return networkFromProto(spec, field, defaults).spec;
}

/** The proto NetworkSpec of a core spec, every field explicit (a canonical form). */
export function specToProto(spec: NetworkSpec): common.NetworkSpec {
  return common.NetworkSpec.fromPartial({
    family: familyFromId(spec.family),
    preset: presetFromId(spec.preset),
    widthMultiplier: spec.width,
    inputSize: spec.inputSize,
    inputChannels: spec.inputChannels,
    numClasses: spec.numClasses,
    keepLastStageFull: spec.lastStageFull,
  });
}

/** Whether two proto specs name the same network (after filling defaults). */
export function sameProtoSpec(a: common.NetworkSpec, b: common.NetworkSpec): boolean {
  return sameSpec(specFromProto(a), specFromProto(b));
}
