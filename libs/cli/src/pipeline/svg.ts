/**
 * Small self-contained SVG charts for the experiment report: x/y charts (lines and/or
 * markers, optional y = x diagonal) and grouped bar charts. No dependencies; the output is
 * a standalone SVG 1.1 document.
 */

export interface Series {
  name: string;
  points: readonly (readonly [number, number])[];
  color: string;
  /** Draw a polyline through the points (in the given order). Default true. */
  line?: boolean;
  /** Draw a marker per point. Default true. */
  markers?: boolean;
  /** Point labels (same length as points), drawn next to the markers. */
  labels?: readonly string[];
}

export interface XYChart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: readonly Series[];
  width?: number;
  height?: number;
  /** Draw the y = x line (for predicted-vs-measured plots). */
  diagonal?: boolean;
  /** Only integer x ticks (e.g. generations). */
  xInteger?: boolean;
  /** Format tick labels. */
  xFormat?: (v: number) => string;
  yFormat?: (v: number) => string;
}

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

export function esc(s: string): string {
  return s
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
}

const f = (v: number) => (Math.round(v * 100) / 100).toString();

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) {
    out.push(Number.parseFloat((k * step).toPrecision(12)));
  }
  return out;
}

function extent(values: number[], pad: number): [number, number] {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return [0, 1];
  let lo = Math.min(...finite);
  let hi = Math.max(...finite);
  if (hi === lo) {
    lo -= Math.abs(lo) * 0.1 || 1;
    hi += Math.abs(hi) * 0.1 || 1;
  }
  const d = (hi - lo) * pad;
  return [lo - d, hi + d];
}

function frame(w: number, h: number, title: string, body: string[]): string {
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" font-family="sans-serif" font-size="12">`,
    `<rect x="0" y="0" width="${w}" height="${h}" fill="white"/>`,
    `<text x="${w / 2}" y="20" text-anchor="middle" font-size="14" font-weight="bold">${esc(title)}</text>`,
    ...body,
    '</svg>',
    '',
  ].join('\n');
}

export function xyChart(c: XYChart): string {
  const W = c.width ?? 640;
  const H = c.height ?? 400;
  const m = { l: 64, r: 16, t: 36, b: 48 };
  const legendH = 18 * c.series.length;
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b - legendH;
  const xs = c.series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = c.series.flatMap((s) => s.points.map((p) => p[1]));
  let [x0, x1] = extent(xs, 0.05);
  let [y0, y1] = extent(ys, 0.08);
  if (c.diagonal) {
    x0 = y0 = Math.min(x0, y0);
    x1 = y1 = Math.max(x1, y1);
  }
  const X = (v: number) => m.l + ((v - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => m.t + ph - ((v - y0) / (y1 - y0)) * ph;
  const xf = c.xFormat ?? f;
  const yf = c.yFormat ?? f;
  const body: string[] = [];
  body.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  for (const t of ticks(x0, x1)) {
    if (t < x0 || t > x1 || (c.xInteger && !Number.isInteger(t))) continue;
    body.push(
      `<line x1="${f(X(t))}" y1="${m.t}" x2="${f(X(t))}" y2="${m.t + ph}" stroke="#eee"/>`,
      `<text x="${f(X(t))}" y="${m.t + ph + 16}" text-anchor="middle">${esc(xf(t))}</text>`,
    );
  }
  for (const t of ticks(y0, y1)) {
    if (t < y0 || t > y1) continue;
    body.push(
      `<line x1="${m.l}" y1="${f(Y(t))}" x2="${m.l + pw}" y2="${f(Y(t))}" stroke="#eee"/>`,
      `<text x="${m.l - 6}" y="${f(Y(t) + 4)}" text-anchor="end">${esc(yf(t))}</text>`,
    );
  }
  body.push(
    `<text x="${m.l + pw / 2}" y="${m.t + ph + 36}" text-anchor="middle">${esc(c.xLabel)}</text>`,
    `<text x="16" y="${m.t + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${m.t + ph / 2})">${esc(c.yLabel)}</text>`,
  );
  if (c.diagonal) {
    body.push(
      `<line x1="${f(X(x0))}" y1="${f(Y(x0))}" x2="${f(X(x1))}" y2="${f(Y(x1))}" stroke="#999" stroke-dasharray="4 4"/>`,
    );
  }
  c.series.forEach((s) => {
    const pts = s.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1]));
    if (s.line !== false && pts.length > 1) {
      body.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2" points="${pts.map((p) => `${f(X(p[0]))},${f(Y(p[1]))}`).join(' ')}"/>`,
      );
    }
    if (s.markers !== false) {
      pts.forEach((p, k) => {
        body.push(`<circle cx="${f(X(p[0]))}" cy="${f(Y(p[1]))}" r="4" fill="${s.color}"/>`);
        const label = s.labels?.[k];
        if (label) {
          body.push(
            `<text x="${f(X(p[0]) + 6)}" y="${f(Y(p[1]) - 6)}" font-size="10" fill="${s.color}">${esc(label)}</text>`,
          );
        }
      });
    }
  });
  c.series.forEach((s, i) => {
    const y = H - legendH + 18 * i;
    body.push(
      `<rect x="${m.l}" y="${y - 9}" width="12" height="12" fill="${s.color}"/>`,
      `<text x="${m.l + 18}" y="${y + 1}">${esc(s.name)}</text>`,
    );
  });
  return frame(W, H, c.title, body);
}

export interface BarChart {
  title: string;
  categories: readonly string[];
  series: readonly { name: string; values: readonly number[]; color: string }[];
  yLabel: string;
  yMax?: number;
  width?: number;
  height?: number;
}

/** Grouped vertical bars, one group per category (e.g. per gene: channels per method). */
export function barChart(c: BarChart): string {
  const W = c.width ?? Math.max(640, 70 + c.categories.length * (8 * c.series.length + 10));
  const H = c.height ?? 360;
  const legendH = 18 * c.series.length;
  const m = { l: 56, r: 12, t: 36, b: 84 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b - legendH;
  const all = c.series.flatMap((s) => s.values).filter(Number.isFinite);
  const top = c.yMax ?? Math.max(1e-9, ...all) * 1.05;
  const Y = (v: number) => m.t + ph - (Math.max(0, v) / top) * ph;
  const group = pw / Math.max(1, c.categories.length);
  const bw = Math.max(1, (group - 4) / Math.max(1, c.series.length));
  const body: string[] = [
    `<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`,
  ];
  for (const t of ticks(0, top)) {
    if (t > top) continue;
    body.push(
      `<line x1="${m.l}" y1="${f(Y(t))}" x2="${m.l + pw}" y2="${f(Y(t))}" stroke="#eee"/>`,
      `<text x="${m.l - 6}" y="${f(Y(t) + 4)}" text-anchor="end">${esc(f(t))}</text>`,
    );
  }
  c.categories.forEach((cat, i) => {
    const gx = m.l + i * group + 2;
    c.series.forEach((s, k) => {
      const v = s.values[i] ?? 0;
      const y = Y(v);
      body.push(
        `<rect x="${f(gx + k * bw)}" y="${f(y)}" width="${f(bw)}" height="${f(m.t + ph - y)}" fill="${s.color}"/>`,
      );
    });
    const lx = gx + group / 2;
    const ly = m.t + ph + 10;
    body.push(
      `<text x="${f(lx)}" y="${f(ly)}" font-size="10" text-anchor="end" transform="rotate(-60 ${f(lx)} ${f(ly)})">${esc(cat)}</text>`,
    );
  });
  body.push(
    `<text x="16" y="${m.t + ph / 2}" text-anchor="middle" transform="rotate(-90 16 ${m.t + ph / 2})">${esc(c.yLabel)}</text>`,
  );
  c.series.forEach((s, i) => {
    const y = H - legendH + 18 * i;
    body.push(
      `<rect x="${m.l}" y="${y - 9}" width="12" height="12" fill="${s.color}"/>`,
      `<text x="${m.l + 18}" y="${y + 1}">${esc(s.name)}</text>`,
    );
  });
  return frame(W, H, c.title, body);
}
