/**
 * End-to-end in headless Chromium (Debian's `chromium`, driven by playwright-core; no
 * browser download): the real stack (`startStack`: nats-server, weight generator,
 * controller, an evaluator), a real latency profiler and the console, in this process.
 * The console loads; a training job and a running search appear and update without a
 * reload; the Pareto plot has one point per Pareto candidate and a ring per winner; a
 * winner exports and downloads; the browser profiler measures a table with tfjs wasm and
 * uploads it to the profiler with the device token.
 *
 * CONSOLE_SCREENSHOT=docs/console.png writes the screenshot of the finished search there
 * (it is always taken; by default into the test's temporary directory).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type Stack, searchClient, startStack, trainOnStack } from '@metaprune/cli';
import { type ConsoleHandle, startConsole } from '@metaprune/console';
import { costModel } from '@metaprune/core';
import { type LatencyProfilerHandle, startLatencyProfiler } from '@metaprune/latency-profiler';
import { common, controller } from '@metaprune/proto';
import { nullLogger } from '@metaprune/runtime';
import { LatencyProfilerClient, networkFromProto } from '@metaprune/wire';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROMIUM = '/usr/bin/chromium';
const NETWORK = common.NetworkSpec.fromPartial({
  family: common.NetworkFamily.MOBILENET_V2,
  preset: common.NetworkPreset.SMALL,
  widthMultiplier: 0.25,
  inputSize: 32,
  inputChannels: 1,
  numClasses: 10,
});
const net = networkFromProto(NETWORK);
const model = costModel(net);
const full = model.macs(net.genes.map(() => 30));

describe('web console in Chromium', () => {
  let home: string;
  let stack: Stack;
  let lp: LatencyProfilerHandle;
  let web: ConsoleHandle;
  let browser: BrowserContext;
  let page: Page;
  let pruningnetId = '';
  let searchId = '';
  const pageErrors: string[] = [];

  beforeAll(async () => {
    home = mkdtempSync(join(tmpdir(), 'metaprune-console-e2e-'));
    stack = await startStack({ evaluators: 1, home, logLevel: 'warn' });
    lp = await startLatencyProfiler({ natsUrl: [stack.natsUrl], port: 0, logger: nullLogger });
    web = await startConsole({
      port: 0,
      controller: stack.controller.address,
      weightGenerator: stack.weightGenerator.address,
      latencyProfiler: lp.address,
      natsUrl: [stack.natsUrl],
      exportRoot: join(home, 'exports'),
      poll: 300,
      logger: nullLogger,
    });
    browser = await chromium.launchPersistentContext(join(home, 'chromium-profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
      viewport: { width: 1400, height: 1000 },
    });
    page = browser.pages()[0] ?? (await browser.newPage());
    page.on('pageerror', (err) => pageErrors.push(err.message));
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await web?.close();
    await lp?.shutdown();
    await stack?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  }, 60_000);

  it('loads, shows the services and a training job live', async () => {
    expect(existsSync(CHROMIUM)).toBe(true);
    await page.goto(web.url);
    await expect(page.title()).resolves.toBe('metaprune console');
    await page.waitForSelector('[data-testid="live"].on');
    await page.waitForSelector('[data-service="controller"][data-ok="true"]');
    await page.waitForSelector('[data-service="weight-generator"][data-ok="true"]');
    await page.waitForSelector('[data-service="latency-profiler"][data-ok="true"]');
    // the page must not reload: a marker survives every update
    await page.evaluate('window.marker = 42');
    const trained = trainOnStack(
      stack.weightGenerator.address,
      {
        network: NETWORK,
        dataset: 'fashion-mnist',
        epochs: 1,
        batchSize: 32,
        learningRate: 0.1,
        momentum: 0.9,
        seed: 1,
        maxStepsPerEpoch: 3,
        validationImages: 500,
      },
      { displayName: 'console-e2e' },
    );
    await page.waitForSelector('[data-testid="training-row"]', { timeout: 60_000 });
    const pn = await trained;
    pruningnetId = pn.pruningnetId;
    await page.waitForSelector(
      `[data-testid="training-row"][data-id="${pn.jobId}"][data-state="SUCCEEDED"]`,
      { timeout: 30_000 },
    );
    expect(await page.evaluate('window.marker')).toBe(42);
  }, 240_000);

  it('shows a running search and updates it live until it finishes', async () => {
    // record every state the row passes through, as the page renders it
    // (browser code as a string: this project is type-checked without the DOM library)
    await page.evaluate(`(() => {
      const seen = new Set();
      window.seen = seen;
      const look = () => {
        for (const row of document.querySelectorAll('[data-testid="search-row"]')) {
          const d = row.dataset;
          seen.add(d.state + '|' + d.generation + '|' + d.done + '|' + d.evaluated);
        }
      };
      new MutationObserver(look).observe(document.body, { subtree: true, childList: true });
    })()`);
    const client = searchClient(stack.controller.address);
    try {
      const res = await new Promise<controller.StartSearchResponse>((ok, fail) =>
        client.startSearch(
          controller.StartSearchRequest.fromPartial({
            pruningnetId,
            budgets: [
              { name: 'half', maxMacs: Math.round(full * 0.5) },
              { name: 'three-quarters', maxMacs: Math.round(full * 0.75) },
            ],
            evolution: { populationSize: 6, generations: 3 },
            evaluation: { recalibrationBatches: 4, batchSize: 32, validationImages: 128, seed: 0 },
            seed: 7,
            displayName: 'console e2e search',
          }),
          (err, r) => (err ? fail(err) : ok(r)),
        ),
      );
      searchId = res.searchId;
    } finally {
      client.close();
    }
    const row = `[data-testid="search-row"][data-id="${searchId}"]`;
    await page.waitForSelector(row, { timeout: 15_000 });
    await page.waitForSelector(`${row}[data-state="SUCCEEDED"]`, { timeout: 200_000 });
    const seen = (await page.evaluate('[...window.seen]')) as string[];
    const running = seen.filter((s) => s.startsWith('RUNNING|'));
    // it was seen running, in several distinct stages, before it succeeded
    expect(running.length).toBeGreaterThanOrEqual(3);
    expect(new Set(running.map((s) => s.split('|')[1])).size).toBeGreaterThanOrEqual(2);
    expect(await page.evaluate('window.marker')).toBe(42);
    expect(await page.textContent(`${row} [data-testid="search-rate"]`)).toBe('0.00');
  }, 240_000);

  it('the browser profiler measures a table with tfjs wasm and uploads it', async () => {
    const prof = await browser.newPage();
    prof.on('pageerror', (err) => pageErrors.push(err.message));
    // the search's network, as the console's "measure this network on a device" link gives it
    await prof.goto(`${web.url}/profiler?network=${encodeURIComponent(JSON.stringify(net.spec))}`);
    expect(await prof.evaluate('crossOriginIsolated')).toBe(true);
    expect(await prof.isChecked('[data-testid="last-stage-full"]')).toBe(net.spec.lastStageFull);
    await prof.click('#register-box summary');
    await prof.fill('[data-testid="new-device-name"]', 'e2e-chromium');
    await prof.click('[data-testid="register"]');
    await prof.waitForSelector('[data-testid="register-result"]:has-text("registered")');
    expect(await prof.inputValue('[data-testid="token"]')).not.toBe('');
    await prof.fill('[data-testid="points"]', '2');
    await prof.fill('#repeats', '2');
    await prof.fill('#fit', '2');
    await prof.click('[data-testid="start"]');
    await prof.waitForSelector('[data-testid="upload-result"][data-version="1"]', {
      timeout: 120_000,
    });
    const rows = Number(await prof.getAttribute('[data-testid="upload-result"]', 'data-rows'));
    expect(await prof.textContent('[data-testid="log"]')).toContain('backend wasm');
    await prof.close();

    // it is in the profiler, for this network, measured on wasm
    const client = new LatencyProfilerClient(lp.address);
    try {
      const dev = await client.findDevice('e2e-chromium');
      expect(dev?.tables).toHaveLength(1);
      expect(dev?.tables[0]?.key?.backend).toBe('wasm');
      expect(dev?.tables[0]?.rowCount).toBe(rows);
      const table = await client.getTable(dev!.deviceId, { network: net.spec });
      expect(table.rows.length).toBe(rows);
      expect(table.interpolated).toBe(true);
      expect(table.rows.every((r) => r.medianMs >= 0 && Number.isFinite(r.medianMs))).toBe(true);
    } finally {
      client.close();
    }
    // and the console lists it without a reload
    await page.waitForSelector(
      '[data-testid="device-row"][data-name="e2e-chromium"] [data-testid="device-table"]',
    );
  }, 180_000);

  it('draws the Pareto plot, the widths, exports a winner; screenshot', async () => {
    const client = searchClient(stack.controller.address);
    let search: controller.Search;
    try {
      search = await new Promise<controller.Search>((ok, fail) =>
        client.getSearch({ searchId }, (err, r) => (err ? fail(err) : ok(r.search!))),
      );
    } finally {
      client.close();
    }
    const front = search.paretoFront.length;
    const winners = search.progress!.best.filter((b) => b.best).length;
    // one ring per distinct winner (a candidate may win several budgets)
    const rings = new Set(search.progress!.best.map((b) => b.best?.encoding?.genes.join(','))).size;
    expect(front).toBeGreaterThan(0);
    expect(winners).toBe(2);

    await page.click(`[data-testid="search-row"][data-id="${searchId}"]`);
    await page.waitForSelector(`#pareto[data-points="${front}"]`);
    expect(await page.locator('#pareto circle.point').count()).toBe(front);
    expect(await page.locator('#pareto circle.winner').count()).toBe(rings);
    await page.waitForSelector(`#widths[data-layers="${net.layers.length}"]`);
    expect(await page.locator('#widths rect.layer-bar').count()).toBe(net.layers.length);
    expect(await page.locator('[data-testid="winner-row"]').count()).toBe(winners);

    const measure = await page.getAttribute('[data-testid="measure-link"]', 'href');
    expect(JSON.parse(new URL(measure!, web.url).searchParams.get('network')!)).toEqual(net.spec);

    // a Pareto point selects its candidate
    await page.locator('#pareto circle.point').first().click();
    await page.waitForSelector('#pareto circle.point.selected');

    // predicted latency on the browser-measured device: the same points on the other axis
    await page.check('input[name="axis"][value="latency"]');
    await page.waitForSelector(`#pareto[data-axis="latency"][data-points="${front}"]`);
    await page.check('input[name="axis"][value="macs"]');
    await page.waitForSelector(`#pareto[data-axis="macs"][data-points="${front}"]`);

    // export the first winner and download it
    await page.locator('[data-testid="winner-row"] [data-testid="export"]').first().click();
    // (ExportNetwork generates and writes the model in the weight generator: slow on a busy machine)
    const message = page.locator('[data-testid="export-message"]');
    await expect
      .poll(async () => (await message.textContent()) ?? '', { timeout: 150_000, interval: 500 })
      .toMatch(/exported|failed/);
    const text = (await message.textContent()) ?? '';
    expect(text, `${text}\n${stack.weightGenerator.logs().slice(-10).join('\n')}`).toMatch(
      /^exported: /,
    );
    const link = page.locator('[data-testid="export-link"]');
    const href = (await link.getAttribute('href'))!;
    const tar = Buffer.from(await (await fetch(`${web.url}${href}`)).arrayBuffer());
    const file = join(home, 'download.tar');
    writeFileSync(file, tar);
    const listing = execFileSync('tar', ['-tf', file], { encoding: 'utf8' });
    expect(listing).toMatch(/\/model\.json$/m);
    await page.waitForSelector('[data-testid="export-row"]');

    // (an export keeps the weight generator busy for a while: wait until it answers again)
    await page.waitForSelector('[data-service="weight-generator"][data-ok="true"]', {
      timeout: 60_000,
    });
    await page.evaluate('window.scrollTo(0, 0)');
    const shot = process.env['CONSOLE_SCREENSHOT']
      ? resolve(import.meta.dirname, '../..', process.env['CONSOLE_SCREENSHOT'])
      : join(home, 'console.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(readFileSync(shot).subarray(1, 4).toString()).toBe('PNG');
    expect(pageErrors).toEqual([]);
  }, 300_000);
});
