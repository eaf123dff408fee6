/**
 * The /ui dashboard in a real headless browser (Debian's chromium, driven by playwright-core): it loads with a
 * workspace key, shows that workspace's pools only, draws its charts, and a screenshot is written to
 * test-artifacts/dashboard.png. Under CI a missing chromium fails the test (.ci/run installs it); elsewhere it is
 * skipped with a message.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium, type Browser } from 'playwright-core';
import { ApiStack, poolBody } from '../helpers/api-stack';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
let stack: ApiStack;
let browser: Browser | undefined;

before(async () => {
  stack = await new ApiStack({ coldStartSeconds: 1 }).start();
});
after(async () => {
  await browser?.close();
  await stack?.stop();
});

test('dashboard in headless chromium: loads with a workspace key, shows its pools (not another workspace’s), charts and timelines, screenshot taken', async (t) => {
  if (!existsSync(CHROMIUM)) {
    if (process.env.CI) throw new Error(`CI needs chromium at ${CHROMIUM} (.ci/run installs Debian's chromium)`);
    t.skip(`no chromium at ${CHROMIUM}: apt-get install chromium`);
    return;
  }
  const key = await stack.workspaceKey('team-ui');
  const otherKey = await stack.workspaceKey('team-other');
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('ui-pool'), key)).status, 201);
  assert.equal((await stack.request('POST', '/v1/pools', poolBody('hidden-pool'), otherKey)).status, 201);
  const job = await stack.request('POST', '/v1/jobs', { pool: 'ui-pool', payload: { prompt: 'hello' } }, key);
  assert.equal(job.status, 202);
  await stack.until('job done', async () => {
    const j = await stack.request('GET', job.body.status_url, undefined, key);
    return j.body.status === 'completed' ? j : undefined;
  });
  // Back to zero (idle timeout 3 s), so the timeline has both marks to draw.
  await stack.until('pool at zero', async () => (await stack.request('GET', '/v1/pools/ui-pool', undefined, key)).body.nodes.length === 0);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    // This machine has no outside network: keep chromium from trying to reach it.
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const failed: string[] = [];
  page.on('pageerror', (err) => failed.push(err.message));
  await page.goto(`${stack.baseUrl}/ui#key=${encodeURIComponent(key)}`);
  await page.waitForSelector('section[data-pool="ui-pool"] canvas', { timeout: 20_000 });
  assert.match((await page.textContent('#status')) ?? '', /loaded 1 pool/);
  assert.equal(await page.locator('section[data-pool="hidden-pool"]').count(), 0, 'another workspace’s pool is not shown');
  const figures = (await page.textContent('section[data-pool="ui-pool"] .figures')) ?? '';
  assert.match(figures, /model llama-3-8b/);
  assert.match(figures, /today \$\d+\.\d+ vs always-on \$\d+\.\d+/);
  // Chart.js drew on both canvases (a canvas it never touched has no chart bound to it).
  const drawn = await page.evaluate(() =>
    // Runs in the page (this file is compiled without the DOM's types).
    ['nodes-chart', 'cost-chart', 'timeline-ui-pool'].map((id) =>
      Boolean((globalThis as unknown as { Chart: { getChart(id: string): unknown } }).Chart.getChart(id)),
    ),
  );
  assert.deepEqual(drawn, [true, true, true]);
  // The timeline fits the few minutes of activity and marks the cold start and the return to zero.
  const timeline = await page.evaluate(() => {
    const chart = (
      globalThis as unknown as {
        Chart: { getChart(id: string): { data: { datasets: Array<{ label: string; data: unknown[] }> }; options: any } };
      }
    ).Chart.getChart('timeline-ui-pool');
    return {
      marks: Object.fromEntries(chart.data.datasets.map((d) => [d.label, d.data.length])),
      axis: chart.options.scales.x.title.text as string,
      min: chart.options.scales.x.min as number,
    };
  });
  assert.equal(timeline.marks['cold start'], 1, JSON.stringify(timeline));
  assert.equal(timeline.marks['to zero'], 1, JSON.stringify(timeline));
  assert.equal(timeline.axis, 'minutes ago');
  assert.ok(timeline.min >= -3 && timeline.min <= -1, `a window fitted to a minute or two of activity, not hours: ${timeline.min}`);
  const plan = (await page.textContent('section[data-pool="ui-pool"] .plan')) ?? '';
  assert.match(plan, /keep-alive \(fixed\): idle nodes are kept 3 s, then terminated/);
  // The key left the address bar; a wrong key shows one message and no pools.
  assert.equal(new URL(page.url()).hash, '');
  mkdirSync('test-artifacts', { recursive: true });
  await page.screenshot({ path: 'test-artifacts/dashboard.png', fullPage: true });
  const stranger = await browser.newPage();
  await stranger.goto(`${stack.baseUrl}/ui#key=not-a-key`);
  await stranger.waitForFunction(
    () => {
      const page = globalThis as unknown as { document: { getElementById(id: string): { textContent: string | null } | null } };
      return (page.document.getElementById('error')?.textContent ?? '') !== '';
    },
    undefined,
    { timeout: 10_000 },
  );
  assert.equal(await stranger.locator('section[data-pool]').count(), 0);
  // One clear message, and no "no key yet" beside it.
  assert.equal(await stranger.textContent('#error'), 'this key was refused: enter a valid API key');
  assert.equal(await stranger.textContent('#status'), '');
  assert.deepEqual(failed, [], 'no script errors on the page');
});
