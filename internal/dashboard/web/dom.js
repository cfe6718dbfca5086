// Building DOM nodes without innerHTML: every text the API sends is set as
// text, never parsed as HTML.

// h makes an element: h('a', {href: '#/x', class: 'c'}, 'text', child).
// Attributes whose value is undefined, null or false are left out; "on…"
// function attributes become event listeners.
export function h(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : String(v));
  }
  append(e, children);
  return e;
}

function append(e, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(e, c);
    else e.append(c instanceof Node ? c : String(c));
  }
}

// table makes a table with a caption, column headers and rows of cells;
// a cell is a node, a string or {v: content, num: true} for figures.
export function table(caption, columns, rows, empty = 'None.') {
  const head = h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.num ? 'num' : null }, c.label || c))));
  const body = h('tbody');
  if (rows.length === 0) {
    body.append(h('tr', null, h('td', { colspan: columns.length, class: 'empty' }, empty)));
  }
  for (const r of rows) {
    body.append(h('tr', r.attrs || null, r.cells.map((c, i) => {
      const num = columns[i] && columns[i].num;
      const th = i === 0 && r.header;
      return h(th ? 'th' : 'td', { class: num ? 'num' : null, scope: th ? 'row' : null }, c);
    })));
  }
  // The wrapper scrolls a wide table sideways instead of the page.
  return h('div', { class: 'table-wrap' }, h('table', null, caption ? h('caption', null, caption) : null, head, body));
}

// replace puts children in place of e's.
export function replace(e, ...children) {
  e.replaceChildren();
  append(e, children);
}

// badge shows a job or subtask state, as text and colour.
export function badge(state) {
  return h('span', { class: 'badge state-' + String(state || 'unknown').toLowerCase() }, state || 'UNKNOWN');
}

// tile is one figure of a row of figures.
export function tile(label, value, attrs) {
  return h('div', { class: 'tile', ...(attrs || {}) }, h('div', { class: 'tile-value' }, value), h('div', { class: 'tile-label' }, label));
}

// note is a sentence saying why something is not shown.
export function note(text) {
  return h('p', { class: 'note' }, text);
}
