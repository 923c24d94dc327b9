/** One benchmark result line; every line carries these fields (../shared/benchmarks.md). */
export interface BenchLine {
  workload: string;
  backend: string;
  batch: number | null;
  size: number | null;
  width: number | null;
  peak_rss_mb: number;
  [key: string]: unknown;
}

export function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}
