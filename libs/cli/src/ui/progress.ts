/**
 * A progress bar with rate and ETA on stderr. On a terminal it redraws one line; elsewhere
 * (CI, pipes) it prints a plain line at most every `plainEveryMs`, so logs stay readable.
 */
export interface ProgressOptions {
  readonly label: string;
  readonly total: number;
  readonly unit?: string;
  readonly stream?: NodeJS.WriteStream;
  readonly plainEveryMs?: number;
  /** Suppress all output (e.g. --json). */
  readonly silent?: boolean;
}

export class ProgressBar {
  private readonly start = Date.now();
  private lastPlain = 0;
  private done = 0;
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;

  constructor(private readonly o: ProgressOptions) {
    this.stream = o.stream ?? process.stderr;
    this.tty = this.stream.isTTY === true;
  }

  /** Sets the completed count (absolute) and an optional status text (loss, accuracy...). */
  update(done: number, status = ''): void {
    this.done = done;
    if (this.o.silent) return;
    const now = Date.now();
    if (!this.tty && now - this.lastPlain < (this.o.plainEveryMs ?? 5000) && done < this.o.total)
      return;
    this.lastPlain = now;
    const line = this.render(now, status);
    if (this.tty) this.stream.write(`\r\x1b[2K${line}`);
    else this.stream.write(`${line}\n`);
  }

  finish(status = ''): void {
    this.update(this.o.total, status);
    if (this.tty && !this.o.silent) this.stream.write('\n');
  }

  private render(now: number, status: string): string {
    const { total, label } = this.o;
    const frac = total > 0 ? Math.min(1, this.done / total) : 1;
    const width = 24;
    const filled = Math.round(frac * width);
    const elapsed = (now - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const eta = rate > 0 ? (total - this.done) / rate : Number.NaN;
    const unit = this.o.unit ?? 'it';
    return `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${this.done}/${total} ${rate.toFixed(rate < 10 ? 2 : 0)} ${unit}/s ETA ${formatSeconds(eta)}${status ? `  ${status}` : ''}`;
  }
}

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s)) return '--:--';
  const m = Math.floor(s / 60);
  const sec = Math.floor(s % 60);
  return m >= 60
    ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`
    : `${m}:${String(sec).padStart(2, '0')}`;
}
