import { describe, expect, expectTypeOf, it } from 'vitest';
import {
  ConfigError,
  defineConfig,
  describeConfig,
  describeSettings,
  loadConfig,
  parseDuration,
  parseFlags,
} from '../src/index.js';

const schema = defineConfig({
  port: { type: 'int', default: 0, min: 0, max: 65535, doc: 'gRPC port (0 = any free port)' },
  natsUrl: {
    type: 'url',
    default: 'nats://127.0.0.1:4222',
    protocols: ['nats:', 'tls:'],
    doc: 'NATS server',
  },
  logLevel: { type: 'enum', values: ['debug', 'info', 'warn', 'error'], default: 'info' },
  ackWait: { type: 'duration', default: '30s', min: 1000, max: 3_600_000, doc: 'ack wait' },
  lr: { type: 'float', default: 0.1, min: 0, max: 10 },
  tls: { type: 'boolean', default: false },
  budgets: { type: 'list', default: ['5', '10'] },
  token: { type: 'string', secret: true, doc: 'auth token' },
  dataRoot: { type: 'string', required: true, env: 'METAPRUNE_DATA' },
});

describe('loadConfig', () => {
  it('applies defaults, then env, then flags; freezes the result', () => {
    const cfg = loadConfig(schema, {
      envPrefix: 'EVAL_',
      env: {
        EVAL_PORT: '5000',
        EVAL_LOG_LEVEL: 'debug',
        METAPRUNE_DATA: '/data',
        EVAL_ACK_WAIT: '2m',
      },
      flags: { port: '6000', tls: '', budgets: '1, 2 ,3' },
    });
    expect(cfg).toEqual({
      port: 6000,
      natsUrl: 'nats://127.0.0.1:4222',
      logLevel: 'debug',
      ackWait: 120_000,
      lr: 0.1,
      tls: true,
      budgets: ['1', '2', '3'],
      dataRoot: '/data',
    });
    expect(Object.isFrozen(cfg)).toBe(true);
    expect(() => {
      (cfg as { port: number }).port = 1;
    }).toThrow();
    expectTypeOf(cfg.port).toEqualTypeOf<number>();
    expectTypeOf(cfg.logLevel).toEqualTypeOf<'debug' | 'info' | 'warn' | 'error'>();
    expectTypeOf(cfg.token).toEqualTypeOf<string | undefined>();
    expectTypeOf(cfg.dataRoot).toEqualTypeOf<string>();
    expectTypeOf(cfg.tls).toEqualTypeOf<boolean>();
  });

  it('accepts camelCase flag keys and an empty env value falls back to the default', () => {
    const cfg = loadConfig(schema, {
      env: { PORT: '', METAPRUNE_DATA: '/d' },
      flags: { natsUrl: 'tls://nats.example:4222', 'ack-wait': '1500ms' },
    });
    expect(cfg.port).toBe(0);
    expect(cfg.natsUrl).toBe('tls://nats.example:4222');
    expect(cfg.ackWait).toBe(1500);
  });

  it('names the env var or flag and the allowed range in errors', () => {
    const load =
      (env: Record<string, string>, flags: Record<string, string> = {}) =>
      () =>
        loadConfig(schema, { envPrefix: 'EVAL_', env: { METAPRUNE_DATA: '/d', ...env }, flags });
    expect(load({ EVAL_PORT: '70000' })).toThrow(
      'invalid configuration: env EVAL_PORT: must be integer in [0, 65535], got "70000"',
    );
    expect(load({}, { port: '1.5' })).toThrow(
      /flag --port: must be integer in \[0, 65535\], got "1.5"/,
    );
    expect(load({ EVAL_LOG_LEVEL: 'loud' })).toThrow(
      /env EVAL_LOG_LEVEL: must be one of debug, info, warn, error/,
    );
    expect(load({ EVAL_NATS_URL: 'http://x' })).toThrow(
      /env EVAL_NATS_URL: must be URL \(nats: tls:\)/,
    );
    expect(load({ EVAL_NATS_URL: 'not a url' })).toThrow(/EVAL_NATS_URL/);
    expect(load({ EVAL_ACK_WAIT: '10ms' })).toThrow(
      /env EVAL_ACK_WAIT: must be duration \(e.g. 500ms, 30s, 5m, 1h\) in \[1s, 1h\], got "10ms"/,
    );
    expect(load({ EVAL_ACK_WAIT: 'soon' })).toThrow(/EVAL_ACK_WAIT/);
    expect(load({ EVAL_LR: 'NaN' })).toThrow(/env EVAL_LR: must be number in \[0, 10\]/);
    expect(load({ EVAL_TLS: 'maybe' })).toThrow(/env EVAL_TLS: must be true or false/);
    expect(load({}, { prot: '1' })).toThrow(
      /flag --prot: unknown flag \(known: --port, --nats-url/,
    );
  });

  it('reports every problem at once, including missing required settings', () => {
    try {
      loadConfig(schema, { env: { PORT: '-1', LR: '11' } });
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      const e = err as ConfigError;
      expect(e.issues.map((i) => i.key)).toEqual(['port', 'lr', 'dataRoot']);
      expect(e.message).toContain('required: set env METAPRUNE_DATA or flag --data-root');
      expect(e.message.split('\n')).toHaveLength(4);
    }
  });

  it('allowUnknownFlags ignores flags of other components', () => {
    const cfg = loadConfig(schema, {
      env: { METAPRUNE_DATA: '/d' },
      flags: { other: 'x' },
      allowUnknownFlags: true,
    });
    expect(cfg.port).toBe(0);
  });
});

describe('parseDuration / parseFlags', () => {
  it('parses durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('30s')).toBe(30_000);
    expect(parseDuration('1.5s')).toBe(1500);
    expect(parseDuration('2m')).toBe(120_000);
    expect(parseDuration('1h')).toBe(3_600_000);
    expect(parseDuration('250')).toBe(250);
    expect(parseDuration('-1s')).toBeUndefined();
    expect(parseDuration('1d')).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
  });

  it('parses argv into flags and positionals', () => {
    expect(
      parseFlags(
        ['up', '--evaluators', '2', '--nats=nats://x:1', '--json', '--tls', 'extra', '--', '--raw'],
        {
          booleans: ['tls'],
        },
      ),
    ).toEqual({
      flags: { evaluators: '2', nats: 'nats://x:1', json: '', tls: '' },
      positionals: ['up', 'extra', '--raw'],
    });
  });
});

describe('describeConfig', () => {
  it('renders name, env var, flag, default and range; hides secrets', () => {
    const rows = describeSettings(schema, { envPrefix: 'EVAL_' });
    expect(rows[0]).toEqual({
      key: 'port',
      env: 'EVAL_PORT',
      flag: '--port',
      default: '0',
      allowed: 'integer in [0, 65535]',
      doc: 'gRPC port (0 = any free port)',
    });
    expect(rows.find((r) => r.key === 'token')?.default).toBe('(unset)');
    expect(rows.find((r) => r.key === 'dataRoot')).toMatchObject({
      env: 'METAPRUNE_DATA',
      default: '(required)',
    });
    const md = describeConfig(schema, { envPrefix: 'EVAL_' });
    expect(md.split('\n')[0]).toBe(
      '| Setting | Env var | Flag | Default | Allowed | Description |',
    );
    expect(md).toContain(
      '| `ackWait` | `EVAL_ACK_WAIT` | `--ack-wait` | 30s | duration (e.g. 500ms, 30s, 5m, 1h) in [1s, 1h] | ack wait |',
    );
    const secret = describeSettings(
      defineConfig({ pw: { type: 'string', default: 'hunter2', secret: true } }),
    );
    expect(secret[0]?.default).toBe('(hidden)');
  });
});
