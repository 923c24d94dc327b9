/**
 * Wire <-> core conversions of latency tables, and the storage key of a table. Shared by
 * the service, the CLI and the controller (which fetches a table once and predicts locally).
 */
import type { LatencyRow, LatencyTable, LayerKind, NetworkSpec } from '@metaprune/core';
import { resolveSpec, ValidationError } from '@metaprune/core';
import {
  common,
  familyFromId,
  familyToId,
  latency,
  presetFromId,
  presetToId,
} from '@metaprune/proto';

/** Core spec -> wire spec. */
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

/**
 * Wire spec -> validated core spec (0 means the preset's default; throws a ValidationError
 * naming `field.<name>`). The MetaPruning layout is the only one on the wire.
 */
export function specFromProto(
  spec: common.NetworkSpec | undefined,
  field = 'network',
): NetworkSpec {
  if (!spec) throw new ValidationError(field, 'required');
  let family: string;
  let preset: string;
  try {
    family = familyToId(spec.family);
  } catch {
    throw new ValidationError(`${field}.family`, 'required: mobilenetv1, mobilenetv2 or resnet50');
  }
  try {
    preset = presetToId(spec.preset);
  } catch {
    throw new ValidationError(`${field}.preset`, 'required: imagenet or small');
  }
  try {
    return resolveSpec({
      family,
      preset,
      width: spec.widthMultiplier === 0 ? 1 : spec.widthMultiplier,
      ...(spec.inputSize ? { inputSize: spec.inputSize } : {}),
      ...(spec.inputChannels ? { inputChannels: spec.inputChannels } : {}),
      ...(spec.numClasses ? { numClasses: spec.numClasses } : {}),
      lastStageFull: spec.keepLastStageFull,
    });
  } catch (err) {
    if (err instanceof ValidationError) {
      const wire: Record<string, string> = {
        width: 'width_multiplier',
        inputSize: 'input_size',
        inputChannels: 'input_channels',
        numClasses: 'num_classes',
      };
      throw new ValidationError(
        `${field}.${wire[err.field] ?? err.field}`,
        err.message.slice(err.field.length + 2),
      );
    }
    throw err;
  }
}

/** Core table -> wire table (device id and version as given). */
export function tableToProto(
  t: LatencyTable,
  extra: { deviceId?: string; version?: number } = {},
): latency.LatencyTable {
  return latency.LatencyTable.fromPartial({
    deviceId: extra.deviceId ?? '',
    key: { network: specToProto(t.network), backend: t.backend, batchSize: t.batchSize },
    version: extra.version ?? t.version ?? 0,
    rows: t.rows.map((r) => ({
      layerId: r.layer,
      cin: r.cin,
      cout: r.cout,
      medianMs: r.medianMs,
      spreadMs: r.spreadMs,
      repeats: r.repeats,
      kind: r.kind,
      kernel: r.kernel,
      stride: r.stride,
      inSize: r.inSize,
    })),
    constantMs: t.constantMs,
    warmupRuns: t.warmupRuns,
    interpolated: t.interpolated,
    ...(t.measuredAt ? { measureTime: new Date(t.measuredAt) } : {}),
    networkFingerprint: t.fingerprint,
  });
}

/** Wire table -> core table (not validated: see validateLatencyTable). */
export function tableFromProto(t: latency.LatencyTable, field = 'table'): LatencyTable {
  const network = specFromProto(t.key?.network, `${field}.key.network`);
  return {
    network,
    fingerprint: t.networkFingerprint,
    backend: t.key?.backend ?? '',
    batchSize: t.key?.batchSize ?? 0,
    constantMs: t.constantMs,
    warmupRuns: t.warmupRuns,
    interpolated: t.interpolated,
    rows: t.rows.map(
      (r): LatencyRow => ({
        layer: r.layerId,
        kind: r.kind as LayerKind,
        kernel: r.kernel,
        stride: r.stride,
        inSize: r.inSize,
        cin: r.cin,
        cout: r.cout,
        medianMs: r.medianMs,
        spreadMs: r.spreadMs,
        repeats: r.repeats,
      }),
    ),
    ...(t.measureTime ? { measuredAt: t.measureTime.toISOString() } : {}),
    ...(t.deviceId ? { device: t.deviceId } : {}),
    ...(t.version ? { version: t.version } : {}),
  };
}

/** Core field paths -> wire field names, for INVALID_ARGUMENT messages. */
export function wireField(field: string): string {
  return field
    .replace(/^table\.network/, 'table.key.network')
    .replace(/^table\.backend/, 'table.key.backend')
    .replace(/^table\.batchSize/, 'table.key.batch_size')
    .replace(/^table\.fingerprint/, 'table.network_fingerprint')
    .replace(/\.layer$/, '.layer_id')
    .replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

/**
 * The storage key of a table within a device: network spec, backend and batch size, as a
 * readable string of object-name-safe characters, e.g.
 * `mobilenetv2.small.w0.5.i32x3.c10.metapruning.full1.wasm.b1`.
 */
export function tableKeyString(spec: NetworkSpec, backend: string, batchSize: number): string {
  return [...networkKeyParts(spec), backend.replace(/[^A-Za-z0-9_-]/g, '_'), `b${batchSize}`].join(
    '.',
  );
}

// Each part starts with its own label, so a width such as `w0.25` cannot run into the next part.
function networkKeyParts(spec: NetworkSpec): string[] {
  return [
    spec.family,
    spec.preset,
    `w${spec.width}`,
    `i${spec.inputSize}x${spec.inputChannels}`,
    `c${spec.numClasses}`,
    spec.layout,
    `full${spec.lastStageFull ? 1 : 0}`,
  ];
}

/** The key string of a table without backend and batch: what "latest for the network" matches. */
export function networkKeyString(spec: NetworkSpec): string {
  return networkKeyParts(spec).join('.');
}
