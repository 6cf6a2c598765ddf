// The dashboard shell: routes (#/, #/op/NAME, #/flame/NAME, #/host, #/capacity, #/explore),
// the time-range picker every page shares (kept in the address so a view can be linked), auto
// refresh for recent windows, and the one fetch helper. Pages live in pages.js.

import { PAGES } from './pages.js';

export const PRESETS = ['1h', '24h', '7d', '30d'];
// Refresh period per preset (recent windows only), ms.
const REFRESH = { '1h': 5000, '24h': 30000 };

// The state in the address: #/route/arg?last=24h or ?since=…&until=…
export function parseHash() {
  const h = location.hash.replace(/^#/, '') || '/';
  const [path, query] = h.split('?');
  const decode = (x) => { try { return decodeURIComponent(x); } catch { return x; } };
  const parts = path.split('/').filter(Boolean).map(decode);
  const params = new URLSearchParams(query || '');
  return { page: parts[0] || 'overview', arg: parts.slice(1).join('/'), params };
}

export function link(page, arg, params) {
  const p = new URLSearchParams(params || current().params);
  let path = '#/' + (page === 'overview' ? '' : encodeURIComponent(page));
  if (arg) path += '/' + encodeURIComponent(arg);
  const q = p.toString();
  return q ? path + '?' + q : path;
}

export function current() { return parseHash(); }

// The window as API parameters.
export function windowParams() {
  const p = current().params;
  const out = {};
  if (p.get('since')) {
    out.since = p.get('since');
    if (p.get('until')) out.until = p.get('until');
  } else {
    out.last = p.get('last') || '24h';
  }
  return out;
}

// The window as [t0, t1] Unix ms, from the server's clock and an API answer's window.
export function windowMs(win) {
  return [Date.parse(win.since), Date.parse(win.until)];
}

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// GET /api/v1/<path>?params as JSON; a non-2xx answer throws with the server's message.
export async function api(path, params = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
  const res = await fetch(`/api/v1/${path}?${q}`, { headers: { Accept: 'application/json' } });
  const body = await res.json().catch(() => ({ error: `${res.status} ${res.statusText}` }));
  if (!res.ok) throw new ApiError(res.status, body.error || `${res.status}`);
  return body;
}

// An element with text children (strings become text nodes, never markup).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}

let info = null;
let timer = null;
let generation = 0;

function picker() {
  const box = document.getElementById('range');
  const p = current().params;
  const active = p.get('since') ? null : p.get('last') || '24h';
  box.replaceChildren();
  for (const preset of PRESETS) {
    const params = new URLSearchParams(p);
    params.delete('since');
    params.delete('until');
    params.set('last', preset);
    const { page, arg } = current();
    box.append(el('a', { href: link(page, arg, params), class: preset === active ? 'preset active' : 'preset',
      'aria-current': preset === active ? 'true' : null }, preset));
  }
  const since = el('input', { type: 'text', name: 'since', placeholder: 'since (2026-11-23T10:00:00Z or 3d)',
    value: p.get('since') || '', 'aria-label': 'custom window start', size: 22 });
  const until = el('input', { type: 'text', name: 'until', placeholder: 'until (default now)',
    value: p.get('until') || '', 'aria-label': 'custom window end', size: 16 });
  const form = el('form', { class: 'custom', onsubmit: (ev) => {
    ev.preventDefault();
    const params = new URLSearchParams(current().params);
    params.delete('last');
    if (since.value.trim()) params.set('since', since.value.trim()); else params.delete('since');
    if (until.value.trim()) params.set('until', until.value.trim()); else params.delete('until');
    const { page, arg } = current();
    location.hash = link(page, arg, params);
  } }, since, until, el('button', { type: 'submit' }, 'apply'));
  box.append(form);
  const period = active && REFRESH[active];
  const auto = el('label', { class: 'auto' },
    el('input', { type: 'checkbox', id: 'autorefresh', checked: period && !p.has('norefresh'), disabled: !period,
      onchange: (ev) => {
        const params = new URLSearchParams(current().params);
        if (ev.target.checked) params.delete('norefresh'); else params.set('norefresh', '1');
        const { page, arg } = current();
        location.hash = link(page, arg, params);
      } }),
    period ? ` refresh every ${period / 1000} s` : ' refresh (recent windows)');
  box.append(auto);
  return period && !p.has('norefresh') ? period : 0;
}

function nav() {
  const { page } = current();
  for (const a of document.querySelectorAll('nav a')) {
    const on = a.dataset.page === page || (page === 'op' && a.dataset.page === 'overview');
    a.classList.toggle('active', on);
    a.setAttribute('href', link(a.dataset.page, '', current().params));
    if (on) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
}

export function setStatus(text, isError) {
  const s = document.getElementById('status');
  s.textContent = text;
  s.classList.toggle('error', !!isError);
}

// An error in place of a page's content: the server's message, as text.
// A 404 is "nothing recorded for this" (a notice); anything else is an error.
export function errorBox(e) {
  if (e.status === 404) return el('div', { class: 'notice', role: 'status' }, el('strong', {}, 'No data. '), e.message);
  return el('div', { class: 'error-box', role: 'alert' }, el('strong', {}, 'Error. '), e.message);
}

async function render(fromTimer) {
  const mine = ++generation;
  clearTimeout(timer);
  const { page, arg } = current();
  const fn = PAGES[page];
  // A refresh leaves the picker alone (someone may be typing a custom window in it).
  const period = fromTimer ? refreshPeriod() : picker();
  nav();
  const main = document.getElementById('main');
  if (!info) {
    try {
      info = await api('info');
      document.getElementById('source').textContent = `${info.source} · ${info.db}${info.demo ? ' (demo)' : ''}`;
    } catch (e) {
      setStatus(`cannot reach the API: ${e.message}`, true);
    }
  }
  const body = el('div', { class: 'page', 'data-page': page });
  if (!fn) {
    body.append(el('p', {}, 'No such page. ', el('a', { href: '#/' }, 'Back to the overview.')));
  } else {
    try {
      await fn(body, { arg, info, fromTimer });
    } catch (e) {
      body.append(errorBox(e));
    }
  }
  if (mine !== generation) return; // a newer render started meanwhile
  main.replaceChildren(body);
  document.body.dataset.ready = String(mine);
  if (mine === 1) performance.mark('perfdash-ready'); // the first page's figures are in the DOM
  setStatus(`updated ${new Date().toISOString().slice(11, 19)} UTC`);
  // Pages with state of their own (flame graph zoom, forms) are not refreshed under the user.
  if (period && !fn?.noRefresh) timer = setTimeout(() => render(true), period);
}

// The refresh period of the current window (0: none).
function refreshPeriod() {
  const p = current().params;
  const active = p.get('since') ? null : p.get('last') || '24h';
  return active && REFRESH[active] && !p.has('norefresh') ? REFRESH[active] : 0;
}

// Only `#/…` addresses are routes; `#main` (the skip link) just moves the focus.
window.addEventListener('hashchange', () => {
  if (location.hash === '' || location.hash.startsWith('#/')) render(false);
});
window.addEventListener('DOMContentLoaded', () => render(false));
