// Time-series charts as SVG: axes with round ticks, dates, units, a legend, and the values
// under the pointer. No library: a few hundred lines we can read, and nothing to fetch.
// Every text goes through textContent (never markup).

const NS = 'http://www.w3.org/2000/svg';
// Okabe–Ito: told apart with any colour vision; lines also differ in dash pattern.
export const COLORS = ['#0072B2', '#E69F00', '#009E73', '#D55E00', '#CC79A7', '#56B4E9', '#F0E442', '#000000'];
const DASHES = ['', '6 3', '2 2', '8 3 2 3', '4 4', '1 3', '10 2', '3 6'];

export function svg(tag, attrs = {}, text) {
  const e = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = text;
  return e;
}

// A round step for about n ticks over span: 1, 2 or 5 times a power of ten.
export function niceStep(span, n) {
  if (!(span > 0) || !isFinite(span)) return 1;
  const raw = span / n;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  return [1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw);
}

// The same in binary units: round steps of KiB, MiB, GiB.
export function niceBinaryStep(span, n) {
  let scale = 1;
  while (span / scale >= 1024 * 2 && scale < 1024 ** 4) scale *= 1024;
  return niceStep(span / scale, n) * scale;
}

const BIN = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
// A value in its unit, short: 12.5 ms, 1.2 s, 3.0 GiB, 45%, 1.2k.
export function fmt(v, unit) {
  if (v === null || v === undefined || !isFinite(v)) return '–';
  const a = Math.abs(v);
  switch (unit) {
    case 's':
      if (a === 0) return '0';
      if (a < 1e-3) return (v * 1e6).toFixed(0) + ' µs';
      if (a < 1) return trim((v * 1e3).toPrecision(3)) + ' ms';
      return trim(v.toPrecision(3)) + ' s';
    case 'ms':
      return a >= 1000 ? trim((v / 1000).toPrecision(3)) + ' s' : trim(v.toPrecision(3)) + ' ms';
    case '%':
      return trim(v.toFixed(a < 10 ? 1 : 0)) + '%';
    case 'ratio':
      return trim((v * 100).toFixed(a < 0.1 ? 1 : 0)) + '%';
    case 'By':
    case 'By/s': {
      let i = 0;
      let x = v;
      while (Math.abs(x) >= 1024 && i < BIN.length - 1) { x /= 1024; i++; }
      return trim(x.toFixed(i === 0 ? 0 : 1)) + ' ' + BIN[i] + (unit === 'By/s' ? '/s' : '');
    }
    default: {
      let s;
      if (a >= 1e9) s = trim((v / 1e9).toFixed(1)) + 'G';
      else if (a >= 1e6) s = trim((v / 1e6).toFixed(1)) + 'M';
      else if (a >= 1e4) s = trim((v / 1e3).toFixed(1)) + 'k';
      else if (a >= 100 || a === 0) s = v.toFixed(0);
      else s = trim(v.toPrecision(3));
      return unit ? s + ' ' + unit : s;
    }
  }
}
function trim(s) { return s.includes('.') && !s.includes('e') ? s.replace(/\.?0+$/, '') : s; }

const pad2 = (n) => String(n).padStart(2, '0');
// A time label for an axis spanning spanMs: 14:05, 11-24 14:00, 2026-11-24.
export function timeLabel(ms, spanMs) {
  const d = new Date(ms);
  const hm = pad2(d.getUTCHours()) + ':' + pad2(d.getUTCMinutes());
  const md = pad2(d.getUTCMonth() + 1) + '-' + pad2(d.getUTCDate());
  if (spanMs <= 36 * 3600e3) return hm;
  if (spanMs <= 10 * 86400e3) return md + ' ' + hm;
  return d.getUTCFullYear() + '-' + md;
}
const TIME_STEPS = [1, 5, 10, 15, 30, 60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800,
  604800, 1209600, 2592000, 7776000].map((s) => s * 1000);

// A chart of series [{name, points: [[ms, value]…]}] over [t0, t1] in `unit`.
// opts: {title, unit, height, stacked: false, yMin, lines: [{value, label}]}.
export function lineChart(series, opts) {
  const box = document.createElement('figure');
  box.className = 'chart';
  if (opts.title) {
    const cap = document.createElement('figcaption');
    cap.textContent = opts.title;
    box.append(cap);
  }
  const W = opts.width || 640;
  const H = opts.height || 200;
  const L = 64, R = 12, T = 10, B = 24;
  const t0 = opts.t0, t1 = opts.t1;
  const all = series.flatMap((s) => s.points.map((p) => p[1])).concat((opts.lines || []).map((l) => l.value));
  let ymax = Math.max(0, ...all.filter(isFinite));
  let ymin = Math.min(opts.yMin ?? 0, ...all.filter(isFinite));
  if (ymax === ymin) ymax = ymin + 1;
  const step = opts.unit === 'By' || opts.unit === 'By/s' ? niceBinaryStep(ymax - ymin, 4) : niceStep(ymax - ymin, 4);
  ymax = Math.ceil(ymax / step) * step;
  ymin = Math.floor(ymin / step) * step;
  const x = (t) => L + ((t - t0) / Math.max(1, t1 - t0)) * (W - L - R);
  const y = (v) => T + (1 - (v - ymin) / (ymax - ymin)) * (H - T - B);
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'plot', role: 'img' });
  s.append(svg('title', {}, (opts.title || 'chart') + (opts.unit ? ` (${opts.unit})` : '')));
  for (let v = ymin; v <= ymax + step / 2; v += step) {
    s.append(svg('line', { x1: L, x2: W - R, y1: y(v), y2: y(v), class: 'grid' }));
    s.append(svg('text', { x: L - 6, y: y(v) + 4, 'text-anchor': 'end', class: 'tick' }, fmt(v, opts.unit)));
  }
  const span = t1 - t0;
  const tstep = TIME_STEPS.find((st) => span / st <= 6) || TIME_STEPS[TIME_STEPS.length - 1];
  for (let t = Math.ceil(t0 / tstep) * tstep; t <= t1; t += tstep) {
    s.append(svg('line', { x1: x(t), x2: x(t), y1: H - B, y2: H - B + 4, class: 'axis' }));
    s.append(svg('text', { x: x(t), y: H - 6, 'text-anchor': 'middle', class: 'tick' }, timeLabel(t, span)));
  }
  s.append(svg('line', { x1: L, x2: W - R, y1: H - B, y2: H - B, class: 'axis' }));
  s.append(svg('line', { x1: L, x2: L, y1: T, y2: H - B, class: 'axis' }));
  for (const l of opts.lines || []) {
    s.append(svg('line', { x1: L, x2: W - R, y1: y(l.value), y2: y(l.value), class: 'target' }));
    s.append(svg('text', { x: W - R - 4, y: y(l.value) - 4, 'text-anchor': 'end', class: 'tick target-label' }, l.label));
  }
  series.forEach((ser, i) => {
    const color = ser.color || COLORS[i % COLORS.length];
    const dash = ser.dash ?? DASHES[i % DASHES.length];
    // Break the line where steps are missing (more than 1.5 steps apart).
    const gap = (opts.stepMs || 0) * 1.5;
    let d = '';
    let prev = null;
    for (const [t, v] of ser.points) {
      if (!isFinite(v)) continue;
      d += (prev === null || (gap && t - prev > gap) ? 'M' : 'L') + x(t).toFixed(1) + ' ' + y(v).toFixed(1) + ' ';
      prev = t;
    }
    const path = svg('path', { d: d.trim(), fill: 'none', stroke: color, 'stroke-width': 1.8, class: 'line' });
    if (dash) path.setAttribute('stroke-dasharray', dash);
    s.append(path);
    if (ser.points.length === 1) {
      const [t, v] = ser.points[0];
      s.append(svg('circle', { cx: x(t), cy: y(v), r: 3, fill: color, class: 'line' }));
    }
  });
  // The values under the pointer.
  const cursor = svg('line', { y1: T, y2: H - B, class: 'cursor', visibility: 'hidden' });
  s.append(cursor);
  const tip = document.createElement('div');
  tip.className = 'tip';
  tip.hidden = true;
  s.addEventListener('pointermove', (ev) => {
    const r = s.getBoundingClientRect();
    const px = ((ev.clientX - r.left) / r.width) * W;
    const t = t0 + ((px - L) / (W - L - R)) * (t1 - t0);
    const rows = [];
    let at = null;
    series.forEach((ser) => {
      let best = null;
      for (const p of ser.points) if (best === null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
      if (best) { rows.push([ser.name, fmt(best[1], opts.unit)]); at = best[0]; }
    });
    if (at === null) return;
    cursor.setAttribute('x1', x(at));
    cursor.setAttribute('x2', x(at));
    cursor.setAttribute('visibility', 'visible');
    tip.replaceChildren();
    const head = document.createElement('div');
    head.textContent = new Date(at).toISOString().replace('.000Z', 'Z');
    tip.append(head);
    for (const [n, v] of rows) {
      const line = document.createElement('div');
      line.textContent = `${n}: ${v}`;
      tip.append(line);
    }
    tip.hidden = false;
    tip.style.left = Math.min(r.width - 180, Math.max(0, ev.clientX - r.left + 12)) + 'px';
  });
  s.addEventListener('pointerleave', () => { tip.hidden = true; cursor.setAttribute('visibility', 'hidden'); });
  const wrap = document.createElement('div');
  wrap.className = 'plot-wrap';
  wrap.append(s, tip);
  box.append(wrap);
  if (series.length > 1 || opts.legend) {
    const leg = document.createElement('ul');
    leg.className = 'legend';
    series.forEach((ser, i) => {
      const li = document.createElement('li');
      const sw = svg('svg', { width: 24, height: 10, 'aria-hidden': 'true' });
      const ln = svg('line', { x1: 0, x2: 24, y1: 5, y2: 5, stroke: ser.color || COLORS[i % COLORS.length], 'stroke-width': 2 });
      const dash = ser.dash ?? DASHES[i % DASHES.length];
      if (dash) ln.setAttribute('stroke-dasharray', dash);
      sw.append(ln);
      const label = document.createElement('span');
      label.textContent = ser.name;
      li.append(sw, label);
      leg.append(li);
    });
    box.append(leg);
  }
  if (!series.some((ser) => ser.points.length)) {
    const none = document.createElement('p');
    none.className = 'muted';
    none.textContent = 'no data in this window';
    box.append(none);
  }
  return box;
}

// A small line of values with no axes, for tables.
export function sparkline(points, t0, t1, label) {
  const W = 120, H = 24;
  const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, class: 'spark', role: 'img' });
  s.append(svg('title', {}, label));
  const vals = points.map((p) => p[1]).filter(isFinite);
  const max = Math.max(...vals, 0) || 1;
  const x = (t) => ((t - t0) / Math.max(1, t1 - t0)) * (W - 2) + 1;
  const y = (v) => H - 2 - (v / max) * (H - 4);
  const d = points.filter((p) => isFinite(p[1])).map((p, i) => (i ? 'L' : 'M') + x(p[0]).toFixed(1) + ' ' + y(p[1]).toFixed(1)).join(' ');
  if (d) s.append(svg('path', { d, fill: 'none', class: 'spark-line' }));
  return s;
}
