import { NetworkFamily, NetworkPreset } from './gen/metaprune/common/v1/common.js';

/** The CLI / libs/core spelling of a network family. */
export type FamilyId = 'mobilenetv1' | 'mobilenetv2' | 'resnet50';
/** The CLI / libs/core spelling of a network preset. */
export type PresetId = 'imagenet' | 'small';

const FAMILIES: ReadonlyArray<readonly [FamilyId, NetworkFamily]> = [
  ['mobilenetv1', NetworkFamily.MOBILENET_V1],
  ['mobilenetv2', NetworkFamily.MOBILENET_V2],
  ['resnet50', NetworkFamily.RESNET50],
];
const PRESETS: ReadonlyArray<readonly [PresetId, NetworkPreset]> = [
  ['imagenet', NetworkPreset.IMAGENET],
  ['small', NetworkPreset.SMALL],
];

/** `'resnet50'` -> `NetworkFamily.RESNET50`; throws naming the allowed ids otherwise. */
export function familyFromId(id: string): NetworkFamily {
  const hit = FAMILIES.find(([name]) => name === id);
  if (!hit) {
    throw new RangeError(
      `unknown network family "${id}" (allowed: ${FAMILIES.map(([n]) => n).join(', ')})`,
    );
  }
  return hit[1];
}

/** `NetworkFamily.RESNET50` -> `'resnet50'`; throws for UNSPECIFIED / unrecognized values. */
export function familyToId(family: NetworkFamily): FamilyId {
  const hit = FAMILIES.find(([, value]) => value === family);
  if (!hit) throw new RangeError(`network family ${family} is not set or not recognized`);
  return hit[0];
}

/** `'small'` -> `NetworkPreset.SMALL`; throws naming the allowed ids otherwise. */
export function presetFromId(id: string): NetworkPreset {
  const hit = PRESETS.find(([name]) => name === id);
  if (!hit) {
    throw new RangeError(
      `unknown network preset "${id}" (allowed: ${PRESETS.map(([n]) => n).join(', ')})`,
    );
  }
  return hit[1];
}

/** `NetworkPreset.SMALL` -> `'small'`; throws for UNSPECIFIED / unrecognized values. */
export function presetToId(preset: NetworkPreset): PresetId {
  const hit = PRESETS.find(([, value]) => value === preset);
  if (!hit) throw new RangeError(`network preset ${preset} is not set or not recognized`);
  return hit[0];
}
