// An interactive flame graph from merged folded stacks (the JSON of /api/v1/flamegraph):
// click or Enter zooms into a frame, search highlights frames whose name matches (and says what
// share of the samples they hold), reset returns to the root, icicle puts the root on top,
// and a baseline colours each frame by how its share changed (red grew, blue shrank).
// Drawn as SVG built with textContent only: a frame called <script> is text.

import { svg } from './chart.js';

const ROW = 18;

// Frames root first, merged into a tree: {name, value, self, base, children: Map}.
export function tree(stacks, baseline) {
  const root = { name: 'all', value: 0, base: 0, children: new Map() };
  const add = (list, key) => {
    for (const st of list || []) {
      let node = root;
      node[key] += st.samples;
      for (const f of st.frames.split(';')) {
        let c = node.children.get(f);
        if (!c) { c = { name: f, value: 0, base: 0, children: new Map() }; node.children.set(f, c); }
        c[key] += st.samples;
        node = c;
      }
    }
  };
  add(stacks, 'value');
  add(baseline, 'base');
  return root;
}

function hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); }
  return (h >>> 0) / 4294967295;
}

// Warm colours by name (as flame graphs are read), or red/blue by change against a baseline.
function color(node, root, diff) {
  if (diff) {
    const now = node.value / Math.max(1, root.value);
    const before = node.base / Math.max(1, root.base);
    const d = now - before;
    const k = Math.min(1, Math.abs(d) * 8);
    if (Math.abs(d) < 0.002) return 'rgb(220,220,220)';
    const c = Math.round(230 - 150 * k);
    return d > 0 ? `rgb(240,${c},${c})` : `rgb(${c},${c},240)`;
  }
  const v = hash(node.name);
  return `rgb(${205 + Math.round(50 * v)},${Math.round(80 + 150 * (1 - v))},${Math.round(40 * v)})`;
}

// Draw into `host` (emptied). Returns {search(text), reset()}.
export function flameGraph(host, doc, opts = {}) {
  const root = tree(doc.stacks, doc.baseline);
  const diff = Array.isArray(doc.baseline);
  let focus = root;
  let term = '';
  const W = 1200;
  const status = opts.status || (() => {});

  function depthOf(n, d = 0) {
    let m = d;
    for (const c of n.children.values()) m = Math.max(m, depthOf(c, d + 1));
    return m;
  }

  function draw() {
    host.replaceChildren();
    // The path from the root to the focus stays drawn full width above it.
    const path = [];
    const find = (n, trail) => {
      if (n === focus) { path.push(...trail, n); return true; }
      for (const c of n.children.values()) if (find(c, [...trail, n])) return true;
      return false;
    };
    find(root, []);
    const depth = path.length - 1 + depthOf(focus);
    const H = (depth + 1) * ROW + 4;
    const s = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'flame', role: 'img' });
    s.append(svg('title', {}, `flame graph of ${doc.op}: ${doc.samples} samples`));
    const yOf = (d) => (opts.icicle ? d * ROW : H - (d + 1) * ROW);
    let matched = 0;
    const re = term ? term.toLowerCase() : null;
    const frame = (n, x0, w, d, isAncestor) => {
      if (w < 0.4) return;
      const g = svg('g', { class: 'frame' + (isAncestor ? ' ancestor' : ''), tabindex: w > 30 ? 0 : -1 });
      const hit = re && n !== root && n.name.toLowerCase().includes(re);
      const share = ((100 * n.value) / Math.max(1, root.value)).toFixed(2);
      let tip = `${n.name} (${n.value} samples, ${share}%)`;
      if (diff) tip += `; baseline ${((100 * n.base) / Math.max(1, root.base)).toFixed(2)}%`;
      g.append(svg('title', {}, tip));
      g.append(svg('rect', { x: x0, y: yOf(d), width: Math.max(0, w - 0.5), height: ROW - 1, rx: 2,
        fill: hit ? '#7B3FE4' : color(n, root, diff), class: hit ? 'match' : '' }));
      if (w > 24) {
        const chars = Math.floor((w - 6) / 7);
        const label = n.name.length > chars ? n.name.slice(0, Math.max(0, chars - 1)) + '…' : n.name;
        g.append(svg('text', { x: x0 + 3, y: yOf(d) + 13, class: hit ? 'match-text' : '' }, label));
      }
      const zoom = () => { focus = n; draw(); };
      g.addEventListener('click', zoom);
      g.addEventListener('keydown', (ev) => { if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); zoom(); } });
      s.append(g);
      return hit;
    };
    path.forEach((n, d) => { if (n !== focus) frame(n, 0, W, d, true); });
    const walk = (n, x0, w, d) => {
      const hit = frame(n, x0, w, d, false);
      if (hit) { matched += n.value; }
      let x = x0;
      for (const c of [...n.children.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const cw = (c.value / Math.max(1, n.value)) * w;
        if (!hit) walk(c, x, cw, d + 1);
        else walkNoCount(c, x, cw, d + 1);
        x += cw;
      }
    };
    const walkNoCount = (n, x0, w, d) => {
      frame(n, x0, w, d, false);
      let x = x0;
      for (const c of [...n.children.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const cw = (c.value / Math.max(1, n.value)) * w;
        walkNoCount(c, x, cw, d + 1);
        x += cw;
      }
    };
    walk(focus, 0, W, path.length - 1);
    // The matched share from the tree itself (frames too narrow to draw count too): the
    // samples of matching frames, not counting a match inside another.
    if (re) {
      matched = 0;
      const count = (n) => {
        if (n !== root && n.name.toLowerCase().includes(re)) { matched += n.value; return; }
        for (const c of n.children.values()) count(c);
      };
      count(focus);
    }
    host.append(s);
    const where = focus === root ? '' : ` · zoomed into ${focus.name}`;
    if (term) {
      status(`"${term}" matches ${((100 * matched) / Math.max(1, focus.value)).toFixed(1)}% of the samples shown${where}`);
    } else {
      status(`${focus.value} samples${where}`);
    }
  }
  draw();
  return {
    search(t) { term = t.trim(); draw(); },
    reset() { focus = root; term = ''; draw(); },
  };
}
