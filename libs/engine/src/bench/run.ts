/**
 * Runs W1/W2 and prints one JSON line each (a script for measuring; the CLI's `npm run
 * bench` calls the workload functions itself):
 *   node libs/engine/dist/bench/run.js [train] [eval] [--workers 2] [--steps 10] [--candidates 8]
 */
import { benchEval, benchTrain } from './workloads.js';

function arg(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : undefined;
}
const which = process.argv.slice(2).filter((a) => a === 'train' || a === 'eval');
const log = (l: string) => process.stderr.write(`${l}\n`);
const workers = arg('workers');
for (const w of which.length ? which : ['train', 'eval']) {
  const r =
    w === 'train'
      ? await benchTrain({ workers, steps: arg('steps'), log })
      : await benchEval({ workers, candidates: arg('candidates'), log });
  console.log(JSON.stringify(r));
}
