/**
 * A tiny structured logger: one JSON object per line on stderr,
 * `{"time":"…","level":"info","service":"evaluator","msg":"…",…fields}`.
 */

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The log-level setting every service has (spread into its config schema). */
export const LOG_LEVEL_SETTINGS = {
  logLevel: {
    type: 'enum',
    values: LOG_LEVELS,
    default: 'info',
    doc: 'log level (JSON lines on stderr)',
  },
} as const;

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  readonly level: LogLevel;
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
  isEnabled(level: LogLevel): boolean;
}

export interface LoggerOptions {
  service: string;
  level?: LogLevel;
  /** Fields added to every line. */
  fields?: LogFields;
  /** Where lines go (default: process.stderr). */
  write?: (line: string) => void;
  /** Clock, for tests. */
  now?: () => Date;
}

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

/** Error objects become {name, message, stack?, code?, cause?}; bigints become strings. */
function serialize(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    const out: Record<string, unknown> = { name: value.name, message: value.message };
    const code = (value as { code?: unknown }).code;
    if (code !== undefined) out['code'] = code;
    if (value.stack) out['stack'] = value.stack;
    if (value.cause !== undefined && depth < 3) out['cause'] = serialize(value.cause, depth + 1);
    return out;
  }
  return value;
}

function safeStringify(obj: LogFields): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(obj, (_key, value: unknown) => {
    if (typeof value === 'bigint') return value.toString();
    if (value instanceof Error) return serialize(value);
    if (typeof value === 'object' && value !== null) {
      if (seen.has(value)) return '[circular]';
      seen.add(value);
    }
    return value;
  });
}

export function createLogger(opts: LoggerOptions): Logger {
  const level = opts.level ?? 'info';
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const now = opts.now ?? (() => new Date());
  const base = opts.fields ?? {};

  const emit = (lvl: Exclude<LogLevel, 'silent'>, msg: string, fields?: LogFields): void => {
    if (RANK[lvl] < RANK[level]) return;
    const line: LogFields = {
      time: now().toISOString(),
      level: lvl,
      service: opts.service,
      msg,
      ...base,
      ...fields,
    };
    let text: string;
    try {
      text = safeStringify(line);
    } catch (err) {
      text = safeStringify({
        time: line['time'],
        level: lvl,
        service: opts.service,
        msg,
        logError: String(err),
      });
    }
    write(`${text}\n`);
  };

  return {
    level,
    debug: (msg, fields) => emit('debug', msg, fields),
    info: (msg, fields) => emit('info', msg, fields),
    warn: (msg, fields) => emit('warn', msg, fields),
    error: (msg, fields) => emit('error', msg, fields),
    child: (fields) => createLogger({ ...opts, fields: { ...base, ...fields } }),
    isEnabled: (lvl) => RANK[lvl] >= RANK[level] && lvl !== 'silent',
  };
}

/** A logger that drops everything (default where a logger is optional). */
export const nullLogger: Logger = createLogger({ service: '', level: 'silent', write: () => {} });
