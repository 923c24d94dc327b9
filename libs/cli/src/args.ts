import { type ParseArgsConfig, parseArgs } from 'node:util';
import { UsageError } from './errors.js';

export type Options = NonNullable<ParseArgsConfig['options']>;
export type Values = Record<string, string | boolean | undefined>;

/** Strict flag parsing; unknown flags and stray arguments are usage errors. */
export function parseFlags(argv: string[], options: Options): Values {
  try {
    const { values } = parseArgs({
      args: argv,
      options: { ...options, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    });
    return values as Values;
  } catch (err) {
    const msg = err instanceof Error ? err.message.split('\n')[0] : String(err);
    throw new UsageError(msg ?? 'invalid arguments');
  }
}

export function str(v: Values, name: string, fallback?: string): string | undefined {
  const x = v[name];
  return typeof x === 'string' ? x : fallback;
}

export function requireStr(v: Values, name: string): string {
  const x = str(v, name);
  if (x === undefined) throw new UsageError(`--${name} is required`);
  return x;
}

/** A number flag within [min, max] (integers when `integer`), naming the flag on error. */
export function num(
  v: Values,
  name: string,
  range: { min: number; max: number; integer?: boolean },
  fallback?: number,
): number | undefined {
  const raw = str(v, name);
  if (raw === undefined) return fallback;
  const x = Number(raw);
  if (
    raw.trim() === '' ||
    !Number.isFinite(x) ||
    x < range.min ||
    x > range.max ||
    (range.integer && !Number.isInteger(x))
  ) {
    throw new UsageError(
      `--${name}: ${JSON.stringify(raw)} is out of range; allowed ${range.integer ? 'integers ' : ''}${range.min}..${range.max}`,
    );
  }
  return x;
}

export function oneOf<T extends string>(
  v: Values,
  name: string,
  allowed: readonly T[],
  fallback?: T,
): T | undefined {
  const raw = str(v, name);
  if (raw === undefined) return fallback;
  if (!allowed.includes(raw as T))
    throw new UsageError(`--${name}: unknown value "${raw}"; allowed ${allowed.join(', ')}`);
  return raw as T;
}
