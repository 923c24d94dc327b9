import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '@metaprune/testkit';
import { afterAll, describe, expect, it } from 'vitest';
import { PathEscapeError, pathInside, requireInside } from '../src/index.js';

describe('pathInside', () => {
  const tmp = tempDir('paths-');
  afterAll(() => tmp.remove());

  it('joins plain names below the root', () => {
    expect(pathInside(tmp.path, 'jobs', 'job-1', 'work')).toBe(
      join(tmp.path, 'jobs', 'job-1', 'work'),
    );
  });

  it.each([['..'], ['.'], [''], ['a/b'], ['/etc'], ['..\\x'], ['a\0b']])(
    'refuses the segment %j with PathEscapeError (FAILED_PRECONDITION)',
    (seg) => {
      expect(() => pathInside(tmp.path, 'jobs', seg)).toThrow(PathEscapeError);
    },
  );

  it('refuses a path that leaves the root through a symbolic link', () => {
    const root = join(tmp.path, 'root');
    mkdirSync(root);
    mkdirSync(join(tmp.path, 'outside'));
    symlinkSync(join(tmp.path, 'outside'), join(root, 'link'));
    expect(() => pathInside(root, 'link', 'x')).toThrow(/symbolic link/);
    expect(() => requireInside(root, join(root, 'link'))).toThrow(PathEscapeError);
    expect(() => requireInside(root, '/etc')).toThrow(PathEscapeError);
    expect(requireInside(root, join(root, 'a', 'b'))).toBe(join(root, 'a', 'b'));
  });
});
