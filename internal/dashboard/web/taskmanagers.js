// The TaskManagers' pages: the list with slots, memory and CPU, and one
// TaskManager with its metrics and its workers' output.

import { getJSON, getText, has, paths, routes, metricMap } from './api.js';
import { h, table, replace, tile, note } from './dom.js';
import { metricsTable, allMetrics } from './cluster.js';
import * as fmt from './format.js';

// Which of a TaskManager's metrics show its memory and CPU: the first id
// matching each pattern (Flink's Status.JVM.* names, or a Go runtime's).
const KEY_METRICS = [
  ['heap', 'Heap in use', /(Memory\.Heap\.Used|heap.*(used|inuse|alloc))$/i, fmt.bytes],
  ['memory', 'Memory from the OS', /(Memory\.(Sys|Total|Process|RSS)|memory.*(sys|total|rss|resident))/i, fmt.bytes],
  ['cpu', 'CPU load', /(CPU\.Load|cpu.*(load|usage|utili[sz]ation))/i, fmt.percent],
  ['cputime', 'CPU time', /(CPU\.Time|cpu.*(seconds|time))/i, (v) => fmt.duration(v > 1e6 ? v / 1e6 : v)],
  ['goroutines', 'Goroutines', /goroutine/i, fmt.count],
  ['gc', 'GC pauses in all', /(GarbageCollector\.Time|GC.*Pause.*Total)$/i, fmt.duration],
];

// keyMetricIds picks the KEY_METRICS among a TaskManager's metric ids.
function keyMetricIds(ids) {
  const picked = [];
  for (const [key, label, re, format] of KEY_METRICS) {
    const id = ids.find((x) => re.test(x));
    if (id) picked.push({ key, label, id, format });
  }
  return picked;
}

// STDOUT_MS is how often a TaskManager's output is read again.
const STDOUT_MS = 5000;

const metricIds = new Map(); // TaskManager id -> its metric ids (they do not change)

async function keyMetrics(tm) {
  if (!has(routes.tmMetrics)) return null;
  try {
    if (!metricIds.has(tm)) {
      const ids = (await getJSON(paths.tmMetrics(tm, []))).map((m) => m.id);
      // None yet: the TaskManager has not reported; ask again next time.
      if (ids.length === 0) return [];
      metricIds.set(tm, ids);
    }
    const picked = keyMetricIds(metricIds.get(tm));
    if (picked.length === 0) return [];
    const m = metricMap(await getJSON(paths.tmMetrics(tm, picked.map((p) => p.id))));
    return picked.map((p) => ({ ...p, value: m.get(p.id) ? m.get(p.id).value : undefined }));
  } catch (_) {
    return null;
  }
}

function figure(list, key) {
  const p = (list || []).find((x) => x.key === key);
  return p && typeof p.value === 'number' ? p.format(p.value) : '–';
}

export class TaskManagersPage {
  mount(el) {
    document.title = 'TaskManagers · Spate';
    this.list = h('div');
    replace(el, h('h1', null, 'TaskManagers'), this.list);
  }

  async update() {
    const t = await getJSON(paths.taskManagers());
    const tms = t.taskmanagers || [];
    const figures = await Promise.all(tms.map((tm) => keyMetrics(tm.id)));
    const rows = tms.map((tm, i) => ({
      header: true,
      attrs: { 'data-taskmanager': tm.id },
      cells: [
        h('a', { href: `#/taskmanagers/${encodeURIComponent(tm.id)}` }, tm.id), tm.path || '–',
        fmt.count(tm.slotsNumber), fmt.count(tm.freeSlots),
        fmt.count(tm.hardware && tm.hardware.cpuCores), fmt.bytes(tm.hardware && tm.hardware.physicalMemory),
        figure(figures[i], 'heap'), figure(figures[i], 'cpu'),
        fmt.duration(tm.timeSinceLastHeartbeat),
      ],
    }));
    const parts = [table(`${tms.length} TaskManager${tms.length === 1 ? '' : 's'}`,
      ['TaskManager', 'Resource', { label: 'Slots', num: true }, { label: 'Free slots', num: true }, { label: 'CPU cores', num: true },
        { label: 'Physical memory', num: true }, { label: 'Heap in use', num: true }, { label: 'CPU load', num: true },
        { label: 'Last heartbeat', num: true }], rows, 'No TaskManager is registered.')];
    if (!has(routes.tmMetrics)) parts.push(note('Memory and CPU use are not available: this JobManager does not serve /v1/taskmanagers/{id}/metrics.'));
    replace(this.list, parts);
  }
}

export class TaskManagerPage {
  constructor(id) { this.id = id; }

  mount(el) {
    document.title = `${this.id} · Spate`;
    this.tiles = h('div', { class: 'tiles', id: 'tm-tiles' });
    this.metrics = h('section', { 'aria-labelledby': 'tm-metrics-h' });
    this.outHead = h('h2', { id: 'tm-out-h' }, 'Output of its jobs');
    this.out = h('pre', { class: 'stdout', id: 'tm-stdout', tabindex: 0, 'aria-labelledby': 'tm-out-h' });
    this.outNote = h('div');
    this.message = h('div', { role: 'alert', class: 'alert', hidden: true });
    replace(el, h('h1', null, 'TaskManager ', h('code', null, this.id)), this.message, this.tiles, this.metrics,
      h('section', { 'aria-labelledby': 'tm-out-h' }, this.outHead, this.outNote, this.out));
  }

  async update() {
    const t = await getJSON(paths.taskManagers());
    const tm = (t.taskmanagers || []).find((x) => x.id === this.id);
    if (!tm) {
      this.message.hidden = false;
      this.message.textContent = `TaskManager ${this.id} is not registered with this JobManager.`;
      return;
    }
    this.message.hidden = true;
    const key = await keyMetrics(tm.id);
    const hw = tm.hardware || {};
    replace(this.tiles,
      tile('Resource', tm.path || '–'), tile('Slots', `${fmt.count(tm.slotsNumber - tm.freeSlots)} of ${fmt.count(tm.slotsNumber)} used`),
      tile('CPU cores', fmt.count(hw.cpuCores)), tile('Physical memory', fmt.bytes(hw.physicalMemory)),
      tile('Data port', tm.dataPort ? String(tm.dataPort) : '–'), tile('Last heartbeat', fmt.duration(tm.timeSinceLastHeartbeat) + ' ago'),
      tm.prometheusAddress ? tile('Prometheus', h('a', { href: `http://${tm.prometheusAddress}/metrics` }, tm.prometheusAddress)) : null,
      (key || []).map((p) => tile(p.label, typeof p.value === 'number' ? p.format(p.value) : '–', { 'data-metric': p.id })));
    if (has(routes.tmMetrics)) {
      try {
        const list = await allMetrics((names) => paths.tmMetrics(tm.id, names));
        replace(this.metrics, h('h2', { id: 'tm-metrics-h' }, 'Metrics'), list.length === 0
          ? note('The TaskManager has reported no metrics yet.')
          : h('details', null, h('summary', null, `All ${list.length} metrics`), metricsTable(null, list)));
      } catch (err) {
        replace(this.metrics, h('h2', { id: 'tm-metrics-h' }, 'Metrics'), note(`Metrics could not be read: ${err.message}`));
      }
    } else {
      replace(this.metrics, h('h2', { id: 'tm-metrics-h' }, 'Metrics'),
        note('Memory and CPU use are not available: this JobManager does not serve /v1/taskmanagers/{id}/metrics.'));
    }
    if (!has(routes.tmStdout)) {
      replace(this.outNote, note('This JobManager does not serve the TaskManagers\u2019 output.'));
      return;
    }
    // The output may be a MiB: it is read every STDOUT_MS, not every poll.
    if (this.outAt && Date.now() - this.outAt < STDOUT_MS) return;
    const text = await getText(paths.tmStdout(tm.id));
    this.outAt = Date.now();
    const atEnd = this.out.scrollTop + this.out.clientHeight >= this.out.scrollHeight - 4;
    if (this.out.textContent !== text) {
      this.out.textContent = text || '(no output yet)';
      if (atEnd) this.out.scrollTop = this.out.scrollHeight;
    }
    replace(this.outNote, h('p', { class: 'note' }, 'The latest output of the workers this TaskManager runs, each line tagged with its job.'));
  }
}
