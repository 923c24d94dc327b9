/**
 * The browser latency profiler: measures a latency lookup table on this device with
 * TensorFlow.js (wasm or cpu backend) exactly as `metaprune profile` does in Node —
 * every layer timed inside whole-network forwards of an orthogonal-array design over the
 * (Cin, Cout) grid (the engine's in-context method and its NetworkRunner, bundled from
 * libs/engine), then the table's constant fitted on random networks — validates it, and
 * uploads it through the console to the latency profiler with the device's token.
 *
 * Backends: tfjs wasm and cpu run their kernels synchronously, so the wall time around a
 * layer's ops is its latency. webgl is not offered: its kernels run asynchronously on the
 * GPU and per-layer wall times would only measure the dispatch.
 */

import {
  buildNetwork,
  type Encoding,
  fitLatencyConstant,
  iqr,
  type LatencyGrid,
  LatencyPredictor,
  type LatencyTable,
  median,
  type Network,
  type NetworkSpecInput,
  networkFingerprint,
  planLatencyTable,
  Rng,
  randomEncoding,
  tiedChannels,
  validateLatencyTable,
  widthOf,
} from '@metaprune/core';
import * as tf from '@tensorflow/tfjs';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
// The engine's in-context design and inference forward, shared with `metaprune profile`.
import {
  type ContextSample,
  contextDesign,
  designEncoding,
  rowsFromContext,
} from '../../../libs/engine/src/latency/context.js';
import { NetworkRunner } from '../../../libs/engine/src/latency/ops.js';
import type { DeviceView } from '../src/views.js';
import { consoleFetch } from './token.js';

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);
const TOKEN_KEY = (device: string) => `metaprune.token.${device}`;

setWasmPaths('/assets/');

let devices: DeviceView[] = [];
let abort: AbortController | undefined;

function log(msg: string): void {
  const el = $('log');
  el.textContent += `${new Date().toLocaleTimeString()}  ${msg}\n`;
  el.scrollTop = el.scrollHeight;
}

function setProgress(fraction: number, status: string): void {
  $('bar').style.width = `${(Math.max(0, Math.min(1, fraction)) * 100).toFixed(1)}%`;
  $('status').textContent = status;
}

async function api<T>(path: string, init?: RequestInit): Promise<T> {
  const res = await consoleFetch(path, init);
  const body = (await res.json().catch(() => ({}))) as { error?: string; field?: string };
  if (!res.ok) {
    throw new Error(
      `${body.error ?? `${res.status} ${res.statusText}`}${body.field ? ` (${body.field})` : ''}`,
    );
  }
  return body as T;
}

async function loadDevices(select?: string): Promise<void> {
  try {
    devices = (await api<{ devices: DeviceView[] }>('/api/devices')).devices;
  } catch (err) {
    log(`cannot list devices: ${(err as Error).message}`);
    devices = [];
  }
  const sel = $<HTMLSelectElement>('device');
  const current = select ?? sel.value;
  sel.innerHTML = `<option value="">— choose or register —</option>${devices
    .map((d) => `<option value="${d.id}">${d.name.replace(/</g, '&lt;')}</option>`)
    .join('')}`;
  sel.value = devices.some((d) => d.id === current) ? current : '';
  onDeviceChange();
}

function onDeviceChange(): void {
  const id = $<HTMLSelectElement>('device').value;
  if (id) input('token').value = localStorage.getItem(TOKEN_KEY(id)) ?? input('token').value;
}

async function register(): Promise<void> {
  const name = input('new-name').value.trim();
  const out = $('register-result');
  try {
    const r = await api<{ device: DeviceView; token: string }>('/api/devices', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name, description: input('new-desc').value || navigator.userAgent }),
    });
    localStorage.setItem(TOKEN_KEY(r.device.id), r.token);
    input('token').value = r.token;
    out.textContent = `registered "${r.device.name}" (${r.device.id}); its upload token is filled in and kept in this browser`;
    out.className = '';
    await loadDevices(r.device.id);
    log(`registered device ${r.device.name} (${r.device.id})`);
  } catch (err) {
    out.textContent = `registration failed: ${(err as Error).message}`;
    out.className = 'error';
  }
}

interface Settings {
  spec: NetworkSpecInput;
  backend: string;
  grid: LatencyGrid;
  repeats: number;
  warmup: number;
  fit: number;
  batch: number;
}

function settings(): Settings {
  const n = (id: string) => Number(input(id).value);
  const points = n('points');
  return {
    spec: {
      family: $<HTMLSelectElement>('family').value,
      preset: $<HTMLSelectElement>('preset').value,
      width: n('width'),
      inputSize: n('input-size'),
      inputChannels: n('input-channels'),
      numClasses: n('classes'),
      lastStageFull: input('last-stage-full').checked,
    },
    backend: $<HTMLSelectElement>('backend').value,
    grid: points >= 31 ? 'full' : { points },
    repeats: Math.max(1, n('repeats')),
    warmup: Math.max(0, n('warmup')),
    fit: Math.max(1, n('fit')),
    batch: Math.max(1, n('batch')),
  };
}

function describePlan(): void {
  try {
    const s = settings();
    const net = buildNetwork(s.spec);
    const plan = planLatencyTable(net, s.grid);
    const design = contextDesign(net, s.grid);
    $('plan').textContent =
      `${net.layers.length} layers, ${plan.rows} table rows, ${design.configs} forward configurations x ${s.warmup + s.repeats} forwards, then ${s.fit} networks for the constant`;
  } catch (err) {
    $('plan').textContent = `invalid network: ${(err as Error).message}`;
  }
}

const nextTask = () => new Promise<void>((r) => setTimeout(r, 0));

function sampleOf(net: Network, enc: Encoding, times: Float64Array[]): ContextSample[] {
  return net.layers.map((l, i) => {
    const s = times.map((t) => t[i] as number);
    const cin = widthOf(l.in, enc);
    const cout = tiedChannels(l) ? cin : widthOf(l.out, enc);
    return { layer: i, cin, cout, medianMs: median(s), spreadMs: iqr(s), repeats: s.length };
  });
}

/** Measures the whole table on the active backend (see the module comment). */
async function measure(s: Settings, signal: AbortSignal): Promise<LatencyTable> {
  const net = buildNetwork(s.spec);
  const plan = planLatencyTable(net, s.grid);
  const design = contextDesign(net, s.grid);
  const fitRuns = s.fit;
  const total = design.configs + fitRuns + 1;
  let done = 0;

  setProgress(0, 'warming up');
  {
    const runner = new NetworkRunner(
      net,
      net.genes.map(() => 30),
      s.batch,
    );
    const x = runner.input();
    const until = performance.now() + 500;
    do runner.run(x);
    while (performance.now() < until);
    x.dispose();
    runner.dispose();
  }
  done++;

  const samples: ContextSample[] = [];
  for (let k = 0; k < design.configs; k++) {
    signal.throwIfAborted();
    const enc = designEncoding(net, design, k);
    const runner = new NetworkRunner(net, enc, s.batch);
    const x = runner.input();
    try {
      for (let i = 0; i < s.warmup; i++) runner.run(x);
      const times: Float64Array[] = [];
      for (let i = 0; i < s.repeats; i++) {
        const t = new Float64Array(net.layers.length);
        runner.run(x, t);
        times.push(t);
      }
      samples.push(...sampleOf(net, enc, times));
    } finally {
      x.dispose();
      runner.dispose();
    }
    done++;
    setProgress(done / total, `forward configuration ${k + 1}/${design.configs}`);
    await nextTask();
  }
  const rows = rowsFromContext(plan, samples);
  const draft: LatencyTable = {
    network: net.spec,
    fingerprint: networkFingerprint(net),
    backend: s.backend,
    batchSize: s.batch,
    constantMs: 0,
    warmupRuns: s.warmup,
    interpolated: plan.interpolated,
    rows,
  };
  const predictor = new LatencyPredictor(net, draft);
  const rng = new Rng(1);
  const fit: { measuredMs: number; layerSumMs: number }[] = [];
  for (let i = 0; i < fitRuns; i++) {
    signal.throwIfAborted();
    const enc = randomEncoding(net.genes.length, rng);
    const runner = new NetworkRunner(net, enc, s.batch);
    const x = runner.input();
    try {
      for (let w = 0; w < 2; w++) runner.run(x);
      const wall: number[] = [];
      for (let r = 0; r < Math.max(3, s.repeats); r++) {
        const t0 = performance.now();
        runner.run(x);
        wall.push(performance.now() - t0);
      }
      fit.push({ measuredMs: median(wall), layerSumMs: predictor.layerSumMs(enc) });
    } finally {
      x.dispose();
      runner.dispose();
    }
    done++;
    setProgress(done / total, `fitting the constant: network ${i + 1}/${fitRuns}`);
    await nextTask();
  }
  const table: LatencyTable = {
    ...draft,
    constantMs: fitLatencyConstant(fit),
    measuredAt: new Date().toISOString(),
  };
  validateLatencyTable(net, table);
  return table;
}

async function run(ev: Event): Promise<void> {
  ev.preventDefault();
  const deviceId = $<HTMLSelectElement>('device').value;
  const token = input('token').value.trim();
  if (!deviceId || !token) {
    setProgress(0, 'choose a device (or register one) and give its upload token');
    return;
  }
  const s = settings();
  abort = new AbortController();
  $<HTMLButtonElement>('start').disabled = true;
  $<HTMLButtonElement>('cancel').disabled = false;
  $('result').textContent = '';
  $('result').className = '';
  try {
    setProgress(0, `starting the ${s.backend} backend`);
    if (!(await tf.setBackend(s.backend)))
      throw new Error(`the ${s.backend} backend is not available here`);
    await tf.ready();
    const flags = s.backend === 'wasm' ? ` (threads: ${crossOriginIsolated ? 'yes' : 'no'})` : '';
    log(
      `backend ${tf.getBackend()}${flags}; ${JSON.stringify(s.spec)}, grid ${JSON.stringify(s.grid)}`,
    );
    const t0 = performance.now();
    const table = await measure(s, abort.signal);
    log(
      `measured ${table.rows.length} rows in ${((performance.now() - t0) / 1000).toFixed(1)} s; constant ${table.constantMs.toFixed(3)} ms`,
    );
    setProgress(1, 'uploading');
    const r = await api<{ version: number; rowCount: number }>(
      `/api/devices/${encodeURIComponent(deviceId)}/tables`,
      {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(table),
      },
    );
    localStorage.setItem(TOKEN_KEY(deviceId), token);
    const name = devices.find((d) => d.id === deviceId)?.name ?? deviceId;
    $('result').textContent = `uploaded version ${r.version} (${r.rowCount} rows) for ${name}`;
    $('result').dataset['version'] = String(r.version);
    $('result').dataset['rows'] = String(r.rowCount);
    setProgress(1, 'done');
    log(`uploaded version ${r.version}`);
  } catch (err) {
    const msg = (err as Error).name === 'AbortError' ? 'cancelled' : (err as Error).message;
    $('result').textContent = `failed: ${msg}`;
    $('result').className = 'error';
    setProgress(0, 'failed');
    log(`failed: ${msg}`);
  } finally {
    $<HTMLButtonElement>('start').disabled = false;
    $<HTMLButtonElement>('cancel').disabled = true;
    abort = undefined;
  }
}

/** `?network=<core NetworkSpec JSON>` (the console's "measure this network" link) fills the form. */
function prefill(): void {
  const text = new URLSearchParams(location.search).get('network');
  if (!text) return;
  try {
    const spec = buildNetwork(JSON.parse(text) as NetworkSpecInput).spec;
    $<HTMLSelectElement>('family').value = spec.family;
    $<HTMLSelectElement>('preset').value = spec.preset;
    input('width').value = String(spec.width);
    input('input-size').value = String(spec.inputSize);
    input('input-channels').value = String(spec.inputChannels);
    input('classes').value = String(spec.numClasses);
    input('last-stage-full').checked = spec.lastStageFull;
  } catch (err) {
    log(`ignoring the network in the address: ${(err as Error).message}`);
  }
}

prefill();
$('form').addEventListener('submit', (ev) => void run(ev));
$('cancel').addEventListener('click', () => abort?.abort());
$('register').addEventListener('click', () => void register());
$('device').addEventListener('change', onDeviceChange);
$('form').addEventListener('input', describePlan);
describePlan();
void loadDevices();
