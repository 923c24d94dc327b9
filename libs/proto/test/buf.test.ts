import { spawnSync } from 'node:child_process';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..', '..');
const buf = join(root, 'node_modules', '.bin', 'buf');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}

const temps: string[] = [];
const tempDir = (prefix: string) => {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
};
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

describe('proto contracts', () => {
  it('buf lint (STANDARD) passes on proto/', () => {
    const r = spawnSync(buf, ['lint'], { cwd: root, encoding: 'utf8' });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('buf lint would catch a violation (the check is live)', () => {
    const dir = tempDir('metaprune-buf-');
    mkdirSync(join(dir, 'proto', 'bad', 'v1'), { recursive: true });
    writeFileSync(
      join(dir, 'buf.yaml'),
      'version: v2\nmodules:\n  - path: proto\nlint:\n  use:\n    - STANDARD\n',
    );
    writeFileSync(
      join(dir, 'proto', 'bad', 'v1', 'bad.proto'),
      'syntax = "proto3";\npackage bad.v1;\nenum Color { RED = 0; }\n',
    );
    const r = spawnSync(buf, ['lint'], { cwd: dir, encoding: 'utf8' });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/ENUM_ZERO_VALUE_SUFFIX|_UNSPECIFIED/);
  });

  it('src/gen is exactly what codegen produces from proto/ (no stale or hand-edited files)', () => {
    const pkg = join(root, 'libs', 'proto');
    const out = tempDir('metaprune-gen-');
    const r = spawnSync(buf, ['generate', '--template', 'buf.gen.yaml', '-o', out, '../../proto'], {
      cwd: pkg,
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const fresh = join(out, 'src', 'gen');
    const current = join(pkg, 'src', 'gen');
    const list = (dir: string) =>
      files(dir)
        .map((f) => relative(dir, f))
        .sort();
    const expected = list(fresh);
    // one module per proto file, plus google/protobuf/timestamp.ts
    expect(expected.length).toBe(files(join(root, 'proto')).length + 1);
    expect(list(current), 'run `npm run codegen`').toEqual(expected);
    for (const f of expected) {
      expect(readFileSync(join(current, f), 'utf8'), `${f} is stale: run \`npm run codegen\``).toBe(
        readFileSync(join(fresh, f), 'utf8'),
      );
    }
  });
});
