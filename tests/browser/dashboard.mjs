// The dashboard in a real browser (Debian's chromium, driven by playwright-core): every page
// loads with no console error, the numbers shown are perfctl's JSON, charts have drawn
// points, the flame graph search highlights a known function, and hostile operation names
// render as text. Screenshots of each page go to the directory given.
//
//   node dashboard.mjs BASE_URL EXPECTED.json SHOTS_DIR
//
// EXPECTED.json: {stats: <perfctl stats --format json>, window: {last|since|until},
//                 flame: {op, search}, hostile: [names]}
// Prints one line per check; exits 1 on the first failure with what differed.

import { createRequire } from 'module';
import { readFileSync } from 'fs';

const require = createRequire(process.env.PERFAGENT_BROWSER_MODULES + '/');
const { chromium } = require('playwright-core');

const [base, expectedFile, shots] = process.argv.slice(2);
const expected = JSON.parse(readFileSync(expectedFile, 'utf8'));
const win = new URLSearchParams(expected.window).toString();

function fail(msg) {
  console.error(`FAIL: ${msg}`);
  process.exit(1);
}
function check(cond, msg) {
  if (!cond) fail(msg);
  console.log(`ok: ${msg}`);
}
// Shown text within 0.5 % (3 significant digits) of the value.
function near(text, value) {
  const shown = parseFloat(String(text).replace(/,/g, ''));
  return Math.abs(shown - value) <= Math.max(1e-9, Math.abs(value) * 0.005 + 0.05);
}

const userData = (await import('fs')).mkdtempSync('/tmp/perfdash-chromium-');
// A fresh profile directory each run (playwright passes it as --user-data-dir).
const browser = await chromium.launchPersistentContext(userData, {
  executablePath: process.env.PERFAGENT_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1400, height: 1000 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
const page = browser.pages()[0] || await browser.newPage();
const problems = [];
// A 404 from the API is "no data for this" (a page shows it as a notice, e.g. an operation
// without CPU profiles); the browser logs every failed fetch, so those are not problems.
page.on('console', (m) => {
  if (m.type() !== 'error' && m.type() !== 'warning') return;
  if (m.text().includes('status of 404') && m.location().url.includes('/api/v1/')) return;
  problems.push(`console ${m.type()}: ${m.text()} (${m.location().url})`);
});
page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
page.on('dialog', (d) => { problems.push(`a dialog opened: ${d.message()}`); d.dismiss(); });

async function open(name, hash) {
  await page.goto(`${base}${hash}`);
  await page.waitForSelector('body[data-ready]', { timeout: 20000 });
  await page.waitForTimeout(150);
  await page.screenshot({ path: `${shots}/${name}.png`, fullPage: true });
  check(problems.length === 0, `${name}: no console errors (${problems.join('; ')})`);
  const err = await page.$('.error-box');
  check(err === null || name === 'flame-missing', `${name}: no error box${err ? ': ' + (await err.textContent()) : ''}`);
}

// Overview: every operation's row shows perfctl's numbers.
await open('overview', `#/?${win}`);
const stats = expected.stats;
for (const op of stats.ops) {
  const row = page.locator('tr[data-op]').filter({ has: page.locator('th', { hasText: op.op }) }).first();
  const opName = await page.evaluate((name) => {
    const r = [...document.querySelectorAll('tr[data-op]')].find((tr) => tr.dataset.op === name);
    return r ? r.querySelector('th').textContent : null;
  }, op.op);
  check(opName === op.op, `overview: a row for ${JSON.stringify(op.op)} shows its name as text`);
  void row;
  const cells = await page.evaluate((name) => {
    const r = [...document.querySelectorAll('tr[data-op]')].find((tr) => tr.dataset.op === name);
    return Object.fromEntries([...r.querySelectorAll('td[data-col]')].map((td) => [td.dataset.col, [td.dataset.value, td.textContent, td.className]]));
  }, op.op);
  const want = { calls: op.calls, retries: op.retries, cached: op.cached_pct, batched: op.batched_pct, success: op.success_rate,
    avg: op.latency_ms?.avg, p95: op.latency_ms?.p95, p99: op.latency_ms?.p99 };
  for (const [col, v] of Object.entries(want)) {
    if (v === undefined || v === null) continue;
    check(Number(cells[col][0]) === v, `overview ${op.op} ${col}: value ${cells[col][0]} = perfctl ${v}`);
    const shown = col === 'success' ? 100 * v : v;
    check(near(cells[col][1], shown), `overview ${op.op} ${col}: shown "${cells[col][1]}" ≈ ${shown}`);
  }
  for (const v of stats.violations.filter((x) => x.op === op.op && ['p95', 'p99', 'avg'].includes(x.target))) {
    check(cells[v.target][2].includes('violated'), `overview ${op.op}: violated ${v.target} is highlighted`);
  }
}
const calls = await page.textContent('[data-kpi="calls"] .card-value');
check(near(calls, stats.overall.calls), `overview: total calls "${calls}" = ${stats.overall.calls}`);
await page.waitForSelector('[data-sparklines="drawn"]');
const sparks = await page.$$eval('svg.spark path', (p) => p.filter((x) => x.getAttribute('d').includes('L')).length);
check(sparks > 0, `overview: ${sparks} sparklines drawn`);
const injected = await page.evaluate(() => ({ pwned: window.__pwned ?? null, imgs: document.querySelectorAll('img[src="x"]').length,
  scripts: [...document.scripts].filter((s) => s.textContent.includes('__pwned')).length }));
check(injected.pwned === null && injected.imgs === 0 && injected.scripts === 0, `overview: hostile names ran nothing (${JSON.stringify(injected)})`);

// Operation pages, the hostile ones included.
for (const op of [stats.ops[0].op, ...expected.hostile]) {
  await open(op === stats.ops[0].op ? 'operation' : 'operation-hostile', `#/op/${encodeURIComponent(op)}?${win}`);
  const title = await page.textContent('h1 code');
  check(title === op, `operation: the title shows ${JSON.stringify(op)} as text`);
  const row = stats.ops.find((o) => o.op === op);
  const shownCalls = await page.textContent('[data-kpi="calls"] .card-value');
  check(near(shownCalls, row.calls), `operation ${op}: calls "${shownCalls}" = ${row.calls}`);
  const lines = await page.$$eval('svg.plot path.line', (ps) => ps.filter((p) => (p.getAttribute('d') || '').length > 0).length);
  const dots = await page.$$eval('svg.plot circle.line', (c) => c.length);
  check(lines + dots > 0, `operation ${op}: charts drew ${lines} lines, ${dots} single points`);
  const pwned = await page.evaluate(() => window.__pwned ?? null);
  check(pwned === null, `operation ${op}: nothing injected ran`);
}

// Flame graph: search highlights the known function; zoom and reset work.
await open('flamegraph', `#/flame/${encodeURIComponent(expected.flame.op)}?${win}`);
const frames = await page.$$eval('svg.flame g.frame', (g) => g.length);
check(frames > 3, `flame graph: ${frames} frames drawn`);
await page.fill('#flame-search', expected.flame.search);
await page.waitForTimeout(100);
const matched = await page.$$eval('svg.flame rect.match', (r) => r.length);
const status = await page.textContent('#flame-status');
check(matched > 0 && status.includes('matches'), `flame graph: searching "${expected.flame.search}" highlights ${matched} frames (${status})`);
await page.screenshot({ path: `${shots}/flamegraph-search.png`, fullPage: true });
const target = page.locator('svg.flame g.frame:not(.ancestor)').filter({ hasText: expected.flame.zoom }).first();
await target.click();
const zoomed = await page.textContent('#flame-status');
check(zoomed.includes('zoomed into'), `flame graph: a click zooms (${zoomed})`);
await page.click('#flame-reset');
check(!(await page.textContent('#flame-status')).includes('zoomed'), 'flame graph: reset returns to the root');
await page.check('#flame-icicle');
await page.waitForSelector('body[data-ready]');
await page.waitForFunction(() => location.hash.includes('icicle=1'));
await page.waitForTimeout(300);
check((await page.$$eval('svg.flame g.frame', (g) => g.length)) > 3, 'flame graph: the icicle view draws');

// Objectives: one row per objective, the same as perfctl slo.
await open('slo', `#/slo?window=1d&${win}`);
const sloRows = await page.$$eval('table.slo tbody tr', (r) => r.length);
check(sloRows === expected.slo.objectives.length, `slo: ${sloRows} objectives shown, perfctl slo has ${expected.slo.objectives.length}`);
for (const o of expected.slo.objectives.slice(0, 4)) {
  const shown = await page.evaluate(([op, kind]) => {
    const r = [...document.querySelectorAll('table.slo tbody tr')].find((tr) => tr.dataset.op === op && tr.dataset.kind === kind);
    return r ? [...r.querySelectorAll('td[data-value]')].map((td) => td.dataset.value) : null;
  }, [o.op, o.kind]);
  check(shown && Number(shown[0]) === o.sli && Number(shown[1]) === o.calls, `slo ${o.op} ${o.kind}: SLI ${shown?.[0]} = ${o.sli}`);
}

// Host, capacity, explorer.
await open('host', `#/host?${win}`);
const hostLines = await page.$$eval('svg.plot path.line', (ps) => ps.filter((p) => (p.getAttribute('d') || '').includes('L')).length);
check(hostLines > 0, `host: ${hostLines} series drawn`);
await open('capacity', `#/capacity?${win}`);
const img = await page.$eval('img.capacity-chart', (i) => ({ w: i.naturalWidth, ok: i.complete }));
check(img.ok && img.w > 0, `capacity: the chart image loaded (${img.w} px wide)`);
await open('explorer', `#/explore?${win}&selector=op.duration&agg=p95&merge=op&step=1h`);
const exLines = await page.$$eval('svg.plot path.line', (ps) => ps.filter((p) => (p.getAttribute('d') || '').includes('L')).length);
check(exLines > 0, `explorer: ${exLines} series drawn`);

await browser.close();
console.log('all dashboard checks passed');
