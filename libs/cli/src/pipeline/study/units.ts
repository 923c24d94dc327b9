/**
 * Finished units of the study, one small JSON file each under the output directory (meant
 * to be committed): a rerun of the same command reads them and skips what is done, so a
 * run of many hours continues across interruptions and across machines (only these files
 * travel; PruningNet checkpoints are ~0.5 GB and stay in the work directory).
 */
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  writeFileSync,
} from 'node:fs';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';

export class UnitStore {
  constructor(readonly dir: string) {}

  path(name: string): string {
    return join(this.dir, `${name}.json`);
  }

  has(name: string): boolean {
    return existsSync(this.path(name));
  }

  get<T>(name: string): T | undefined {
    const p = this.path(name);
    if (!existsSync(p)) return undefined;
    return JSON.parse(readFileSync(p, 'utf8')) as T;
  }

  /**
   * Writes atomically (temp file, then rename): a killed run never leaves half a unit. An
   * object unit also records when it finished and the machine's load then (`recorded`), as
   * durations on a shared machine mean little without it.
   */
  put(name: string, value: unknown): void {
    const p = this.path(name);
    mkdirSync(dirname(p), { recursive: true });
    const tmp = `${p}.tmp-${process.pid}`;
    const v =
      value && typeof value === 'object' && !Array.isArray(value)
        ? {
            ...value,
            recorded: {
              at: new Date().toISOString(),
              loadavg: loadavg().map((x) => Math.round(100 * x) / 100),
            },
          }
        : value;
    writeFileSync(tmp, `${JSON.stringify(v, null, 1)}\n`);
    renameSync(tmp, p);
  }

  /** Unit names under a folder (without `.json`). */
  list(folder: string): string[] {
    const d = join(this.dir, folder);
    if (!existsSync(d)) return [];
    return readdirSync(d)
      .filter((f) => f.endsWith('.json'))
      .map((f) => `${folder}/${f.slice(0, -5)}`);
  }
}
