/**
 * The console page: renders the overview pushed by the server over Server-Sent Events
 * (searches, training jobs, queue, devices, exports), and for the selected search its
 * Pareto plot, winners and a candidate's per-layer widths, refreshed as the search runs.
 */

import type { TableView } from '../src/hub.js';
import type {
  CandidateView,
  DeviceView,
  Overview,
  SearchDetail,
  SearchSummary,
  WidthsView,
} from '../src/views.js';
import {
  type Axis,
  esc,
  fmtMacs,
  hasLatency,
  heatmapSvg,
  paretoSvg,
  pct,
  widthsSvg,
} from './plot.js';
import { consoleFetch } from './token.js';

const $ = (id: string) => document.getElementById(id) as HTMLElement;

interface State {
  overview?: Overview;
  selected?: string;
  detail?: SearchDetail;
  detailError?: string;
  axis: Axis;
  device: string;
  candidate?: number[];
  widths?: WidthsView;
  table?: TableView;
  tableLayer: number;
  exportMessage?: string;
}

const state: State = {
  axis: 'macs',
  device: '',
  tableLayer: 0,
  ...(location.hash.startsWith('#search=')
    ? { selected: decodeURIComponent(location.hash.slice(8)) }
    : {}),
};

async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await consoleFetch(path, init);
  const body = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new Error(body.error ?? `${res.status} ${res.statusText}`);
  return body as T;
}

const fmtTime = (iso?: string) => (iso ? new Date(iso).toLocaleString() : '');
function fmtEta(s: number): string {
  if (!(s > 0)) return '';
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
const bar = (f: number) =>
  `<div class="bar"><div style="width:${(Math.max(0, Math.min(1, f)) * 100).toFixed(1)}%"></div></div>`;

// --- header -----------------------------------------------------------------------------

function renderHeader(ov: Overview): void {
  $('services').innerHTML = ov.services
    .map(
      (s) =>
        `<span class="chip ${s.ok ? 'ok' : 'down'}" data-service="${esc(s.name)}" data-ok="${s.ok}" title="${esc(s.address)}${s.error ? ` — ${esc(s.error)}` : ''}">${esc(s.name)}</span>`,
    )
    .join('');
  const q = ov.queue;
  $('queue').innerHTML = q
    ? `<span>queue <b data-testid="queue-pending">${q.pending}</b></span>
       <span>in flight <b data-testid="queue-inflight">${q.inFlight}</b></span>
       <span>evaluators <b data-testid="evaluators">${q.evaluators}</b></span>
       <span>evaluations/s <b data-testid="evals-per-second">${q.evaluationsPerSecond.toFixed(2)}</b></span>`
    : '';
}

// --- searches ---------------------------------------------------------------------------

function bestCell(s: SearchSummary): string {
  return s.progress.best
    .map(
      (b) =>
        `<span title="${esc(b.budget.label)}">${esc(b.budget.name)}: ${
          b.candidate
            ? `<b>${pct(b.candidate.top1)}</b> @ ${fmtMacs(b.candidate.macs)}${b.candidate.latencyMs !== undefined ? `, ${b.candidate.latencyMs.toFixed(2)} ms` : ''}`
            : '<span class="muted">none yet</span>'
        }</span>`,
    )
    .join('');
}

function progressCell(s: SearchSummary): string {
  const p = s.progress;
  const inGen =
    p.generationSize > 0 && !s.terminal ? ` · ${p.generationDone}/${p.generationSize}` : '';
  return `${bar(p.fraction)}<small>generation ${p.generation}/${p.generations}${inGen}</small>`;
}

function renderSearches(ov: Overview): void {
  const el = $('searches');
  if (!ov.services.some((s) => s.name === 'controller')) {
    el.innerHTML = '<p class="muted">No controller configured.</p>';
    return;
  }
  if (ov.searches.length === 0) {
    el.innerHTML =
      '<p class="muted">No searches yet. Start one with <code>metaprune search</code>.</p>';
    return;
  }
  el.innerHTML = `<table><thead><tr><th>Search</th><th>State</th><th>Progress</th><th class="num">Evaluated</th><th class="num">Eval/s</th><th>Best top-1 per budget</th><th>ETA</th><th>Started</th></tr></thead><tbody>${ov.searches
    .map(
      (
        s,
      ) => `<tr class="clickable${s.id === state.selected ? ' selected' : ''}" data-testid="search-row" data-id="${esc(s.id)}" data-state="${esc(s.state)}" data-generation="${s.progress.generation}" data-evaluated="${s.progress.evaluated}" data-done="${s.progress.generationDone}">
        <td><div>${esc(s.name || s.id)}</div><small class="muted mono">${esc(s.id)}</small></td>
        <td><span class="badge ${esc(s.state)}">${esc(s.state)}</span>${s.error ? `<div class="error" title="${esc(s.error)}">error</div>` : ''}</td>
        <td class="progress-cell">${progressCell(s)}</td>
        <td class="num">${s.progress.evaluated}${s.progress.failed ? ` <span class="error">(${s.progress.failed} failed)</span>` : ''}</td>
        <td class="num" data-testid="search-rate">${s.evaluationsPerSecond.toFixed(2)}</td>
        <td class="best">${bestCell(s)}</td>
        <td>${fmtEta(s.progress.etaSeconds)}</td>
        <td><small>${esc(fmtTime(s.createTime))}</small></td></tr>`,
    )
    .join('')}</tbody></table>`;
}

// --- one search -------------------------------------------------------------------------

let detailTimer: number | undefined;
let detailLoading = false;
let detailAgain = false;

/** Reloads the selected search's detail, at most once a second. */
function refreshDetail(now = false): void {
  if (!state.selected) return;
  if (detailTimer !== undefined && !now) return;
  if (detailTimer !== undefined) clearTimeout(detailTimer);
  detailTimer = window.setTimeout(
    () => {
      detailTimer = undefined;
      void loadDetail();
    },
    now ? 0 : 1000,
  );
}

async function loadDetail(): Promise<void> {
  const id = state.selected;
  if (!id) return;
  if (detailLoading) {
    detailAgain = true;
    return;
  }
  detailLoading = true;
  try {
    const q =
      state.axis === 'latency' && state.device ? `?device=${encodeURIComponent(state.device)}` : '';
    const d = await api<SearchDetail>(`/api/searches/${encodeURIComponent(id)}${q}`);
    if (state.selected !== id) return;
    state.detail = d;
    delete state.detailError;
    if (!state.candidate) {
      const first = d.winners[0]?.candidate ?? d.pareto[d.pareto.length - 1];
      if (first) await selectCandidate(first.genes, false);
    }
  } catch (err) {
    state.detailError = (err as Error).message;
  } finally {
    detailLoading = false;
  }
  renderDetail();
  if (detailAgain) {
    detailAgain = false;
    refreshDetail();
  }
}

async function selectCandidate(genes: number[], render = true): Promise<void> {
  const id = state.selected;
  if (!id) return;
  state.candidate = genes;
  try {
    state.widths = await api<WidthsView>(
      `/api/searches/${encodeURIComponent(id)}/widths?genes=${genes.join(',')}`,
    );
  } catch (err) {
    state.detailError = (err as Error).message;
  }
  if (render) renderDetail();
}

function latencyDevices(): DeviceView[] {
  const d = state.detail;
  if (!d || !state.overview) return [];
  return state.overview.devices.filter((dev) => dev.tables.some((t) => t.network === d.network));
}

function candidateRow(label: string, c: CandidateView, budgetIndex?: number): string {
  return `<tr data-testid="winner-row" data-genes="${c.genes.join(',')}"${budgetIndex !== undefined ? ` data-budget="${budgetIndex}"` : ''}>
    <td>${esc(label)}</td><td class="num"><b>${pct(c.top1, 2)}</b></td><td class="num">${fmtMacs(c.macs)}</td><td class="num">${fmtMacs(c.params)}</td>
    <td class="num">${c.latencyMs !== undefined ? `${c.latencyMs.toFixed(3)} ms` : ''}</td><td class="num">${c.generation}</td>
    <td><span class="genes mono" title="${c.genes.join(',')}">${c.genes.join(',')}</span></td>
    <td><button data-act="widths">widths</button> <button data-act="export" data-testid="export">export</button></td></tr>`;
}

function renderDetail(): void {
  const card = $('detail-card');
  const el = $('detail');
  const d = state.detail;
  if (!state.selected) {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  if (!d || d.id !== state.selected) {
    el.innerHTML = state.detailError
      ? `<p class="error">${esc(state.detailError)}</p>`
      : '<p class="muted">loading…</p>';
    return;
  }
  const live = state.overview?.searches.find((s) => s.id === d.id);
  const devices = latencyDevices();
  const canLatency = hasLatency(d) || devices.length > 0;
  // the latency axis once the detail carries latencies (else MACs, and the error below)
  const axis: Axis = state.axis === 'latency' && hasLatency(d) ? 'latency' : 'macs';
  const profilerLink = `/profiler?network=${encodeURIComponent(JSON.stringify(d.networkSpec))}`;
  const known = d.uniform.filter((u) => u.top1 !== undefined).length;
  const budgets = d.budgets.map((b) => `${esc(b.name)} (${esc(b.label)})`).join('; ');
  el.innerHTML = `
    <div class="detail-head"><h2>${esc(d.name || d.id)}</h2><span class="badge ${esc(live?.state ?? d.state)}" data-testid="detail-state">${esc(live?.state ?? d.state)}</span>
      <span class="muted mono">${esc(d.id)}</span><button data-act="close">close</button></div>
    <div class="meta">
      <div><b>PruningNet</b> <span class="mono">${esc(d.pruningnetId)}</span> v${d.pruningnetVersion}</div>
      <div><b>Network</b> ${esc(d.network)} · ${d.geneCount} genes · full ${fmtMacs(d.fullMacs)} MACs</div>
      <div><b>Budgets</b> ${budgets}</div>
      <div><b>Evolution</b> population ${d.evolution['populationSize']}, ${d.evolution['generations']} generations, seed ${d.seed}</div>
      <div><b>Scoring</b> ${d.evaluation['recalibrationBatches']} BN batches of ${d.evaluation['batchSize']}, ${d.evaluation['validationImages'] || 'all'} held-out images</div>
      <div><b>Progress</b> generation ${live?.progress.generation ?? d.progress.generation}/${d.progress.generations}, ${live?.progress.evaluated ?? d.progress.evaluated} evaluated, ${live?.progress.memoHits ?? d.progress.memoHits} from memo, ${live?.progress.rejected ?? d.progress.rejected} rejected</div>
      ${d.error ? `<div class="error"><b>Error</b> ${esc(d.error)}</div>` : ''}
    </div>
    <div class="plots">
      <div>
        <h3>Pareto front <span class="muted" data-testid="pareto-count">(${d.pareto.length} candidates)</span></h3>
        <div class="controls">
          <label><input type="radio" name="axis" value="macs" ${state.axis === 'macs' ? 'checked' : ''}/> MACs</label>
          <label><input type="radio" name="axis" value="latency" ${state.axis === 'latency' ? 'checked' : ''} ${canLatency ? '' : 'disabled'}/> latency</label>
          <a href="${profilerLink}" data-testid="measure-link">measure this network on a device</a>
          ${devices.length > 0 ? `<select id="device-pick"><option value="">${hasLatency(d) && !state.device ? 'budget device' : 'choose a device'}</option>${devices.map((dev) => `<option value="${esc(dev.id)}" ${dev.id === state.device ? 'selected' : ''}>${esc(dev.name)}</option>`).join('')}</select>` : ''}
        </div>
        ${paretoSvg(d, axis, state.candidate)}
        <div class="legend"><span><i style="background:var(--accent)"></i>Pareto candidates</span><span><i style="border:2px solid var(--winner)"></i>winner per budget</span>
          <span><i style="background:var(--uniform);border-radius:0"></i>uniform baseline ${known > 0 ? `(${known} known)` : '(not evaluated with these settings)'}</span></div>
      </div>
      <div>
        <h3>Per-layer widths ${state.widths ? `<span class="muted">(${fmtMacs(state.widths.macs)} MACs vs uniform ${state.widths.uniform.scale.toFixed(2)}x, ${fmtMacs(state.widths.uniform.macs)})</span>` : ''}</h3>
        ${state.widths ? widthsSvg(state.widths) : '<p class="muted">select a candidate</p>'}
        <div class="legend"><span><i style="background:var(--accent);border-radius:0"></i>candidate (share of the full layer)</span><span><i style="background:var(--uniform);border-radius:0;height:3px"></i>uniform network</span></div>
      </div>
    </div>
    <h3>Winners</h3>
    <table data-testid="winners"><thead><tr><th>Budget</th><th class="num">Top-1</th><th class="num">MACs</th><th class="num">Params</th><th class="num">Latency</th><th class="num">Gen.</th><th>Encoding</th><th></th></tr></thead>
    <tbody>${d.winners.map((w) => candidateRow(d.budgets[w.budgetIndex]?.name ?? `budget ${w.budgetIndex + 1}`, w.candidate, w.budgetIndex)).join('') || '<tr><td colspan="8" class="muted">none yet</td></tr>'}</tbody></table>
    <p data-testid="export-message">${state.exportMessage ?? ''}</p>
    ${state.detailError ? `<p class="error">${esc(state.detailError)}</p>` : ''}`;
}

async function exportCandidate(genes: number[]): Promise<void> {
  const id = state.selected;
  if (!id) return;
  state.exportMessage = 'exporting…';
  renderDetail();
  try {
    const r = await api<{ path: string; downloadPath?: string; sizeBytes: number }>(
      `/api/searches/${encodeURIComponent(id)}/export`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ genes }),
      },
    );
    state.exportMessage = r.downloadPath
      ? `exported: <a data-testid="export-link" href="/exports/${r.downloadPath.split('/').map(encodeURIComponent).join('/')}.tar">${esc(r.downloadPath)}.tar</a> (${(r.sizeBytes / 1024).toFixed(0)} KiB)`
      : `exported to ${esc(r.path)}`;
  } catch (err) {
    state.exportMessage = `<span class="error">export failed: ${esc((err as Error).message)}</span>`;
  }
  renderDetail();
}

function selectSearch(id: string | undefined): void {
  if (state.selected === id) return;
  if (id) state.selected = id;
  else delete state.selected;
  delete state.detail;
  delete state.candidate;
  delete state.widths;
  delete state.exportMessage;
  history.replaceState(null, '', id ? `#search=${encodeURIComponent(id)}` : '#');
  if (state.overview) renderSearches(state.overview);
  renderDetail();
  refreshDetail(true);
}

// --- training, devices, exports ---------------------------------------------------------

function renderTraining(ov: Overview): void {
  const el = $('training');
  if (ov.training.length === 0) {
    el.innerHTML = `<p class="muted">${ov.services.some((s) => s.name === 'nats') ? 'No training jobs yet.' : 'Training jobs need the NATS URL.'}</p>`;
    return;
  }
  el.innerHTML = `<table><thead><tr><th>Job</th><th>State</th><th>Progress</th><th class="num">Loss</th><th class="num">Train acc.</th><th class="num">Val. acc.</th><th class="num">img/s</th><th>ETA</th></tr></thead><tbody>${ov.training
    .map(
      (t) => `<tr data-testid="training-row" data-id="${esc(t.jobId)}" data-state="${esc(t.state)}">
      <td><div>${esc(t.name || t.pruningnetId)}</div><small class="muted">${esc(t.network)} · ${esc(t.dataset)}${t.latestVersion ? ` · v${t.latestVersion}` : ''}</small></td>
      <td><span class="badge ${esc(t.state)}">${esc(t.state)}</span>${t.error ? `<div class="error" title="${esc(t.error)}">error</div>` : ''}</td>
      <td class="progress-cell">${bar(t.fraction)}<small>epoch ${t.epoch}/${t.epochs}${t.stepsPerEpoch ? `, step ${t.step}/${t.stepsPerEpoch}` : ''}</small></td>
      <td class="num">${t.loss.toFixed(3)}</td><td class="num">${pct(t.accuracy)}</td>
      <td class="num">${t.validationAccuracy !== undefined ? pct(t.validationAccuracy) : ''}</td>
      <td class="num">${t.imagesPerSecond.toFixed(0)}</td><td>${fmtEta(t.etaSeconds)}</td></tr>`,
    )
    .join('')}</tbody></table>`;
}

function renderDevices(ov: Overview): void {
  const el = $('devices');
  if (!ov.profilerEnabled) {
    el.innerHTML = '<p class="muted">No latency profiler configured.</p>';
    return;
  }
  if (ov.devices.length === 0) {
    el.innerHTML =
      '<p class="muted">No devices yet. Measure one in the <a href="/profiler">browser profiler</a> or with <code>metaprune profile</code>.</p>';
    return;
  }
  el.innerHTML = `<table><thead><tr><th>Device</th><th>Tables</th></tr></thead><tbody>${ov.devices
    .map(
      (d) =>
        `<tr data-testid="device-row" data-id="${esc(d.id)}" data-name="${esc(d.name)}"><td><div>${esc(d.name)}</div><small class="muted">${esc(d.description)}</small></td><td>${
          d.tables
            .map(
              (t, i) =>
                `<div data-testid="device-table">${esc(t.network)} · ${esc(t.backend)} · batch ${t.batchSize} · v${t.version} · ${t.rowCount} rows <button data-act="table" data-device="${esc(d.id)}" data-table="${i}">view</button></div>`,
            )
            .join('') || '<span class="muted">no table yet</span>'
        }</td></tr>`,
    )
    .join('')}</tbody></table>`;
}

function renderTable(): void {
  const card = $('table-card');
  const t = state.table;
  if (!t) {
    card.hidden = true;
    return;
  }
  card.hidden = false;
  const layer = t.layers[state.tableLayer] ?? t.layers[0];
  const flat = (g: (number | null)[][]) => g.flat().filter((v): v is number => v !== null);
  $('table').innerHTML =
    `<div class="detail-head"><h2>Latency table</h2><span class="muted">${esc(t.network)} · ${esc(t.backend)} · batch ${t.batchSize} · v${t.version} · ${t.rowCount} rows · constant ${t.constantMs.toFixed(3)} ms${t.interpolated ? ' · coarse grid (interpolated)' : ''} · ${esc(fmtTime(t.measureTime))}</span><button data-act="close-table">close</button></div>
    <div class="plots"><div class="scroll"><table><thead><tr><th>Layer</th><th>Kind</th><th class="num">k/s</th><th class="num">in</th><th class="num">grid</th><th class="num">min ms</th><th class="num">max ms</th></tr></thead><tbody>${t.layers
      .map((l, i) => {
        const v = flat(l.medianMs);
        return `<tr class="clickable${l === layer ? ' selected' : ''}" data-act="layer" data-layer="${i}"><td class="mono">${esc(l.layer)}</td><td>${esc(l.kind)}</td><td class="num">${l.kernel}/${l.stride}</td><td class="num">${l.inSize}</td><td class="num">${l.cins.length}x${l.couts.length}</td><td class="num">${Math.min(...v).toFixed(4)}</td><td class="num">${Math.max(...v).toFixed(4)}</td></tr>`;
      })
      .join('')}</tbody></table></div>
    <div>${layer ? `<h3 class="mono">${esc(layer.layer)}</h3>${heatmapSvg(layer)}` : ''}</div></div>`;
}

async function openTable(deviceId: string, index: number): Promise<void> {
  const dev = state.overview?.devices.find((d) => d.id === deviceId);
  const summary = dev?.tables[index];
  if (!summary) return;
  try {
    state.table = await api<TableView>(
      `/api/devices/${encodeURIComponent(deviceId)}/table?key=${encodeURIComponent(JSON.stringify(summary.key))}&version=${summary.version}`,
    );
    state.tableLayer = 0;
  } catch (err) {
    alert(`could not load the table: ${(err as Error).message}`);
  }
  renderTable();
}

function renderExports(ov: Overview): void {
  const el = $('exports');
  if (!ov.exportsEnabled) {
    el.innerHTML = '<p class="muted">No export root configured.</p>';
    return;
  }
  if (ov.exports.length === 0) {
    el.innerHTML =
      '<p class="muted">No exported models yet. Export a winner above or with the weight generator.</p>';
    return;
  }
  el.innerHTML = `<table><thead><tr><th>Model</th><th>PruningNet</th><th class="num">Size</th><th>Written</th><th>Download</th></tr></thead><tbody>${ov.exports
    .map((x) => {
      const href = `/exports/${x.path.split('/').map(encodeURIComponent).join('/')}`;
      const meta = x.metadata ?? {};
      return `<tr data-testid="export-row" data-path="${esc(x.path)}"><td class="mono">${esc(x.path)}</td><td class="mono">${esc(meta['pruningnet'] ?? '')}${meta['pruningnet_version'] !== undefined ? ` v${esc(meta['pruningnet_version'])}` : ''}</td><td class="num">${(x.sizeBytes / 1024).toFixed(0)} KiB</td><td><small>${esc(fmtTime(x.modifiedTime))}</small></td>
        <td><a href="${href}.tar" data-testid="export-tar">${esc(x.path.split('/').pop() ?? '')}.tar</a> · ${x.files.map((f) => `<a href="${href}/${encodeURIComponent(f)}">${esc(f)}</a>`).join(' · ')}</td></tr>`;
    })
    .join('')}</tbody></table>`;
}

function renderOverview(): void {
  const ov = state.overview;
  if (!ov) return;
  renderHeader(ov);
  renderSearches(ov);
  renderTraining(ov);
  renderDevices(ov);
  renderExports(ov);
}

// --- events -----------------------------------------------------------------------------

document.addEventListener('click', (ev) => {
  const target = ev.target as HTMLElement;
  const act = target.closest<HTMLElement>('[data-act]');
  if (act) {
    const a = act.dataset['act'];
    const row = act.closest<HTMLElement>('tr');
    const genes = row?.dataset['genes']?.split(',').map(Number);
    if (a === 'close') selectSearch(undefined);
    else if (a === 'widths' && genes) void selectCandidate(genes);
    else if (a === 'export' && genes) void exportCandidate(genes);
    else if (a === 'table')
      void openTable(act.dataset['device'] ?? '', Number(act.dataset['table']));
    else if (a === 'close-table') {
      delete state.table;
      renderTable();
    } else if (a === 'layer') {
      state.tableLayer = Number(act.dataset['layer']);
      renderTable();
    }
    return;
  }
  const point = target.closest<SVGElement>('circle.point');
  if (point && state.detail) {
    const c = state.detail.pareto[Number(point.dataset['index'])];
    if (c) void selectCandidate(c.genes);
    return;
  }
  const searchRow = target.closest<HTMLElement>('tr[data-testid="search-row"]');
  if (searchRow) selectSearch(searchRow.dataset['id']);
});

document.addEventListener('change', (ev) => {
  const t = ev.target as HTMLInputElement | HTMLSelectElement;
  if (t.name === 'axis') {
    state.axis = t.value as Axis;
    if (state.axis === 'latency' && !state.device && state.detail && !hasLatency(state.detail)) {
      state.device = latencyDevices()[0]?.id ?? '';
    }
    refreshDetail(true);
  } else if (t.id === 'device-pick') {
    state.device = t.value;
    refreshDetail(true);
  }
});

function connect(): void {
  const es = new EventSource('/api/events');
  const live = $('live');
  es.onopen = () => {
    live.textContent = 'live';
    live.className = 'live on';
  };
  es.onerror = () => {
    live.textContent = 'reconnecting';
    live.className = 'live off';
  };
  es.addEventListener('overview', (e) => {
    const ov = JSON.parse((e as MessageEvent<string>).data) as Overview;
    const before = state.overview?.searches.find((s) => s.id === state.selected);
    state.overview = ov;
    renderOverview();
    const after = ov.searches.find((s) => s.id === state.selected);
    if (
      after &&
      (!before ||
        before.state !== after.state ||
        before.progress.evaluated !== after.progress.evaluated ||
        before.progress.generation !== after.progress.generation)
    ) {
      refreshDetail();
    }
  });
  es.addEventListener('search', (e) => {
    const { id, summary } = JSON.parse((e as MessageEvent<string>).data) as {
      id: string;
      summary: SearchSummary;
    };
    const ov = state.overview;
    if (!ov) return;
    const i = ov.searches.findIndex((s) => s.id === id);
    if (i >= 0) ov.searches[i] = summary;
    else ov.searches.unshift(summary);
    renderSearches(ov);
    if (id === state.selected) refreshDetail();
  });
}

connect();
if (state.selected) refreshDetail(true);
