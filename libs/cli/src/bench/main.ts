#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { benchFlops } from './flops.js';
import type { BenchLine } from './record.js';

// `npm run bench [-- --only flops,train]`: one JSON object per workload on stdout.
const WORKLOADS: Record<string, () => Promise<BenchLine> | BenchLine> = {
  flops: () => benchFlops(),
};

function main(): number {
  let only: string[];
  try {
    const { values } = parseArgs({ options: { only: { type: 'string' } }, strict: true });
    only = values.only ? values.only.split(',').map((s) => s.trim()) : Object.keys(WORKLOADS);
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    return 2;
  }
  const unknown = only.filter((w) => !(w in WORKLOADS));
  if (unknown.length > 0) {
    process.stderr.write(
      `bench: --only: unknown workload "${unknown[0]}"; allowed ${Object.keys(WORKLOADS).join(', ')}\n`,
    );
    return 2;
  }
  void (async () => {
    for (const w of only)
      console.log(JSON.stringify(await (WORKLOADS[w] as () => Promise<BenchLine>)()));
  })().catch((err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
  return 0;
}
process.exitCode = main();
