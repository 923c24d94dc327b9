#!/usr/bin/env node
// Every check of the project, in order: lint (biome + buf), typecheck, the dependency
// rules (dependency-cruiser), then all vitest
// tests. Ends with one line "N passed, N failed" counted from vitest's JSON report.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => join(root, 'node_modules', '.bin', name);
const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1' };
const run = (cmd, args) => spawnSync(cmd, args, { cwd: root, stdio: 'inherit', env }).status ?? 1;

let failedChecks = 0;
let passedChecks = 0;
for (const [label, cmd, args] of [
  ['biome check', bin('biome'), ['check', '.']],
  ['buf lint', bin('buf'), ['lint']],
  ['typecheck', bin('turbo'), ['run', 'typecheck', '--output-logs=errors-only']],
  // the package map's arrows and no import cycles (rules in .dependency-cruiser.cjs)
  [
    'dependency rules',
    bin('depcruise'),
    [
      'libs',
      'services',
      'deploy',
      'tests',
      '--config',
      '.dependency-cruiser.cjs',
      '--output-type',
      'err',
    ],
  ],
]) {
  process.stderr.write(`\n== ${label}\n`);
  if (run(cmd, args) === 0) passedChecks++;
  else {
    failedChecks++;
    process.stderr.write(`== ${label} FAILED\n`);
  }
}

const report = join(mkdtempSync(join(tmpdir(), 'metaprune-test-')), 'vitest.json');
const extra = process.argv.slice(2);
run(bin('vitest'), [
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...extra,
]);
let passed = 0;
let failed = 0;
if (existsSync(report)) {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
  // a test file that fails to load contributes no tests; count it as a failure
  for (const f of r.testResults ?? [])
    if (f.status === 'failed' && (f.assertionResults ?? []).length === 0) failed++;
} else {
  failed++;
}
passed += passedChecks;
failed += failedChecks;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
