/**
 * SVG drawings of the console, as strings (no DOM needed, so they are unit-tested in Node):
 * the Pareto plot of a search, a candidate's per-layer widths against the uniform
 * network, and a latency table layer's (Cin, Cout) heat map.
 */
import type { CandidateView, SearchDetail, WidthsView } from '../src/views.js';

export type Axis = 'macs' | 'latency';

export function esc(s: unknown): string {
  return String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

export function fmtMacs(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(n >= 1e8 ? 0 : n >= 1e7 ? 1 : 2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(0)}K`;
  return String(Math.round(n));
}

export const pct = (x: number, digits = 1): string => `${(x * 100).toFixed(digits)}%`;

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? raw;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) {
    out.push(Number(v.toPrecision(12)));
  }
  return out;
}

function xOf(c: { macs: number; latencyMs?: number }, axis: Axis): number | undefined {
  return axis === 'macs' ? c.macs : c.latencyMs;
}

/** Whether the detail carries latencies for every Pareto candidate. */
export function hasLatency(d: SearchDetail): boolean {
  return d.pareto.length > 0 && d.pareto.every((c) => c.latencyMs !== undefined);
}

/**
 * The Pareto plot: top-1 against MACs or predicted latency. One `circle.point` per
 * Pareto candidate (data-index = its index in `pareto`), connected by the front's step
 * line; a `circle.winner` ring per budget winner; dashed budget bounds; the uniform
 * baseline (`.uniform-point` per uniform network with a known top-1, joined by a line).
 */
export function paretoSvg(d: SearchDetail, axis: Axis, selected?: readonly number[]): string {
  const W = 560;
  const H = 330;
  const m = { l: 66, r: 16, t: 14, b: 40 };
  const pts = d.pareto
    .map((c, i) => ({ c, i, x: xOf(c, axis) }))
    .filter((p): p is { c: CandidateView; i: number; x: number } => p.x !== undefined);
  const uni = d.uniform
    .filter((u) => u.top1 !== undefined)
    .map((u) => ({ u, x: axis === 'macs' ? u.macs : u.latencyMs, y: u.top1 as number }))
    .filter((p): p is { u: (typeof d.uniform)[number]; x: number; y: number } => p.x !== undefined);
  const bounds = d.budgets
    .map((b) => ({ b, x: axis === 'macs' ? b.maxMacs : b.maxLatencyMs }))
    .filter((p): p is { b: (typeof d.budgets)[number]; x: number } => p.x !== undefined);
  const xs = [...pts.map((p) => p.x), ...uni.map((p) => p.x), ...bounds.map((p) => p.x)];
  const ys = [...pts.map((p) => p.c.top1), ...uni.map((p) => p.y)];
  if (xs.length === 0) {
    return `<svg viewBox="0 0 ${W} ${H}" id="pareto" data-points="0"><text x="${W / 2}" y="${H / 2}" text-anchor="middle">no evaluated candidate yet</text></svg>`;
  }
  const xMax = Math.max(...xs) * 1.06 || 1;
  const xMin = Math.max(0, Math.min(...xs) * 0.9);
  let yLo = Math.min(...ys, 1);
  let yHi = Math.max(...ys, 0);
  if (ys.length === 0) [yLo, yHi] = [0, 1];
  const pad = Math.max(0.01, (yHi - yLo) * 0.12);
  yLo = Math.max(0, yLo - pad);
  yHi = Math.min(1, yHi + pad);
  if (yHi - yLo < 0.02) [yLo, yHi] = [Math.max(0, yLo - 0.01), Math.min(1, yHi + 0.01)];
  const sx = (x: number) => m.l + ((x - xMin) / (xMax - xMin || 1)) * (W - m.l - m.r);
  const sy = (y: number) => H - m.b - ((y - yLo) / (yHi - yLo || 1)) * (H - m.t - m.b);
  const fx = (x: number) => (axis === 'macs' ? fmtMacs(x) : `${Number(x.toPrecision(3))}`);
  const parts: string[] = [];
  parts.push('<g class="grid">');
  for (const t of ticks(yLo, yHi)) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${sy(t)}" y2="${sy(t)}"/>`);
  }
  parts.push('</g><g class="axis">');
  parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}"/>`);
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}"/>`);
  for (const t of ticks(xMin, xMax)) {
    parts.push(
      `<line x1="${sx(t)}" x2="${sx(t)}" y1="${H - m.b}" y2="${H - m.b + 4}"/><text x="${sx(t)}" y="${H - m.b + 16}" text-anchor="middle">${esc(fx(t))}</text>`,
    );
  }
  for (const t of ticks(yLo, yHi)) {
    parts.push(
      `<text x="${m.l - 6}" y="${sy(t) + 4}" text-anchor="end">${esc(pct(t, yHi - yLo < 0.1 ? 1 : 0))}</text>`,
    );
  }
  parts.push(
    `<text x="${(m.l + W - m.r) / 2}" y="${H - 6}" text-anchor="middle">${axis === 'macs' ? 'MACs per image' : `predicted latency, ms${d.latency ? ` (${esc(d.latency.backend)}, batch ${d.latency.batchSize})` : ''}`}</text>`,
  );
  parts.push(
    `<text transform="translate(13 ${(m.t + H - m.b) / 2}) rotate(-90)" text-anchor="middle">top-1 (PruningNet, held-out)</text>`,
  );
  parts.push('</g>');
  for (const { b, x } of bounds) {
    parts.push(
      `<line class="budget" x1="${sx(x)}" x2="${sx(x)}" y1="${m.t}" y2="${H - m.b}"/><text class="budget-label" x="${sx(x) - 3}" y="${m.t + 10}" text-anchor="end">${esc(b.name)}</text>`,
    );
  }
  if (uni.length > 0) {
    const sorted = [...uni].sort((a, b) => a.x - b.x);
    parts.push(
      `<polyline class="uniform-line" points="${sorted.map((p) => `${sx(p.x)},${sy(p.y)}`).join(' ')}"/>`,
    );
    for (const p of sorted) {
      parts.push(
        `<rect class="uniform-point" x="${sx(p.x) - 3}" y="${sy(p.y) - 3}" width="6" height="6"><title>uniform ${p.u.scale.toFixed(2)}x: ${pct(p.y, 2)} at ${esc(fx(p.x))}</title></rect>`,
      );
    }
  }
  // where the uniform networks of about 1/4, 1/2, 3/4 and full width sit on the x axis
  for (const u of d.uniform) {
    const x = axis === 'macs' ? u.macs : u.latencyMs;
    if (x === undefined || ![5, 13, 21, 30].includes(u.scaleId) || x < xMin || x > xMax) continue;
    const px = sx(x);
    parts.push(
      `<path class="uniform-mark" d="M${px},${H - m.b} l-4,-7 h8 z"><title>uniform ${u.scale.toFixed(2)}x: ${esc(fx(x))}</title></path><text class="uniform-mark-label" x="${px}" y="${H - m.b - 9}" text-anchor="middle">${u.scale.toFixed(2)}x</text>`,
    );
  }
  const sorted = [...pts].sort((a, b) => a.x - b.x);
  if (sorted.length > 1) {
    let path = `M${sx(sorted[0]!.x)},${sy(sorted[0]!.c.top1)}`;
    for (const p of sorted.slice(1)) path += ` H${sx(p.x)} V${sy(p.c.top1)}`;
    parts.push(`<path class="front" d="${path}"/>`);
  }
  const key = (g: readonly number[]) => g.join(',');
  const sel = selected ? key(selected) : '';
  for (const p of pts) {
    const isSel = sel !== '' && key(p.c.genes) === sel;
    parts.push(
      `<circle class="point${isSel ? ' selected' : ''}" data-index="${p.i}" cx="${sx(p.x)}" cy="${sy(p.c.top1)}" r="5"><title>top-1 ${pct(p.c.top1, 2)}, ${fmtMacs(p.c.macs)} MACs${p.c.latencyMs !== undefined ? `, ${p.c.latencyMs.toFixed(3)} ms` : ''}, generation ${p.c.generation}</title></circle>`,
    );
  }
  // one ring per distinct winner, labelled with every budget it wins
  const rings = new Map<string, { c: CandidateView; budgets: number[] }>();
  for (const w of d.winners) {
    const k = key(w.candidate.genes);
    const r = rings.get(k) ?? { c: w.candidate, budgets: [] };
    r.budgets.push(w.budgetIndex);
    rings.set(k, r);
  }
  for (const { c, budgets } of rings.values()) {
    const x = xOf(c, axis);
    if (x === undefined) continue;
    const label = budgets.map((i) => d.budgets[i]?.name ?? `budget ${i + 1}`).join(', ');
    parts.push(
      `<circle class="winner" data-budgets="${budgets.join(',')}" cx="${sx(x)}" cy="${sy(c.top1)}" r="9"/><text class="winner-label" x="${sx(x) + 11}" y="${sy(c.top1) - 8}">${esc(label)}</text>`,
    );
  }
  return `<svg viewBox="0 0 ${W} ${H}" id="pareto" data-points="${pts.length}" data-axis="${axis}" role="img" aria-label="Pareto front">${parts.join('')}</svg>`;
}

/**
 * Per-layer output channels of a candidate (bars, as a fraction of the unpruned layer)
 * against the uniform network of the nearest MACs (a tick per layer). One `rect.layer-bar`
 * per layer.
 */
export function widthsSvg(w: WidthsView): string {
  const n = w.layers.length;
  const W = 560;
  const H = 230;
  const m = { l: 40, r: 10, t: 10, b: 50 };
  const bw = (W - m.l - m.r) / Math.max(1, n);
  const sy = (f: number) => H - m.b - f * (H - m.t - m.b);
  const parts: string[] = ['<g class="axis">'];
  for (const t of [0, 0.25, 0.5, 0.75, 1]) {
    parts.push(
      `<line x1="${m.l}" x2="${W - m.r}" y1="${sy(t)}" y2="${sy(t)}" stroke="#eef1f5"/><text x="${m.l - 5}" y="${sy(t) + 4}" text-anchor="end">${t * 100}%</text>`,
    );
  }
  parts.push('</g>');
  const every = Math.max(1, Math.ceil(n / 14));
  w.layers.forEach((l, i) => {
    const x = m.l + i * bw;
    const f = l.maxCout > 0 ? l.cout / l.maxCout : 0;
    const u = l.maxCout > 0 ? l.uniformCout / l.maxCout : 0;
    parts.push(
      `<rect class="layer-bg" x="${x + bw * 0.1}" y="${sy(1)}" width="${bw * 0.8}" height="${sy(0) - sy(1)}"/>`,
      `<rect class="layer-bar" data-layer="${esc(l.name)}" x="${x + bw * 0.1}" y="${sy(f)}" width="${bw * 0.8}" height="${sy(0) - sy(f)}"><title>${esc(l.name)} (${esc(l.kind)}): ${l.cout} of ${l.maxCout} channels; uniform ${w.uniform.scale.toFixed(2)}x: ${l.uniformCout}</title></rect>`,
      `<line class="uniform-tick" x1="${x}" x2="${x + bw}" y1="${sy(u)}" y2="${sy(u)}"/>`,
    );
    if (i % every === 0) {
      parts.push(
        `<text transform="translate(${x + bw / 2} ${H - m.b + 6}) rotate(55)" font-size="9">${esc(l.name)}</text>`,
      );
    }
  });
  return `<svg viewBox="0 0 ${W} ${H}" id="widths" data-layers="${n}" role="img" aria-label="Per-layer widths">${parts.join('')}</svg>`;
}

/** A (Cin, Cout) heat map of one layer's medians (ms): one `rect.cell` per grid point. */
export function heatmapSvg(g: {
  cins: number[];
  couts: number[];
  medianMs: (number | null)[][];
}): string {
  const cell = Math.max(8, Math.min(26, Math.floor(420 / Math.max(g.cins.length, g.couts.length))));
  const m = { l: 46, t: 22 };
  const W = m.l + g.couts.length * cell + 10;
  const H = m.t + g.cins.length * cell + 10;
  const vals = g.medianMs.flat().filter((v): v is number => v !== null);
  const lo = Math.min(...vals);
  const hi = Math.max(...vals);
  const colour = (v: number) => {
    const f = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    return `hsl(${220 - 200 * f} 70% ${88 - 40 * f}%)`;
  };
  const parts: string[] = [];
  g.couts.forEach((c, j) => {
    if (g.couts.length <= 12 || j % Math.ceil(g.couts.length / 12) === 0) {
      parts.push(
        `<text x="${m.l + j * cell + cell / 2}" y="${m.t - 6}" text-anchor="middle" font-size="9">${c}</text>`,
      );
    }
  });
  g.cins.forEach((c, i) => {
    if (g.cins.length <= 12 || i % Math.ceil(g.cins.length / 12) === 0) {
      parts.push(
        `<text x="${m.l - 4}" y="${m.t + i * cell + cell / 2 + 3}" text-anchor="end" font-size="9">${c}</text>`,
      );
    }
    g.couts.forEach((co, j) => {
      const v = g.medianMs[i]?.[j];
      if (v === null || v === undefined) return;
      parts.push(
        `<rect class="cell" x="${m.l + j * cell}" y="${m.t + i * cell}" width="${cell}" height="${cell}" fill="${colour(v)}"><title>cin ${c}, cout ${co}: ${v.toFixed(4)} ms</title></rect>`,
      );
    });
  });
  return `<svg viewBox="0 0 ${W} ${H}" style="max-width:${W}px" class="heatmap">${parts.join('')}<text x="2" y="12" font-size="9">cin \\ cout</text></svg>`;
}
