/**
 * Schema-driven configuration: defaults → environment variables (with a prefix) → CLI flags,
 * validated and returned as a frozen, typed object.
 *
 *   const schema = defineConfig({
 *     port: { type: 'int', default: 0, min: 0, max: 65535, doc: 'gRPC port (0 = any free)' },
 *     natsUrl: { type: 'url', default: 'nats://127.0.0.1:4222', protocols: ['nats:', 'tls:'] },
 *     ackWait: { type: 'duration', default: '30s', min: 1000 },
 *   });
 *   const cfg = loadConfig(schema, { envPrefix: 'EVALUATOR_', flags });
 *   // env EVALUATOR_NATS_URL, flag --nats-url (or natsUrl); cfg.ackWait is in milliseconds
 */

interface FieldBase {
  /** One line of documentation. */
  doc?: string;
  /** Overrides the derived env var name (without prefix handling: used as is). */
  env?: string;
  /** Overrides the derived flag name (kebab-case, without dashes). */
  flag?: string;
  /** Fails when neither a default, env var nor flag gives a value. */
  required?: boolean;
  /** Hide the value in describeConfig (tokens, passwords). */
  secret?: boolean;
}
export interface IntField extends FieldBase {
  type: 'int';
  default?: number;
  min?: number;
  max?: number;
}
export interface FloatField extends FieldBase {
  type: 'float';
  default?: number;
  min?: number;
  max?: number;
}
export interface StringField extends FieldBase {
  type: 'string';
  default?: string;
  /** The value must match this. */
  pattern?: RegExp;
}
export interface EnumField extends FieldBase {
  type: 'enum';
  values: readonly string[];
  default?: string;
}
export interface UrlField extends FieldBase {
  type: 'url';
  default?: string;
  /** Allowed protocols with the colon, e.g. ['http:', 'https:']. */
  protocols?: readonly string[];
}
export interface BooleanField extends FieldBase {
  type: 'boolean';
  default?: boolean;
}
/** A duration like "500ms", "30s", "5m", "1h", "1.5s" (a bare number is milliseconds). Yields ms. */
export interface DurationField extends FieldBase {
  type: 'duration';
  default?: string | number;
  /** Minimum in milliseconds. */
  min?: number;
  /** Maximum in milliseconds. */
  max?: number;
}
/** Comma-separated list of non-empty strings. */
export interface ListField extends FieldBase {
  type: 'list';
  default?: readonly string[];
}

export type FieldSpec =
  | IntField
  | FloatField
  | StringField
  | EnumField
  | UrlField
  | BooleanField
  | DurationField
  | ListField;

export type ConfigSchema = Record<string, FieldSpec>;

type ValueOf<F extends FieldSpec> = F extends IntField | FloatField | DurationField
  ? number
  : F extends EnumField
    ? F['values'][number]
    : F extends BooleanField
      ? boolean
      : F extends ListField
        ? readonly string[]
        : string;

type HasValue<F> = F extends { default: unknown }
  ? true
  : F extends { required: true }
    ? true
    : false;

/** The typed result of loadConfig for a schema. */
export type InferConfig<S extends ConfigSchema> = {
  readonly [K in keyof S as HasValue<S[K]> extends true ? K : never]: ValueOf<S[K]>;
} & {
  readonly [K in keyof S as HasValue<S[K]> extends true ? never : K]?: ValueOf<S[K]>;
};

/** Identity helper that keeps literal types (enum values, presence of defaults). */
export function defineConfig<const S extends ConfigSchema>(schema: S): S {
  return schema;
}

export interface ConfigIssue {
  /** Schema key. */
  key: string;
  /** Where the bad value came from: "env EVALUATOR_PORT", "flag --port", "default". */
  source: string;
  message: string;
}

export class ConfigError extends Error {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(
      issues.length === 1
        ? `invalid configuration: ${formatIssue(issues[0]!)}`
        : `invalid configuration:\n${issues.map((i) => `  - ${formatIssue(i)}`).join('\n')}`,
    );
    this.name = 'ConfigError';
    this.issues = issues;
  }
}

function formatIssue(i: ConfigIssue): string {
  return `${i.source}: ${i.message}`;
}

export interface LoadConfigOptions {
  /** Prefix of env vars, e.g. "EVALUATOR_" → EVALUATOR_NATS_URL. */
  envPrefix?: string;
  /** Environment (default process.env). */
  env?: Record<string, string | undefined>;
  /** Parsed CLI flags, keyed by kebab-case ("nats-url") or schema key ("natsUrl"). */
  flags?: Record<string, string>;
  /** Ignore flags not in the schema instead of failing (default false). */
  allowUnknownFlags?: boolean;
}

const kebab = (key: string): string => key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
const snake = (key: string): string => kebab(key).replace(/-/g, '_').toUpperCase();

export function envName(key: string, spec: FieldSpec, prefix = ''): string {
  return spec.env ?? `${prefix}${snake(key)}`;
}
export function flagName(key: string, spec: FieldSpec): string {
  return spec.flag ?? kebab(key);
}

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses "500ms", "30s", "1.5m", "2h", or a bare number of milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(text);
  if (!m) return undefined;
  const n = Number(m[1]) * DURATION_UNITS[m[2] ?? 'ms']!;
  return Number.isFinite(n) ? Math.round(n) : undefined;
}

export function formatDuration(ms: number): string {
  if (ms % 3_600_000 === 0 && ms > 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0 && ms > 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0 && ms > 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Human description of what a field accepts ("integer in [0, 65535]"). */
export function allowedValues(spec: FieldSpec): string {
  const range = (
    min: number | undefined,
    max: number | undefined,
    fmt: (n: number) => string = String,
  ): string =>
    min !== undefined && max !== undefined
      ? ` in [${fmt(min)}, ${fmt(max)}]`
      : min !== undefined
        ? ` >= ${fmt(min)}`
        : max !== undefined
          ? ` <= ${fmt(max)}`
          : '';
  switch (spec.type) {
    case 'int':
      return `integer${range(spec.min, spec.max)}`;
    case 'float':
      return `number${range(spec.min, spec.max)}`;
    case 'duration':
      return `duration (e.g. 500ms, 30s, 5m, 1h)${range(spec.min, spec.max, formatDuration)}`;
    case 'enum':
      return `one of ${spec.values.join(', ')}`;
    case 'boolean':
      return 'true or false';
    case 'url':
      return spec.protocols ? `URL (${spec.protocols.join(' ')})` : 'URL';
    case 'list':
      return 'comma-separated list';
    case 'string':
      return spec.pattern ? `string matching ${spec.pattern}` : 'string';
  }
}

type Parsed = { ok: true; value: unknown } | { ok: false; message: string };

function parseValue(spec: FieldSpec, raw: string): Parsed {
  const bad = (): Parsed => ({
    ok: false,
    message: `must be ${allowedValues(spec)}, got ${JSON.stringify(raw)}`,
  });
  const inRange = (n: number, min?: number, max?: number): boolean =>
    (min === undefined || n >= min) && (max === undefined || n <= max);
  switch (spec.type) {
    case 'int': {
      if (!/^\s*[-+]?\d+\s*$/.test(raw)) return bad();
      const n = Number(raw);
      return Number.isSafeInteger(n) && inRange(n, spec.min, spec.max)
        ? { ok: true, value: n }
        : bad();
    }
    case 'float': {
      const n = raw.trim() === '' ? Number.NaN : Number(raw);
      return Number.isFinite(n) && inRange(n, spec.min, spec.max) ? { ok: true, value: n } : bad();
    }
    case 'duration': {
      const n = parseDuration(raw);
      return n !== undefined && inRange(n, spec.min, spec.max) ? { ok: true, value: n } : bad();
    }
    case 'enum':
      return spec.values.includes(raw) ? { ok: true, value: raw } : bad();
    case 'boolean': {
      const v = raw.trim().toLowerCase();
      if (['true', '1', 'yes', 'on', ''].includes(v)) return { ok: true, value: true };
      if (['false', '0', 'no', 'off'].includes(v)) return { ok: true, value: false };
      return bad();
    }
    case 'url': {
      let url: URL;
      try {
        url = new URL(raw);
      } catch {
        return bad();
      }
      return !spec.protocols || spec.protocols.includes(url.protocol)
        ? { ok: true, value: raw }
        : bad();
    }
    case 'list': {
      const items = raw
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s.length > 0);
      return { ok: true, value: Object.freeze(items) };
    }
    case 'string':
      return !spec.pattern || spec.pattern.test(raw) ? { ok: true, value: raw } : bad();
  }
}

function defaultAsString(spec: FieldSpec): string | undefined {
  const d = spec.default;
  if (d === undefined) return undefined;
  if (Array.isArray(d)) return d.join(',');
  return String(d);
}

/**
 * Builds the configuration: each key takes its default, then its env var, then its flag;
 * every value is validated. Throws ConfigError listing every bad value with its source and
 * what is allowed. The result is frozen.
 */
export function loadConfig<const S extends ConfigSchema>(
  schema: S,
  opts: LoadConfigOptions = {},
): InferConfig<S> {
  const env = opts.env ?? process.env;
  const flags = opts.flags ?? {};
  const prefix = opts.envPrefix ?? '';
  const issues: ConfigIssue[] = [];
  const out: Record<string, unknown> = {};

  const known = new Set<string>();
  for (const [key, spec] of Object.entries(schema)) {
    known.add(key);
    known.add(flagName(key, spec));
  }
  if (!opts.allowUnknownFlags) {
    for (const flag of Object.keys(flags)) {
      if (!known.has(flag)) {
        issues.push({
          key: flag,
          source: `flag --${flag}`,
          message: `unknown flag (known: ${Object.entries(schema)
            .map(([k, s]) => `--${flagName(k, s)}`)
            .join(', ')})`,
        });
      }
    }
  }

  for (const [key, spec] of Object.entries(schema)) {
    const envVar = envName(key, spec, prefix);
    const flag = flagName(key, spec);
    let raw: string | undefined = defaultAsString(spec);
    let source = `default of ${key}`;
    const envValue = env[envVar];
    if (envValue !== undefined && envValue !== '') {
      raw = envValue;
      source = `env ${envVar}`;
    }
    const flagValue = flags[flag] ?? flags[key];
    if (flagValue !== undefined) {
      raw = flagValue;
      source = `flag --${flag}`;
    }
    if (raw === undefined) {
      if (spec.required) {
        issues.push({
          key,
          source: `${key}`,
          message: `required: set env ${envVar} or flag --${flag} (${allowedValues(spec)})`,
        });
      }
      continue;
    }
    const parsed = parseValue(spec, raw);
    if (parsed.ok) out[key] = parsed.value;
    else issues.push({ key, source, message: parsed.message });
  }
  if (issues.length > 0) throw new ConfigError(issues);
  return Object.freeze(out) as InferConfig<S>;
}

export interface DescribedSetting {
  key: string;
  env: string;
  flag: string;
  default: string;
  allowed: string;
  doc: string;
}

/** One row per setting: name, env var, flag, default, allowed values, documentation. */
export function describeSettings(
  schema: ConfigSchema,
  opts: { envPrefix?: string } = {},
): DescribedSetting[] {
  return Object.entries(schema).map(([key, spec]) => {
    const d = defaultAsString(spec);
    return {
      key,
      env: envName(key, spec, opts.envPrefix ?? ''),
      flag: `--${flagName(key, spec)}`,
      default:
        d === undefined
          ? spec.required
            ? '(required)'
            : '(unset)'
          : spec.secret
            ? '(hidden)'
            : d === ''
              ? '""'
              : d,
      allowed: allowedValues(spec),
      doc: spec.doc ?? '',
    };
  });
}

/** Renders the schema as a Markdown table for docs and README files. */
export function describeConfig(schema: ConfigSchema, opts: { envPrefix?: string } = {}): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const rows = describeSettings(schema, opts).map(
    (r) =>
      `| \`${r.key}\` | \`${r.env}\` | \`${r.flag}\` | ${esc(r.default)} | ${esc(r.allowed)} | ${esc(r.doc)} |`,
  );
  return [
    '| Setting | Env var | Flag | Default | Allowed | Description |',
    '| --- | --- | --- | --- | --- | --- |',
    ...rows,
  ].join('\n');
}

/**
 * Minimal argv → flags parser for service mains: `--name=value`, `--name value`, and bare
 * `--name` (→ "" which a boolean field reads as true; also when listed in `booleans`).
 * Anything not starting with `--` is a positional argument.
 */
export function parseFlags(
  argv: readonly string[],
  opts: { booleans?: readonly string[] } = {},
): { flags: Record<string, string>; positionals: string[] } {
  const flags: Record<string, string> = {};
  const positionals: string[] = [];
  const booleans = new Set(opts.booleans ?? []);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith('--')) {
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    if (eq >= 0) {
      flags[arg.slice(2, eq)] = arg.slice(eq + 1);
      continue;
    }
    const name = arg.slice(2);
    const next = argv[i + 1];
    if (!booleans.has(name) && next !== undefined && !next.startsWith('--')) {
      flags[name] = next;
      i++;
    } else {
      flags[name] = '';
    }
  }
  return { flags, positionals };
}
