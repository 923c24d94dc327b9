import { buildNetwork, costModel, Rng, randomEncoding } from '@metaprune/core';
import { type BenchLine, median, peakRssMb } from './record.js';

/**
 * W3: MACs of random ResNet-50 (224x224, 1000 classes) encodings per second, counted
 * analytically. Encodings are drawn beforehand so only the counting is timed.
 */
export function benchFlops(
  opts: { rounds?: number; perRound?: number; seed?: number } = {},
): BenchLine {
  const rounds = opts.rounds ?? 7;
  const perRound = opts.perRound ?? 200_000;
  const net = buildNetwork({ family: 'resnet50', preset: 'imagenet' });
  const model = costModel(net);
  const rng = new Rng(opts.seed ?? 2);
  const encodings = Array.from({ length: 4096 }, () => randomEncoding(net.genes.length, rng));
  let sink = 0;
  const rates: number[] = [];
  for (let r = 0; r < rounds + 1; r++) {
    const t = process.hrtime.bigint();
    for (let i = 0; i < perRound; i++) sink += model.macs(encodings[i & 4095] as number[]);
    const dt = Number(process.hrtime.bigint() - t) / 1e9;
    if (r > 0) rates.push(perRound / dt); // round 0 is warm-up
  }
  if (sink <= 0) throw new Error('unreachable: MACs are positive');
  return {
    workload: 'flops',
    backend: 'none (analytic, pure TypeScript)',
    batch: null,
    size: 224,
    width: 1,
    network: 'resnet50',
    encodings_per_s: Math.round(median(rates)),
    rounds,
    encodings_per_round: perRound,
    peak_rss_mb: peakRssMb(),
  };
}
