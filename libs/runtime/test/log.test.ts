import { describe, expect, it } from 'vitest';
import { createLogger, isLogLevel } from '../src/index.js';

describe('createLogger', () => {
  it('writes JSON lines with level, service, msg and fields; filters by level', () => {
    const lines: string[] = [];
    const log = createLogger({
      service: 'evaluator',
      level: 'info',
      write: (l) => lines.push(l),
      now: () => new Date('2025-01-01T00:00:00Z'),
    });
    log.debug('hidden');
    log.info('job done', { job: 'j1', ms: 12 });
    log.child({ worker: 3 }).warn('slow', { n: 10n });
    expect(lines).toHaveLength(2);
    expect(lines.every((l) => l.endsWith('\n'))).toBe(true);
    expect(JSON.parse(lines[0]!)).toEqual({
      time: '2025-01-01T00:00:00.000Z',
      level: 'info',
      service: 'evaluator',
      msg: 'job done',
      job: 'j1',
      ms: 12,
    });
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 'warn', worker: 3, n: '10' });
    expect(log.isEnabled('debug')).toBe(false);
    expect(log.isEnabled('error')).toBe(true);
  });

  it('serialises errors with cause and survives circular fields', () => {
    const lines: string[] = [];
    const log = createLogger({ service: 's', write: (l) => lines.push(l) });
    const circ: Record<string, unknown> = { a: 1 };
    circ['self'] = circ;
    log.error('failed', { err: new Error('outer', { cause: new Error('inner') }), circ });
    const o = JSON.parse(lines[0]!);
    expect(o.err.message).toBe('outer');
    expect(o.err.cause.message).toBe('inner');
    expect(o.circ.self).toBe('[circular]');
    expect(isLogLevel('warn')).toBe(true);
    expect(isLogLevel('loud')).toBe(false);
  });
});
