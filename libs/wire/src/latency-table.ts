/**
 * Wire <-> core conversions of latency tables, and the storage key of a table. Shared by
 * the latency profiler, the CLI, the console and the controller (which fetches a table once
 * and predicts locally).
 */
import type { LatencyRow, LatencyTable, LayerKind, NetworkSpec } from '@metaprune/core';
import { latency } from '@metaprune/proto';
import { specFromProto, specToProto } from './spec.js';

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
