import {
  type LatencyTable,
  type Network,
  networkFingerprint,
  planLatencyTable,
  tiedChannels,
} from '@metaprune/core';

/**
 * A well-formed latency table for `net` on a 2-point grid, latency growing with the
 * channels (tests of the profiler, the console and the integrity checks; not a measurement).
 */
export function syntheticLatencyTable(net: Network): LatencyTable {
  const plan = planLatencyTable(net, { points: 2 });
  return {
    network: net.spec,
    fingerprint: networkFingerprint(net),
    backend: 'wasm',
    batchSize: 1,
    constantMs: 0.05,
    warmupRuns: 1,
    interpolated: plan.interpolated,
    measuredAt: new Date().toISOString(),
    rows: plan.units.flatMap((u) =>
      u.cins.flatMap((cin) =>
        (tiedChannels(u.layer) ? [cin] : u.couts).map((cout) => ({
          layer: u.layer.name,
          kind: u.layer.kind,
          kernel: u.layer.kernel,
          stride: u.layer.stride,
          inSize: u.layer.inSize,
          cin,
          cout,
          medianMs: 0.001 * (1 + (cin * cout) / 64),
          spreadMs: 0.0001,
          repeats: 3,
        })),
      ),
    ),
  };
}
