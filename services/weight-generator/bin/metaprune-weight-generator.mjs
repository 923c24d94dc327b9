#!/usr/bin/env node
// A committed launcher, so that npm links the bin at install time: a bin pointing straight at
// dist/main.js is not linked by `npm ci` on a fresh clone, because dist/ does not exist yet.
import { existsSync } from 'node:fs';

const main = new URL('../dist/main.js', import.meta.url);
if (!existsSync(main)) {
  process.stderr.write(
    'metaprune-weight-generator: not built yet; run "npm run setup" in the repository root\n',
  );
  process.exit(2);
}
await import(main.href);
