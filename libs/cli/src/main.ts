#!/usr/bin/env node
import { ValidationError } from '@metaprune/core';
import { DatasetError } from '@metaprune/data';
import { convertCommand, convertHelp } from './commands/convert.js';
import { demoCommand, demoHelp } from './commands/demo.js';
import { evaluateCommand, evaluateHelp } from './commands/evaluate.js';
import { experimentCommand, experimentHelp } from './commands/experiment.js';
import { exportCommand, exportHelp } from './commands/export.js';
import { fidelityCommand, fidelityHelp } from './commands/fidelity.js';
import { flopsCommand, flopsHelp } from './commands/flops.js';
import { latencyCommand, latencyHelp } from './commands/latency.js';
import { networksCommand, networksHelp } from './commands/networks.js';
import { profileCommand, profileHelp } from './commands/profile.js';
import { reportCommand, reportHelp } from './commands/report.js';
import { retrainCommand, retrainHelp } from './commands/retrain.js';
import { searchCommand, searchHelp } from './commands/search.js';
import { trainCommand, trainHelp } from './commands/train.js';
import { upCommand, upHelp } from './commands/up.js';
import { UsageError } from './errors.js';
import { readStackFile } from './stack.js';

type Command = { run: (argv: string[]) => number | Promise<number>; help: string; about: string };

const COMMANDS: Record<string, Command> = {
  networks: {
    run: networksCommand,
    help: networksHelp,
    about: 'list network families and presets',
  },
  flops: { run: flopsCommand, help: flopsHelp, about: 'MACs and parameters of a (pruned) network' },
  report: { run: reportCommand, help: reportHelp, about: 'search-space and FLOPs-parity report' },
  demo: {
    run: demoCommand,
    help: demoHelp,
    about: 'the whole pipeline: train, search, retrain, compare (npm run demo)',
  },
  train: { run: trainCommand, help: trainHelp, about: 'train a PruningNet (locally, or --remote)' },
  evaluate: {
    run: evaluateCommand,
    help: evaluateHelp,
    about: 'score one candidate with generated weights',
  },
  experiment: {
    run: experimentCommand,
    help: experimentHelp,
    about: 'reproduce the paper at small scale: report, plots, models',
  },
  fidelity: {
    run: fidelityCommand,
    help: fidelityHelp,
    about: 'the resumable proxy-fidelity study and headline (issue 16)',
  },
  retrain: {
    run: retrainCommand,
    help: retrainHelp,
    about: 'train a pruned network from scratch, export it',
  },
  export: {
    run: exportCommand,
    help: exportHelp,
    about: 'write a candidate as a standard tfjs model (generated weights)',
  },
  convert: {
    run: convertCommand,
    help: convertHelp,
    about: 'turn a training-form export into the inference form',
  },
  up: { run: upCommand, help: upHelp, about: 'start the services on this machine' },
  search: { run: searchCommand, help: searchHelp, about: 'search pruned widths (via the stack)' },
  profile: { run: profileCommand, help: profileHelp, about: 'measure a device latency table' },
  latency: { run: latencyCommand, help: latencyHelp, about: 'predicted (and measured) latency' },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(10)} ${c.about}`);
  return `metaprune — automatic channel pruning (MetaPruning)\n\nusage: metaprune <command> [flags]\n\n${lines.join('\n')}\n\nmetaprune <command> --help for a command's flags.`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd)
    throw new UsageError(`unknown command "${name}"; allowed ${Object.keys(COMMANDS).join(', ')}`);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.help);
    return 0;
  }
  // `metaprune up` keeps its bearer token in the owner-only stack file: commands that talk
  // to that stack send it (METAPRUNE_TOKEN, read by every client) without a flag
  const stackToken = name !== 'up' ? readStackFile()?.token : undefined;
  if (!process.env['METAPRUNE_TOKEN'] && stackToken) process.env['METAPRUNE_TOKEN'] = stackToken;
  return cmd.run(rest);
}

// Bad input: one clear line on stderr and exit code 2 — never a stack trace.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // A dataset the user pointed at that cannot be used (empty folder, one class, too many
    // unreadable files, ...) is bad input too: its message names the file and what was expected.
    if (
      err instanceof UsageError ||
      err instanceof ValidationError ||
      err instanceof DatasetError
    ) {
      process.stderr.write(`metaprune: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`metaprune: ${msg}\n`);
    if (process.env['METAPRUNE_DEBUG']) console.error(err);
    process.exitCode = 1;
  },
);
