import { buildNetwork, ValidationError } from '@metaprune/core';
import { common } from '@metaprune/proto';
import { describe, expect, it } from 'vitest';
import { networkFromProto, sameProtoSpec, specFromProto, specToProto } from '../src/index.js';

const SMALL = buildNetwork({ family: 'mobilenetv2', preset: 'small', width: 0.5 });

function fieldOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (err) {
    if (err instanceof ValidationError) return err.field;
    throw err;
  }
  return undefined;
}

describe('network specs on the wire', () => {
  it('round-trips a core spec through its proto form', () => {
    const wire = specToProto(SMALL.spec);
    expect(wire.widthMultiplier).toBe(0.5);
    expect(specFromProto(wire)).toEqual(SMALL.spec);
    expect(networkFromProto(wire).genes.length).toBe(SMALL.genes.length);
  });

  it('fills zero fields from the preset, or from the given defaults', () => {
    const bare = common.NetworkSpec.fromPartial({
      family: common.NetworkFamily.MOBILENET_V1,
      preset: common.NetworkPreset.SMALL,
    });
    const spec = specFromProto(bare);
    expect(spec.width).toBe(1);
    expect(specFromProto(bare, 'n', { inputChannels: 1, numClasses: 7 })).toMatchObject({
      inputChannels: 1,
      numClasses: 7,
    });
  });

  it('names bad fields by their proto names, below the given prefix', () => {
    const bad = (over: Partial<common.NetworkSpec>) => () =>
      specFromProto(common.NetworkSpec.fromPartial({ ...specToProto(SMALL.spec), ...over }), 'x');
    expect(fieldOf(() => specFromProto(undefined, 'x'))).toBe('x');
    expect(fieldOf(bad({ family: 0 }))).toBe('x.family');
    expect(fieldOf(bad({ preset: 0 }))).toBe('x.preset');
    expect(fieldOf(bad({ widthMultiplier: 3.5 }))).toBe('x.width_multiplier');
    expect(fieldOf(bad({ widthMultiplier: Number.NaN }))).toBe('x.width_multiplier');
    expect(fieldOf(bad({ inputSize: 4096 }))).toBe('x.input_size');
    expect(fieldOf(bad({ inputChannels: 1.5 }))).toBe('x.input_channels');
    expect(fieldOf(bad({ numClasses: -1 }))).toBe('x.num_classes');
  });

  it('compares specs after filling defaults', () => {
    const explicit = specToProto(SMALL.spec);
    const implicit = common.NetworkSpec.fromPartial({ ...explicit, inputSize: 0, numClasses: 0 });
    expect(sameProtoSpec(explicit, implicit)).toBe(true);
    expect(sameProtoSpec(explicit, { ...explicit, widthMultiplier: 1 })).toBe(false);
  });
});
