import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Runs the PyTorch reference (../shared/bench/pytorch_ref.py, Debian's python3-torch) for
 * the same workloads in the same run, so ratios are taken under the same machine load.
 * Returns null when the reference or torch is not available (the reason goes to stderr).
 */
export function runReference(
  root: string,
  workloads: string[],
  threads = 2,
  extra: string[] = [],
): Record<string, Record<string, unknown>> | null {
  if (workloads.length === 0) return {};
  const script = [
    join(root, '..', 'shared', 'bench', 'pytorch_ref.py'),
    join(root, 'shared', 'bench', 'pytorch_ref.py'),
  ].find(existsSync);
  if (!script) {
    process.stderr.write('bench: reference skipped: ../shared/bench/pytorch_ref.py not found\n');
    return null;
  }
  const r = spawnSync(
    '/usr/bin/python3',
    [script, ...workloads, '--threads', String(threads), ...extra],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) {
    process.stderr.write(
      `bench: reference failed: ${(r.stderr || r.error?.message || '').trim().split('\n').at(-1)}\n`,
    );
    return null;
  }
  const out: Record<string, Record<string, unknown>> = {};
  for (const line of r.stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const j = JSON.parse(line) as Record<string, unknown>;
    out[String(j['workload'])] = j;
  }
  return out;
}

/**
 * W5's reference on the bench's own folder: `pytorch_ref.py data --folder DIR --size S
 * --threads 2` (torchvision ImageFolder + DataLoader with two workers).
 */
export function runReferenceData(
  root: string,
): (dir: string, size: number) => Record<string, unknown> | null {
  return (dir, size) =>
    runReference(root, ['data'], 2, ['--folder', dir, '--size', String(size)])?.['data'] ?? null;
}
