#!/usr/bin/env node
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { benchEval, benchRetrain, benchTrain } from '@metaprune/engine';
import { benchData, benchDataStream } from './data.js';
import { benchDeploy } from './deploy.js';
import { benchFlops } from './flops.js';
import type { BenchLine } from './record.js';
import { runReference, runReferenceData } from './reference.js';
import { benchSearchWorkload } from './search.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', '..');
// Which field of a line is the figure compared with the reference's.
const FIGURE: Record<string, string> = {
  flops: 'encodings_per_s',
  train: 'images_per_s',
  eval: 'candidates_per_min',
  data: 'images_per_s',
};

// `npm run bench [-- --only flops,train]`: one JSON object per workload on stdout.
// W1/W2 run on two worker threads (both cores), retrain on one; progress goes to stderr.
const progress = (line: string) => process.stderr.write(`${line}\n`);
const WORKLOADS: Record<string, () => Promise<BenchLine | BenchLine[]> | BenchLine> = {
  flops: () => benchFlops(),
  train: () => benchTrain({ log: progress }),
  eval: () => benchEval({ log: progress }),
  retrain: () => benchRetrain({ log: progress }),
  search: () => benchSearchWorkload(),
  data: () => benchData({ ...(reference ? { reference: runReferenceData(root) } : {}) }),
  'data-stream': () => benchDataStream(),
  // W6: one line per model (and a summary); runs its own per-model PyTorch reference.
  deploy: () => benchDeploy({ root, reference, log: progress }),
};

// --reference, known before the workloads run (W5 compares on its own folder, which only
// lives while its workload runs).
let reference = false;

function main(): number {
  let only: string[];
  try {
    const { values } = parseArgs({
      options: { only: { type: 'string' }, reference: { type: 'boolean' } },
      strict: true,
    });
    reference = values.reference === true;
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
    const lines: BenchLine[] = [];
    for (const w of only) {
      const got = await (WORKLOADS[w] as () => Promise<BenchLine | BenchLine[]>)();
      for (const line of Array.isArray(got) ? got : [got]) {
        lines.push(line);
        if (!reference) console.log(JSON.stringify(line));
      }
    }
    if (!reference) return;
    // --reference: the PyTorch reference right after, and each line gains the ratio.
    const compared = only.filter((w) => w in FIGURE && w !== 'data');
    const ref = compared.length > 0 ? runReference(root, compared) : null;
    for (const line of lines) {
      const key = FIGURE[line.workload];
      const own = line['reference'] as Record<string, unknown> | undefined;
      delete line['reference'];
      const theirs = key ? (own?.[key] ?? ref?.[line.workload]?.[key]) : undefined;
      if (key && typeof theirs === 'number') {
        line[`reference_${key}`] = theirs;
        line['ratio_vs_reference'] = Number(((line[key] as number) / theirs).toFixed(3));
      }
      console.log(JSON.stringify(line));
    }
  })().catch((err: unknown) => {
    process.stderr.write(`bench: ${(err as Error).message}\n`);
    process.exitCode = 1;
  });
  return 0;
}
process.exitCode = main();
