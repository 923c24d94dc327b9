/**
 * Progress output of a pipeline: phase headers, one live status line per phase (redrawn on
 * a terminal; elsewhere printed at most every `plainEveryMs`, and always when forced), and
 * plain lines. Everything goes to one writer (stderr by default) so stdout keeps results.
 */
import { formatSeconds } from '../ui/progress.js';

export interface ReporterOptions {
  /** Where lines go (default process.stderr). */
  write?: (text: string) => void;
  /** Redraw one line in place (default: stderr is a terminal, unless `write` is given). */
  tty?: boolean;
  /** Least time between two non-forced status lines when not a terminal (default 5 s). */
  plainEveryMs?: number;
  silent?: boolean;
}

export class Reporter {
  private readonly write: (text: string) => void;
  private readonly tty: boolean;
  private readonly plainEveryMs: number;
  private drawn = false;
  private lastPlain = 0;
  private phaseStart = Date.now();
  readonly start = Date.now();

  constructor(private readonly o: ReporterOptions = {}) {
    this.write = o.write ?? ((t) => process.stderr.write(t));
    this.tty = o.tty ?? (o.write === undefined && process.stderr.isTTY === true);
    this.plainEveryMs = o.plainEveryMs ?? 5000;
  }

  /** A phase header: `[2/5] search (0:42 elapsed)`. */
  phase(index: number, total: number, title: string): void {
    this.phaseStart = Date.now();
    this.line(`[${index}/${total}] ${title}  (${formatSeconds(this.elapsed())} elapsed)`);
  }

  /** Seconds since the reporter was made. */
  elapsed(): number {
    return (Date.now() - this.start) / 1000;
  }

  phaseElapsed(): number {
    return (Date.now() - this.phaseStart) / 1000;
  }

  line(text: string): void {
    if (this.o.silent) return;
    this.clear();
    this.write(`${text}\n`);
  }

  /** The live status line; `force` prints it even when throttled (milestones). */
  status(text: string, force = false): void {
    if (this.o.silent) return;
    if (this.tty) {
      this.write(`\r\x1b[2K${text}`);
      this.drawn = true;
      return;
    }
    const now = Date.now();
    if (!force && now - this.lastPlain < this.plainEveryMs) return;
    this.lastPlain = now;
    this.write(`${text}\n`);
  }

  /** Ends the live line (keeps what it shows). */
  clear(): void {
    if (this.tty && this.drawn) this.write('\n');
    this.drawn = false;
  }
}

/** `[#####.....]` of `frac` in [0, 1]. */
export function bar(frac: number, width = 24): string {
  const f = Math.max(0, Math.min(1, Number.isFinite(frac) ? frac : 0));
  const filled = Math.round(f * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
}

export const pct = (x: number | undefined, digits = 1): string =>
  x === undefined || !Number.isFinite(x) ? '--' : `${(100 * x).toFixed(digits)}%`;
