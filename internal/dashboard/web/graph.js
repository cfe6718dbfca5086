// The job graph: a layered layout of the plan's vertices (sources on the
// left, sinks on the right, as Flink draws it) and its SVG drawing, whose
// nodes are coloured by busy and backpressured time as in Flink 1.13+.

import * as fmt from './format.js';

const SVG = 'http://www.w3.org/2000/svg';
const NODE_W = 240;
const NODE_H = 96;
const GAP_X = 90;
const GAP_Y = 36;
const PAD = 16;

function el(tag, attrs = {}, ...children) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  for (const c of children) e.append(c);
  return e;
}

// layout places vertices in layers: a vertex's layer is the longest path
// from a source to it; within a layer, vertices are ordered by the mean
// position of their inputs (a few barycentre sweeps), which keeps edges
// from crossing in the usual pipelines. It returns {nodes: Map(id ->
// {x, y}), width, height}.
export function layout(vertices, edges) {
  const ids = vertices.map((v) => v.id);
  const ins = new Map(ids.map((id) => [id, []]));
  const outs = new Map(ids.map((id) => [id, []]));
  for (const e of edges) {
    if (ins.has(e.target) && outs.has(e.source) && e.source !== e.target) {
      ins.get(e.target).push(e.source);
      outs.get(e.source).push(e.target);
    }
  }
  // Longest-path layering in topological order (Kahn); vertices on a
  // cycle, which a plan has not, end in the last layer.
  const layer = new Map();
  const indeg = new Map(ids.map((id) => [id, ins.get(id).length]));
  const queue = ids.filter((id) => indeg.get(id) === 0);
  for (const id of queue) layer.set(id, 0);
  while (queue.length > 0) {
    const id = queue.shift();
    for (const t of outs.get(id)) {
      layer.set(t, Math.max(layer.get(t) ?? 0, layer.get(id) + 1));
      indeg.set(t, indeg.get(t) - 1);
      if (indeg.get(t) === 0) queue.push(t);
    }
  }
  let maxLayer = 0;
  for (const id of ids) maxLayer = Math.max(maxLayer, layer.get(id) ?? 0);
  for (const id of ids) if (!layer.has(id)) layer.set(id, maxLayer + 1);
  const layers = [];
  for (const id of ids) {
    const l = layer.get(id);
    (layers[l] ||= []).push(id);
  }
  const pos = new Map();
  const place = () => layers.forEach((ls) => (ls || []).forEach((id, i) => pos.set(id, i)));
  place();
  for (let sweep = 0; sweep < 4; sweep++) {
    const down = sweep % 2 === 0;
    const order = down ? layers.keys() : [...layers.keys()].reverse();
    for (const l of order) {
      const ls = layers[l];
      if (!ls) continue;
      const bary = (id) => {
        const nb = down ? ins.get(id) : outs.get(id);
        if (nb.length === 0) return pos.get(id);
        return nb.reduce((s, n) => s + pos.get(n), 0) / nb.length;
      };
      ls.sort((a, b) => bary(a) - bary(b) || pos.get(a) - pos.get(b));
      ls.forEach((id, i) => pos.set(id, i));
    }
  }
  const tallest = Math.max(1, ...layers.map((ls) => (ls ? ls.length : 0)));
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * GAP_Y;
  const nodes = new Map();
  layers.forEach((ls, l) => {
    if (!ls) return;
    const span = ls.length * NODE_H + (ls.length - 1) * GAP_Y;
    const top = (height - span) / 2;
    ls.forEach((id, i) => nodes.set(id, { x: PAD + l * (NODE_W + GAP_X), y: top + i * (NODE_H + GAP_Y) }));
  });
  const width = PAD * 2 + layers.length * NODE_W + Math.max(0, layers.length - 1) * GAP_X;
  return { nodes, width, height };
}

// colour is a vertex's fill and text colour, as Flink 1.13+ shades its job
// graph: idle is blue, busy turns it red (darker the busier),
// backpressured turns it grey to black. busy and bp are ratios in [0, 1],
// undefined when unknown.
export function colour(busy, bp) {
  if (busy === undefined && bp === undefined) return { fill: '#ffffff', text: '#1d2733', kind: 'unknown' };
  busy = busy || 0;
  bp = bp || 0;
  if (bp > busy && bp >= 0.1) {
    const l = Math.round(80 - 70 * bp);
    return { fill: `hsl(0, 0%, ${l}%)`, text: l > 50 ? '#111111' : '#ffffff', kind: 'backpressured' };
  }
  if (busy >= 0.1) {
    const l = Math.round(86 - 46 * busy);
    return { fill: `hsl(3, 78%, ${l}%)`, text: l > 58 ? '#111111' : '#ffffff', kind: 'busy' };
  }
  return { fill: 'hsl(210, 75%, 88%)', text: '#10243a', kind: 'idle' };
}

// short cuts s to n characters with an ellipsis.
function short(s, n) {
  return s.length <= n ? s : s.slice(0, n - 1) + '…';
}

// Graph draws one job's plan and updates its figures.
export class Graph {
  // plan is the JobGraph ({vertices, edges}); onSelect(vertexId) is
  // called when a node is clicked or activated with the keyboard.
  constructor(plan, onSelect) {
    this.plan = plan;
    const vs = plan.vertices || [];
    const es = plan.edges || [];
    const { nodes, width, height } = layout(vs, es);
    this.svg = el('svg', {
      class: 'graph', viewBox: `0 0 ${width} ${height}`, width, height,
      role: 'group', 'aria-label': `Job graph: ${vs.length} vertices, ${es.length} edges`,
    });
    const defs = el('defs');
    defs.append(el('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse' },
      el('path', { d: 'M 0 0 L 10 5 L 0 10 z', class: 'arrowhead' })));
    this.svg.append(defs);
    const edgeLayer = el('g', { class: 'edges', 'aria-hidden': 'true' });
    for (const e of es) {
      const a = nodes.get(e.source);
      const b = nodes.get(e.target);
      if (!a || !b) continue;
      const x1 = a.x + NODE_W; const y1 = a.y + NODE_H / 2;
      const x2 = b.x; const y2 = b.y + NODE_H / 2;
      const mx = (x1 + x2) / 2;
      edgeLayer.append(el('path', { d: `M ${x1} ${y1} C ${mx} ${y1}, ${mx} ${y2}, ${x2 - 2} ${y2}`, class: 'edge', 'marker-end': 'url(#arrow)' }));
      const label = el('text', { x: mx, y: (y1 + y2) / 2 - 6, class: 'edge-label', 'text-anchor': 'middle' });
      label.textContent = e.partitioning + (e.side ? ` (${e.side})` : '');
      edgeLayer.append(label);
    }
    this.svg.append(edgeLayer);
    this.nodes = new Map();
    const nodeLayer = el('g', { class: 'nodes' });
    for (const v of vs) {
      const p = nodes.get(v.id);
      const g = el('g', { class: 'node', transform: `translate(${p.x}, ${p.y})`, 'data-vertex': v.id });
      // What is drawn is hidden from assistive technology; a transparent
      // button on top names it all (its label holds the visible text).
      const look = el('g', { 'aria-hidden': 'true' });
      const rect = el('rect', { width: NODE_W, height: NODE_H, rx: 8, class: 'node-box' });
      const name = el('text', { x: 12, y: 22, class: 'node-name' });
      name.textContent = short(v.name, 30);
      const par = el('text', { x: 12, y: 42, class: 'node-line' });
      par.textContent = `Parallelism ${v.parallelism}`;
      const io = el('text', { x: 12, y: 62, class: 'node-line node-io' });
      const load = el('text', { x: 12, y: 82, class: 'node-line node-load' });
      look.append(rect, name, par, io, load);
      const button = el('rect', { width: NODE_W, height: NODE_H, rx: 8, class: 'node-hit', tabindex: 0, role: 'button' });
      const title = el('title');
      title.textContent = v.name;
      button.append(title);
      g.append(look, button);
      g.addEventListener('click', () => onSelect(v.id));
      button.addEventListener('keydown', (ev) => {
        if (ev.key === 'Enter' || ev.key === ' ') { ev.preventDefault(); onSelect(v.id); }
      });
      nodeLayer.append(g);
      this.nodes.set(v.id, { g, button, rect, name, io, load, vertex: v, texts: [name, par, io, load] });
    }
    this.svg.append(nodeLayer);
  }

  // update sets a vertex's figures: {inRate, outRate, busy, bp, status}.
  update(id, f) {
    const n = this.nodes.get(id);
    if (!n) return;
    n.io.textContent = `In ${fmt.rate(f.inRate)} · Out ${fmt.rate(f.outRate)}`;
    let load = 'Busy – · Backpressured –';
    if (f.busy !== undefined || f.bp !== undefined) load = `Busy ${fmt.percent(f.busy)} · Backpressured ${fmt.percent(f.bp)}`;
    if (f.status && f.status !== 'RUNNING') load = f.status.charAt(0) + f.status.slice(1).toLowerCase() + (f.busy !== undefined ? ` · busy ${fmt.percent(f.busy)}` : '');
    n.load.textContent = load;
    const c = colour(f.busy, f.bp);
    n.rect.setAttribute('fill', c.fill);
    n.rect.setAttribute('data-kind', c.kind);
    for (const t of n.texts) t.setAttribute('fill', c.text);
    // The accessible name holds the visible text (WCAG 2.5.3), and the
    // whole name where the visible one is cut.
    const cutName = n.name.textContent !== n.vertex.name ? `. Full name: ${n.vertex.name}` : '';
    n.button.setAttribute('aria-label', n.texts.map((t) => t.textContent).join(', ') + cutName + '. Shows its subtasks.');
  }

  // select marks the vertex shown below the graph.
  select(id) {
    for (const [vid, n] of this.nodes) n.g.classList.toggle('selected', vid === id);
  }
}
