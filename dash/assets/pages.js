// The pages. Each takes an empty container and fills it from /api/v1 (the same JSON as
// `perfctl … --format json`); a failed fetch shows the server's message in its place.

import { api, el, link, current, windowParams, windowMs, errorBox, ApiError } from './app.js';
import { lineChart, sparkline, fmt } from './chart.js';
import { flameGraph } from './flame.js';

const OP = 'op.duration';
// A label value inside a selector: quotes and backslashes escaped.
const q = (v) => '"' + String(v).replace(/["\\]/g, '\\$&') + '"';
const opSel = (name, op) => `${name}{op=${q(op)}}`;
// Query points as [ms, value].
const pts = (s) => s.points.map(([t, v]) => [Date.parse(t), v]);
// Percentages as perfctl prints them: 98.1%, 100%, 0%, 0.02%.
const pct = (v) => {
  if (v === null || v === undefined) return '–';
  if (Number.isInteger(v)) return `${v}%`;
  return Math.abs(v) < 0.1 ? `${v.toFixed(2)}%` : `${v.toFixed(1)}%`;
};
const ratio = (v) => (v === null || v === undefined ? '–' : pct(Math.round(v * 1e8) / 1e6));
const ms = (v) => fmt(v, 'ms');
// Counts exact, with separators (fractional when weighted by a sample rate).
const count = (v) => (v === null || v === undefined ? '–'
  : Number.isInteger(v) ? v.toLocaleString('en-US') : v.toLocaleString('en-US', { maximumFractionDigits: 1 }));
// A table cell holding a number: the text shown, and the value it shows in data-value.
const num = (value, text, attrs = {}) => el('td', { class: 'num', 'data-value': value ?? '', ...attrs }, text);
// Outcome colours: ok blue, errors vermillion.
const OUTCOME_COLORS = { ok: '#0072B2', error: '#D55E00' };

// A series result keyed by its merge label's value: op.duration{op="x"} → x.
function byLabel(series) {
  const out = new Map();
  for (const s of series) {
    const m = s.series.match(/\{[^=]+="((?:[^"\\]|\\.)*)"\}$/);
    out.set(m ? m[1].replace(/\\(.)/g, '$1') : s.series, pts(s));
  }
  return out;
}

// A query, or [] when the store has nothing for it (a 404 is "no data", not a failure).
async function series(params) {
  try {
    return await api('query', { ...windowParams(), ...params });
  } catch (e) {
    if (e.status === 404) return [];
    throw e;
  }
}

function card(label, value, opts = {}) {
  return el('div', { class: 'card' + (opts.bad ? ' bad' : ''), 'data-kpi': opts.key || label },
    el('div', { class: 'card-label' }, label), el('div', { class: 'card-value' }, value),
    opts.note ? el('div', { class: 'card-note' }, opts.note) : null);
}

function table(head, rows, attrs = {}) {
  return el('table', attrs, el('thead', {}, el('tr', {}, head.map((h) => el('th', { scope: 'col' }, h)))),
    el('tbody', {}, rows));
}

function section(title, ...children) {
  return el('section', {}, el('h2', {}, title), ...children);
}

function windowLine(win) {
  return el('p', { class: 'muted window' }, `${win.since} → ${win.until}`);
}

// Which targets each op violates, as a set of "op|target".
function violated(report) {
  return new Set(report.violations.map((v) => `${v.op}|${v.target}`));
}

async function overview(body) {
  const win = windowParams();
  // The table first; the sparklines (two queries over every operation's series, the slower
  // part) fill in when they arrive.
  const sparks = Promise.all([
    series({ selector: OP, agg: 'count', merge: 'op' }),
    series({ selector: OP, agg: 'p95', merge: 'op' }),
  ]);
  sparks.catch(() => {}); // reported below, once the table is there
  const report = await api('stats', win);
  const [t0, t1] = windowMs(report.window);
  const bad = violated(report);
  const o = report.overall;
  body.append(el('h1', {}, 'Overview'), windowLine(report.window));
  body.append(el('div', { class: 'cards' },
    card('calls', count(o.calls), { key: 'calls' }),
    card('success', ratio(o.success_rate), { key: 'success', bad: report.violations.some((v) => v.target === 'error_rate') }),
    card('cached', pct(o.cached_pct), { key: 'cached' }),
    card('batched', pct(o.batched_pct), { key: 'batched' }),
    card('retries', count(o.retries), { key: 'retries' }),
    card('avg', ms(o.latency_ms?.avg), { key: 'avg' }),
    card('p95', ms(o.latency_ms?.p95), { key: 'p95', bad: report.violations.some((v) => v.target === 'p95') }),
    card('p99', ms(o.latency_ms?.p99), { key: 'p99' }),
    o.cache ? card('cache hit', ratio(o.cache.hit_rate), { key: 'cache', note: `${count(o.cache.requests)} lookups` }) : null,
    o.pool ? card('pool hit', ratio(o.pool.hit_rate), { key: 'pool', note: `${count(o.pool.acquires)} acquires` }) : null,
    report.host?.cpu_avg_pct != null ? card('host CPU', pct(report.host.cpu_avg_pct), { key: 'cpu', note: `peak ${pct(report.host.cpu_peak_pct)}` }) : null,
    report.host?.mem_avg_pct != null ? card('host memory', pct(report.host.mem_avg_pct), { key: 'mem', note: `peak ${pct(report.host.mem_peak_pct)}` }) : null));
  if (report.violations.length) {
    body.append(section('Violated targets', el('ul', { class: 'violations' }, report.violations.map((v) =>
      el('li', {}, v.target === 'circuit_open' ? `circuit ${v.op}` : v.target === 'cache_hit_rate' ? `cache ${v.op ?? ''}`
        : v.target === 'capacity' ? el('a', { href: link('capacity') }, `resource ${v.op}`)
        : v.op ? el('a', { href: link('op', v.op) }, v.op) : 'host',
        `: ${v.target} ${fmtTarget(v.value, v.unit)} (target ${fmtTarget(v.threshold, v.unit)})`)))));
  }
  const rows = report.ops.map((op) => {
    const l = op.latency_ms || {};
    const cls = (t) => (bad.has(`${op.op}|${t}`) ? 'violated' : null);
    return el('tr', { 'data-op': op.op },
      el('th', { scope: 'row' }, el('a', { href: link('op', op.op) }, op.op)),
      num(op.calls, count(op.calls), { 'data-col': 'calls' }),
      num(op.cached_pct, pct(op.cached_pct), { 'data-col': 'cached' }),
      num(op.batched_pct, pct(op.batched_pct), { 'data-col': 'batched' }),
      num(op.success_rate, ratio(op.success_rate), { 'data-col': 'success', class: ['num', cls('error_rate')].filter(Boolean).join(' ') }),
      num(op.retries, count(op.retries), { 'data-col': 'retries' }),
      num(l.avg, ms(l.avg), { 'data-col': 'avg', class: ['num', cls('avg')].filter(Boolean).join(' ') }),
      num(l.p95, ms(l.p95), { 'data-col': 'p95', class: ['num', cls('p95')].filter(Boolean).join(' ') }),
      num(l.p99, ms(l.p99), { 'data-col': 'p99', class: ['num', cls('p99')].filter(Boolean).join(' ') }),
      el('td', { 'data-spark': 'calls' }), el('td', { 'data-spark': 'p95' }));
  });
  sparks.then(([calls, p95]) => {
    const by = { calls: byLabel(calls), p95: byLabel(p95) };
    for (const tr of body.querySelectorAll('tr[data-op]')) {
      for (const td of tr.querySelectorAll('td[data-spark]')) {
        const kind = td.dataset.spark;
        td.append(sparkline(by[kind].get(tr.dataset.op) || [], t0, t1, `${kind} of ${tr.dataset.op}`));
      }
    }
    body.dataset.sparklines = 'drawn';
    performance.mark('perfdash-sparklines');
  }).catch((e) => { body.prepend(errorBox(e)); });
  body.append(section('Operations', table(['operation', 'calls', 'cached', 'batched', 'success', 'retries', 'avg', 'p95',
    'p99', 'calls over time', 'p95 over time'], rows, { class: 'ops' })));
  if (report.circuits?.length) {
    body.append(section('Circuit breakers', table(['circuit', 'opened', 'open time'], report.circuits.map((c) =>
      el('tr', {}, el('th', { scope: 'row' }, c.circuit), el('td', { class: 'num' }, count(c.opened)), el('td', { class: 'num' }, fmt(c.open_s, 's')))))));
  }
}

function fmtTarget(v, unit) {
  return unit === 'ratio' ? ratio(v) : unit === 'ms' ? ms(v) : unit === 'pct' || unit === '%' ? pct(v) : fmt(v, unit);
}

async function operation(body, { arg }) {
  const op = arg;
  if (!op) throw new ApiError(404, 'no operation named in the address: pick one on the overview');
  const win = windowParams();
  body.append(el('h1', {}, 'Operation ', el('code', {}, op)));
  const [stats, byOutcome, lat, retries, prof, flame] = await Promise.all([
    // A glob matches its own text (`*` and `?` match themselves too); the row is picked by name.
    api('stats', { ...win, op }).catch((e) => e),
    series({ selector: opSel(OP, op), agg: 'count', merge: 'outcome' }),
    Promise.all(['p50', 'p95', 'p99'].map((a) => series({ selector: opSel(OP, op), agg: a, merge: 'all' }))),
    series({ selector: opSel('op.retries', op), agg: 'sum', merge: 'all' }),
    api('profile', { ...win, op }).catch((e) => e),
    api('flamegraph', { ...win, op }).catch((e) => e),
  ]);
  if (stats instanceof Error) throw stats;
  const row = stats.ops.find((r) => r.op === op);
  if (!row) throw new ApiError(404, `no calls of ${op} in this window`);
  const [t0, t1] = windowMs(stats.window);
  const bad = violated(stats);
  body.append(windowLine(stats.window));
  const l = row.latency_ms || {};
  body.append(el('div', { class: 'cards' },
    card('calls', count(row.calls), { key: 'calls' }),
    card('errors', count(row.errors), { key: 'errors', bad: bad.has(`${op}|error_rate`) }),
    card('success', ratio(row.success_rate), { key: 'success', bad: bad.has(`${op}|error_rate`) }),
    card('cached', pct(row.cached_pct), { key: 'cached' }),
    card('batched', pct(row.batched_pct), { key: 'batched' }),
    card('retries', count(row.retries), { key: 'retries' }),
    card('p50', ms(l.p50), { key: 'p50' }),
    card('p95', ms(l.p95), { key: 'p95', bad: bad.has(`${op}|p95`) }),
    card('p99', ms(l.p99), { key: 'p99', bad: bad.has(`${op}|p99`) })));
  const step = stepOf(byOutcome);
  const outcomes = byLabel(byOutcome);
  const callSeries = [...outcomes.entries()].sort((a, b) => (a[0] === 'ok' ? -1 : b[0] === 'ok' ? 1 : 0))
    .map(([k, p]) => ({ name: k || 'calls', points: p, color: OUTCOME_COLORS[k] }));
  body.append(el('div', { class: 'grid2' },
    lineChart(callSeries, { title: 'Calls per step by outcome', unit: '', t0, t1, stepMs: step, legend: true }),
    lineChart(lat.map((s, i) => ({ name: ['p50', 'p95', 'p99'][i], points: s[0] ? pts(s[0]) : [] })),
      { title: 'Latency (percentiles of all calls per step)', unit: 's', t0, t1, stepMs: step,
        lines: stats.violations.filter((v) => v.op === op && v.unit === 'ms' && v.target.startsWith('p'))
          .map((v) => ({ value: v.threshold / 1000, label: `${v.target} target` })) }),
    lineChart([{ name: 'retries', points: retries[0] ? pts(retries[0]) : [] }], { title: 'Retries per step', unit: '', t0, t1, stepMs: step })));
  if (row.last_error) {
    body.append(section('Last error', el('p', {}, el('code', {}, row.last_error), row.last_error_at ? ` at ${row.last_error_at}` : '')));
  }
  if (prof instanceof Error) {
    body.append(section('Where the time goes', errorBox(prof)));
  } else {
    const max = Math.max(...prof.phases.map((p) => p.pct), 1);
    body.append(section('Where the time goes',
      el('p', { class: 'muted' }, `${count(prof.calls)} calls, ${fmt(prof.total_s, 's')} in all`),
      table(['phase', 'time', 'share', ''], prof.phases.map((p) => el('tr', {},
        el('th', { scope: 'row' }, p.phase), el('td', { class: 'num' }, fmt(p.seconds, 's')), el('td', { class: 'num' }, pct(p.pct)),
        el('td', {}, bar(p.pct / max)))), { class: 'phases' }),
      prof.suggestions.length ? el('h3', {}, 'Suggestions') : null,
      el('ol', { class: 'suggestions' }, prof.suggestions.map((s) => el('li', {},
        el('strong', {}, `${s.kind.replace('_', ' ')}: save ${pct(s.saving_pct)} (${fmt(s.saving_s, 's')})`),
        el('div', {}, 'Evidence: ', s.evidence), el('div', { class: 'muted' }, 'Assumes ', s.assumption)))),
      prof.notes.length ? el('ul', { class: 'muted' }, prof.notes.map((n) => el('li', {}, n))) : null));
  }
  const fl = el('div', { class: 'flame-host' });
  const flameStatus = el('p', { class: 'muted', role: 'status' });
  body.append(section('CPU flame graph', el('p', {}, el('a', { href: link('flame', op) }, 'Open the flame graph page'),
    ' (search, zoom, icicle, diff against a baseline)'), flame instanceof Error ? errorBox(flame) : fl, flameStatus));
  if (!(flame instanceof Error)) flameGraph(fl, flame, { status: (t) => { flameStatus.textContent = t; } });
}

function bar(share) {
  const b = el('span', { class: 'bar' });
  b.style.width = `${Math.round(share * 100)}%`;
  return el('span', { class: 'bar-track' }, b);
}

function stepOf(result) {
  const p = result[0]?.points;
  if (!p || p.length < 2) return 0;
  let m = Infinity;
  for (let i = 1; i < p.length; i++) m = Math.min(m, Date.parse(p[i][0]) - Date.parse(p[i - 1][0]));
  return m;
}

async function flamePage(body, { arg, info }) {
  body.append(el('h1', {}, 'Flame graph'));
  if (!arg) {
    const ops = info?.operations || [];
    body.append(el('p', {}, ops.length ? 'Pick an operation:' : 'No operation has been recorded in this store.'),
      el('ul', { class: 'op-list' }, ops.map((o) => el('li', {}, el('a', { href: link('flame', o) }, o)))));
    return;
  }
  const p = current().params;
  const win = windowParams();
  const icicle = p.get('icicle') === '1';
  const full = p.get('full') === '1';
  const diff = p.get('diff') === '1';
  let doc = await api('flamegraph', { ...win, op: arg, full_stacks: full });
  if (diff) {
    const [t0, t1] = windowMs(doc.window);
    const base = { baseline_since: new Date(t0 - (t1 - t0)).toISOString(), baseline_until: new Date(t0).toISOString() };
    doc = await api('flamegraph', { ...win, op: arg, full_stacks: full, ...base });
  }
  const toggle = (key, on) => {
    const params = new URLSearchParams(current().params);
    if (on) params.set(key, '1'); else params.delete(key);
    location.hash = link('flame', arg, params);
  };
  const host = el('div', { class: 'flame-host' });
  const status = el('p', { class: 'muted', role: 'status', id: 'flame-status' });
  const search = el('input', { type: 'search', id: 'flame-search', placeholder: 'search frames (e.g. parse)',
    'aria-label': 'search frames' });
  const graph = { search: () => {}, reset: () => {} };
  search.addEventListener('input', () => graph.search(search.value));
  body.append(el('h2', {}, el('code', {}, arg)), windowLine(doc.window),
    el('div', { class: 'toolbar' }, search,
      el('button', { type: 'button', id: 'flame-reset', onclick: () => { search.value = ''; graph.reset(); } }, 'reset zoom'),
      el('label', {}, el('input', { type: 'checkbox', id: 'flame-icicle', checked: icicle, onchange: (e) => toggle('icicle', e.target.checked) }), ' icicle'),
      el('label', {}, el('input', { type: 'checkbox', id: 'flame-full', checked: full, onchange: (e) => toggle('full', e.target.checked) }), ' full stacks'),
      el('label', {}, el('input', { type: 'checkbox', id: 'flame-diff', checked: diff, onchange: (e) => toggle('diff', e.target.checked) }),
        ' diff against the previous window (red grew, blue shrank)')),
    host, status);
  Object.assign(graph, flameGraph(host, doc, { icicle, status: (t) => { status.textContent = t; } }));
  if (diff && doc.baseline_window) {
    body.append(el('p', { class: 'muted' }, `baseline ${doc.baseline_window.since} → ${doc.baseline_window.until}, ${doc.baseline.reduce((a, s) => a + s.samples, 0)} samples`));
  }
}
flamePage.noRefresh = true;

async function host(body) {
  body.append(el('h1', {}, 'Host'));
  const specs = [
    ['CPU utilization', 'system.cpu.utilization', 'avg', 'all', 'ratio'],
    ['Memory utilization', 'system.memory.utilization', 'avg', 'all', 'ratio'],
    ['Memory used', 'system.memory.usage', 'avg', 'state', 'By'],
    ['Disk I/O', 'system.disk.io', 'rate', 'direction', 'By/s'],
    ['Network I/O', 'system.network.io', 'rate', 'direction', 'By/s'],
    ['Filesystem utilization', 'system.filesystem.utilization', 'max', 'mountpoint', 'ratio'],
  ];
  const results = await Promise.all(specs.map(([, selector, agg, merge]) => series({ selector, agg, merge })));
  const { window: w } = await api('info', windowParams());
  const [ta, tb] = windowMs(w);
  body.append(windowLine(w));
  const grid = el('div', { class: 'grid2' });
  specs.forEach(([title, , , , unit], i) => {
    const ser = results[i].map((s) => ({ name: s.series, points: pts(s) }));
    grid.append(lineChart(ser, { title, unit: unit === 'ratio' ? 'ratio' : unit, t0: ta, t1: tb, stepMs: stepOf(results[i]), yMin: 0 }));
  });
  body.append(grid);
  // Where this host's store goes (remote write), when it does.
  const rw = await api('remote_write').catch(() => []);
  if (rw.length) {
    body.append(section('Remote write', table(['endpoint', 'lag', 'last success', 'samples sent', 'retries', 'dropped', 'already held', 'last error'],
      rw.map((r) => el('tr', { 'data-endpoint': r.endpoint },
        el('th', { scope: 'row' }, r.endpoint),
        num(r.lag_s, r.lag_s == null ? '–' : r.lag_s < 120 ? `${r.lag_s.toFixed(0)} s` : duration(r.lag_s)),
        el('td', {}, r.last_success ?? 'never'),
        num(r.samples_sent, count(r.samples_sent)), num(r.retried, count(r.retried)),
        el('td', { class: r.dropped > 0 ? 'num violated' : 'num' }, count(r.dropped)),
        num(r.duplicates, count(r.duplicates)),
        el('td', { class: r.last_error ? 'violated' : '' }, r.last_error ?? ''))))));
  }
}

// Capacity units as chart.js formats them.
const UNITS = { bytes: 'By', 'bytes/s': 'By/s' };

async function capacity(body) {
  const p = current().params;
  const params = { growth: p.get('growth') || '0.3', months: p.get('months') || '12', target: p.get('target') || '0.7' };
  body.append(el('h1', {}, 'Capacity'));
  const inputs = {
    growth: el('input', { name: 'growth', value: params.growth, size: 6, 'aria-label': 'annual growth (0.3, 30% or auto)' }),
    months: el('input', { name: 'months', value: params.months, size: 4, 'aria-label': 'horizon in months' }),
    target: el('input', { name: 'target', value: params.target, size: 4, 'aria-label': 'target utilization' }),
  };
  body.append(el('form', { class: 'toolbar', onsubmit: (ev) => {
    ev.preventDefault();
    const np = new URLSearchParams(current().params);
    for (const [k, i] of Object.entries(inputs)) np.set(k, i.value.trim());
    location.hash = link('capacity', '', np);
  } }, el('label', {}, 'growth ', inputs.growth), el('label', {}, 'months ', inputs.months),
  el('label', {}, 'target ', inputs.target), el('button', { type: 'submit' }, 'project')));
  const r = await api('capacity', params);
  body.append(el('p', { class: 'muted' }, `now ${r.now}; the same as perfctl capacity --growth ${params.growth} --months ${params.months} --target ${params.target}`));
  const cross = (x, c) => (c === null || c === undefined ? `not within ${r.horizon_months} months`
    : typeof c === 'string' ? c : `month ${c} (${x.projection[c - 1]?.calendar ?? ''})`);
  body.append(table(['resource', 'peak', 'at', 'now', 'growth', 'season', `${Math.round(r.target * 100)}% target`, 'full',
    `at ${r.horizon_months} months`, 'instances'], r.resources.map((x) => el('tr', { 'data-resource': x.resource },
    el('th', { scope: 'row' }, `${x.resource} (${x.unit})`),
    num(x.peak, fmt(x.peak, UNITS[x.unit] ?? x.unit)), el('td', {}, x.peak_at),
    el('td', { class: 'num' }, x.utilization_now == null ? '–' : ratio(x.utilization_now)),
    el('td', { class: 'num', title: x.growth.source }, x.growth.rate == null ? '–' : `${(x.growth.rate * 100).toFixed(0)}%/y`),
    el('td', { title: x.model }, x.seasonality ? `peaks in ${x.seasonality.peak_month}` : '–'),
    el('td', { class: x.months_to_target === 'already crossed' ? 'violated' : '' }, cross(x, x.months_to_target)),
    el('td', {}, cross(x, x.months_to_full)),
    num(x.projected_peak_at_horizon, x.projected_peak_at_horizon == null ? '–' : fmt(x.projected_peak_at_horizon, UNITS[x.unit] ?? x.unit)),
    el('td', { class: 'num' }, x.instances ?? '–'))), { class: 'capacity' }));
  for (const w of r.warnings) body.append(el('p', { class: 'warning' }, w));
  body.append(el('ul', { class: 'muted' }, r.resources.map((x) => el('li', {}, `${x.resource}: ${x.model}`))));
  const q = new URLSearchParams(params);
  body.append(el('img', { src: `/api/v1/capacity.svg?${q}`, alt: 'capacity chart: daily peaks, projected peak with its range, target and capacity per resource', class: 'capacity-chart' }));
  body.append(section('Assumptions', el('ul', { class: 'muted' }, r.assumptions.map((a) => el('li', {}, a)))));
}
capacity.noRefresh = true;

async function explore(body) {
  const p = current().params;
  const sel = p.get('selector') || '';
  const agg = p.get('agg') || 'avg';
  const merge = p.get('merge') || '';
  const step = p.get('step') || 'auto';
  body.append(el('h1', {}, 'Series explorer'));
  const list = await api('series');
  const names = [...new Set(list.map((r) => r.series.key.name))].sort();
  const selInput = el('input', { name: 'selector', value: sel, list: 'series-names', size: 48, 'aria-label': 'selector',
    placeholder: 'op.duration{op="vm.list"}' });
  const aggSel = el('select', { name: 'agg', 'aria-label': 'aggregation' },
    ['sum', 'rate', 'count', 'avg', 'min', 'max', 'last', 'p50', 'p90', 'p95', 'p99'].map((a) => el('option', { value: a, selected: a === agg }, a)));
  const mergeInput = el('input', { name: 'merge', value: merge, size: 10, 'aria-label': 'merge: empty, all, or a label',
    placeholder: 'all / op / …' });
  const stepInput = el('input', { name: 'step', value: step, size: 6, 'aria-label': 'step' });
  body.append(el('datalist', { id: 'series-names' }, names.map((n) => el('option', { value: n }))));
  body.append(el('form', { class: 'toolbar', onsubmit: (ev) => {
    ev.preventDefault();
    const np = new URLSearchParams(current().params);
    np.set('selector', selInput.value.trim());
    np.set('agg', aggSel.value);
    if (mergeInput.value.trim()) np.set('merge', mergeInput.value.trim()); else np.delete('merge');
    np.set('step', stepInput.value.trim() || 'auto');
    location.hash = link('explore', '', np);
  } }, el('label', {}, 'series ', selInput), el('label', {}, 'agg ', aggSel), el('label', {}, 'merge ', mergeInput),
  el('label', {}, 'step ', stepInput), el('button', { type: 'submit' }, 'query')));
  if (!sel) {
    body.append(el('p', { class: 'muted' }, `${list.length} series in the store. Pick a name above, e.g. `,
      el('a', { href: link('explore', '', new URLSearchParams({ ...Object.fromEntries(p), selector: OP, agg: 'p95', merge: 'op' })) }, 'op.duration p95 by op'), '.'));
    body.append(table(['series', 'points', 'newest'], list.slice(0, 200).map((r) => el('tr', {},
      el('td', {}, el('a', { href: link('explore', '', new URLSearchParams({ ...Object.fromEntries(p), selector: selectorOf(r.series.key), agg: 'avg' })) }, selectorOf(r.series.key))),
      el('td', { class: 'num' }, count(r.points)), el('td', {}, r.newest_ms ? new Date(r.newest_ms).toISOString() : '–')))));
    return;
  }
  const res = await api('query', { ...windowParams(), selector: sel, agg, merge, step });
  const unit = agg === 'count' ? '' : (list.find((r) => r.series.key.name === sel.split('{')[0])?.series.key.unit || '');
  const u = unit === '1' ? 'ratio' : unit === 's' ? 's' : unit === 'By' ? (agg === 'rate' ? 'By/s' : 'By') : '';
  const all = res.flatMap((s) => pts(s).map((x) => x[0]));
  const [t0, t1] = windowMs((await api('info', windowParams())).window);
  body.append(lineChart(res.map((s) => ({ name: s.series, points: pts(s) })), { title: `${agg} of ${sel}`, unit: u, t0, t1,
    stepMs: stepOf(res), legend: true, width: 900, height: 280 }));
  body.append(table(['series', 'steps', 'last value'], res.map((s) => el('tr', {}, el('td', {}, s.series),
    el('td', { class: 'num' }, s.points.length), el('td', { class: 'num' }, fmt(s.points.at(-1)?.[1], u))))));
}

explore.noRefresh = true; // its form would be wiped while typing

function selectorOf(key) {
  const labels = (key.labels || []).map(([k, v]) => `${k}=${q(v)}`).join(',');
  return labels ? `${key.name}{${labels}}` : key.name;
}

// `3d 8h`, `45m`.
function duration(s) {
  if (s === null || s === undefined) return '–';
  const m = Math.round(s / 60);
  if (m < 60) return `${m}m`;
  if (m < 1440) return `${Math.floor(m / 60)}h ${m % 60}m`;
  return `${Math.floor(m / 1440)}d ${Math.floor((m % 1440) / 60)}h`;
}

async function slo(body) {
  const window = current().params.get('window') || '28d';
  body.append(el('h1', {}, 'Objectives'));
  const [r, alerts] = await Promise.all([api('slo', { window }), api('alerts').catch(() => [])]);
  // Alerts the agent holds (pending or firing), by objective.
  const held = (o) => alerts.filter((a) => a.op === o.op && a.slo === o.kind);
  body.append(el('p', { class: 'muted window' }, `budget window ${window}: ${r.window.since} → ${r.window.until}; `,
    'availability from the error-rate target, latency from the p95 target (perfctl slo)'));
  const burn = (v) => (v === null || v === undefined ? '–' : v.toFixed(1));
  const firing = alerts.filter((a) => a.state === 'firing');
  if (firing.length) {
    body.append(section(`Alerts firing (${firing.length})`, el('ul', { class: 'violations' }, firing.map((a) =>
      a.slo.startsWith('target:')
        ? el('li', {}, `${a.severity}: ${a.slo.slice(7)} target: ${a.text} since ${a.since}`)
        : el('li', {}, `${a.severity}: `, el('a', { href: link('op', a.op) }, a.op), ` ${a.slo} budget burning ${a.burn.toFixed(1)}× since ${a.since}`)))));
  }
  body.append(table(['operation', 'objective', 'SLI', 'calls', 'budget left', '', 'burn 5m', '1h', '6h', '3d', 'exhausted in', 'status', 'alert'],
    r.objectives.map((o) => el('tr', { 'data-op': o.op, 'data-kind': o.kind },
      el('th', { scope: 'row' }, el('a', { href: link('op', o.op) }, o.op)),
      el('td', {}, `${o.kind} ${pct(o.objective * 100)} ${o.good_means}`),
      num(o.sli, o.sli == null ? '–' : `${(o.sli * 100).toFixed(3)}%`),
      num(o.calls, count(o.calls)),
      num(o.budget_left, o.budget_left == null ? '–' : pct(Math.round(o.budget_left * 1000) / 10)),
      el('td', {}, bar(Math.max(0, Math.min(1, o.budget_left ?? 0)))),
      num(o.burn['5m'], burn(o.burn['5m'])), num(o.burn['1h'], burn(o.burn['1h'])),
      num(o.burn['6h'], burn(o.burn['6h'])), num(o.burn['3d'], burn(o.burn['3d'])),
      num(o.exhausted_in_s, duration(o.exhausted_in_s)),
      el('td', { class: o.status === 'met' ? '' : 'violated' }, o.status),
      el('td', { class: held(o).some((a) => a.state === 'firing') ? 'violated' : '' },
        held(o).map((a) => `${a.severity} ${a.state}`).join(', ') || '–'))), { class: 'slo' }));
  body.append(el('p', { class: 'muted' }, 'Burn rate: the bad share of calls in that span ÷ the share the objective allows ',
    '(1 spends the budget exactly over the window). Exhausted in: at the last hour\'s burn.'));
}
slo.noRefresh = false;

export const PAGES = { overview, op: operation, flame: flamePage, host, capacity, explore, slo };
