import { describe, expect, it } from 'vitest';
import { formatSeconds, ProgressBar } from '../src/ui/progress.js';

function capture(isTTY: boolean) {
  const chunks: string[] = [];
  const stream = { isTTY, write: (s: string) => chunks.push(s) } as unknown as NodeJS.WriteStream;
  return { chunks, stream };
}

describe('ProgressBar', () => {
  it('on a terminal redraws one line with count, rate and ETA', () => {
    const { chunks, stream } = capture(true);
    const bar = new ProgressBar({ label: 'train', total: 10, unit: 'img', stream });
    bar.update(5, 'loss 1.23');
    const first = chunks[0] ?? '';
    expect(first.startsWith('\r\u001b[2K')).toBe(true);
    expect(first.slice(5)).toMatch(/^train \[#{12}\.{12}\] 5\/10 .* img\/s ETA .*loss 1\.23$/);
    bar.finish();
    expect(chunks.at(-1)).toBe('\n');
  });
  it('off a terminal prints plain lines, throttled, always the last one', () => {
    const { chunks, stream } = capture(false);
    const bar = new ProgressBar({ label: 'x', total: 3, stream, plainEveryMs: 60_000 });
    bar.update(1);
    bar.update(2);
    bar.finish();
    expect(chunks).toHaveLength(2);
    expect(chunks[1]).toMatch(/3\/3/);
  });
  it('is silent when asked', () => {
    const { chunks, stream } = capture(true);
    const bar = new ProgressBar({ label: 'x', total: 3, stream, silent: true });
    bar.update(1);
    bar.finish();
    expect(chunks).toHaveLength(0);
  });
  it('formats durations', () => {
    expect(formatSeconds(75)).toBe('1:15');
    expect(formatSeconds(3725)).toBe('1h02m');
    expect(formatSeconds(Number.NaN)).toBe('--:--');
  });
});
