import { describe, expect, it } from 'vitest';
import {
  IllegalTransitionError,
  type SearchStatus,
  TERMINAL,
  TRANSITIONS,
  transition,
} from '../src/lifecycle.js';

const ALL: SearchStatus[] = ['PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED'];
// written out independently of the table: the lifecycle the API documents
const LEGAL = new Set([
  'PENDING>RUNNING',
  'PENDING>FAILED',
  'PENDING>CANCELLED',
  'RUNNING>SUCCEEDED',
  'RUNNING>FAILED',
  'RUNNING>CANCELLED',
]);

describe('search lifecycle', () => {
  it('allows exactly the documented transitions and throws on every other', () => {
    for (const from of ALL) {
      for (const to of ALL) {
        const rec = { status: from, error: '' };
        if (LEGAL.has(`${from}>${to}`)) {
          transition(rec, to);
          expect(rec.status).toBe(to);
        } else {
          expect(() => transition(rec, to)).toThrow(IllegalTransitionError);
          expect(rec.status).toBe(from);
        }
      }
    }
    expect(Object.keys(TRANSITIONS).sort()).toEqual([...ALL].sort());
  });

  it('terminal statuses are the ones without a way out', () => {
    expect([...TERMINAL].sort()).toEqual(['CANCELLED', 'FAILED', 'SUCCEEDED']);
  });

  it('stamps the end time of a terminal status and the error of FAILED', () => {
    const rec: { status: SearchStatus; error: string; endTime?: string } = {
      status: 'PENDING',
      error: '',
    };
    transition(rec, 'RUNNING');
    expect(rec.endTime).toBeUndefined();
    transition(rec, 'FAILED', { error: 'boom', endTime: '2026-01-01T00:00:00.000Z' });
    expect(rec).toEqual({ status: 'FAILED', error: 'boom', endTime: '2026-01-01T00:00:00.000Z' });
  });
});
