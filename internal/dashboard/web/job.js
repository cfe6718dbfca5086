// A job's page: its state and figures, the job graph, its vertices and
// their subtasks, and the exceptions, checkpoints and restarts tabs.

import { getJSON, patch, has, paths, routes, metricMap, ApiError } from './api.js';
import { h, table, replace, badge, tile, note } from './dom.js';
import { Graph } from './graph.js';
import { taskCounts } from './cluster.js';
import * as fmt from './format.js';

const TABS = [
  ['overview', 'Overview'],
  ['exceptions', 'Exceptions'],
  ['checkpoints', 'Checkpoints'],
  ['restarts', 'Restarts'],
];

// The task metrics of a vertex the graph and the vertex table show, as
// Flink names them.
const VERTEX_METRICS = ['numRecordsInPerSecond', 'numRecordsOutPerSecond', 'busyTimeMsPerSecond',
  'backPressuredTimeMsPerSecond', 'idleTimeMsPerSecond', 'currentInputWatermark', 'currentOutputWatermark'];

// The metrics of each subtask in the subtasks table.
const SUBTASK_METRICS = ['numRecordsIn', 'numRecordsOut', 'numRecordsInPerSecond', 'numRecordsOutPerSecond',
  'busyTimeMsPerSecond', 'backPressuredTimeMsPerSecond', 'idleTimeMsPerSecond', 'currentInputWatermark', 'currentOutputWatermark', 'watermarkLag'];

// Flink's "no watermark yet" is Long.MIN_VALUE.
function realWatermark(w) {
  return typeof w === 'number' && w > -9e15 && w < 9e15 ? w : undefined;
}

function terminal(state) {
  return state === 'FINISHED' || state === 'FAILED' || state === 'CANCELED';
}

// Rates turns counters sampled at the JobManager's times into per-second
// rates over the last few seconds (workers report counts every second, so
// a longer window smooths the steps).
class Rates {
  constructor(windowMs = 5000) { this.windowMs = windowMs; this.samples = new Map(); }

  add(key, t, v) {
    let s = this.samples.get(key);
    if (!s) this.samples.set(key, s = []);
    if (s.length > 0 && s[s.length - 1].t >= t) return;
    s.push({ t, v });
    while (s.length > 2 && s[1].t <= t - this.windowMs) s.shift();
  }

  rate(key) {
    const s = this.samples.get(key);
    if (!s || s.length < 2) return undefined;
    const a = s[0]; const b = s[s.length - 1];
    if (b.t - a.t < 900) return undefined;
    return Math.max(0, (b.v - a.v) * 1000 / (b.t - a.t));
  }
}

export class JobPage {
  constructor(id) {
    this.id = id;
    this.tab = 'overview';
    this.vertex = undefined;
    this.rates = new Rates();
    this.graph = null;
    this.details = null;
    this.checkpointsOff = null; // why checkpoint statistics are not fetched
    this.checkpointConfig = null; // it does not change during a job
    this.figures = new Map(); // vertex id -> figures of the last update
  }

  mount(el) {
    document.title = 'Job · Spate';
    this.title = h('h1', { id: 'job-title' }, 'Job');
    this.meta = h('p', { class: 'job-meta' }, h('code', null, this.id));
    this.actions = h('div', { class: 'actions' });
    this.tiles = h('div', { class: 'tiles', id: 'job-tiles' });
    this.tabNav = h('nav', { 'aria-label': 'Job sections', class: 'tabs' },
      h('ul', null, TABS.map(([k, label]) => h('li', null, h('a', { href: this.tabHref(k), 'data-tab': k }, label)))));
    this.body = h('div', { id: 'job-body' });
    this.message = h('div', { role: 'alert', class: 'alert', hidden: true });
    replace(el, h('div', { class: 'job-head' }, h('div', null, this.title, this.meta), this.actions),
      this.message, this.tiles, this.tabNav, this.body);
  }

  tabHref(k) {
    return k === 'overview' ? `#/jobs/${this.id}` : `#/jobs/${this.id}/${k}`;
  }

  navigate(r) {
    const tab = TABS.some(([k]) => k === r.tab) ? r.tab : 'overview';
    const changed = tab !== this.tab || !this.bodyBuilt;
    this.tab = tab;
    this.vertex = r.vertex;
    for (const a of this.tabNav.querySelectorAll('a')) {
      if (a.dataset.tab === tab) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    if (changed) this.buildBody();
    if (this.graph) this.graph.select(this.vertex);
    if (this.tab === 'overview') this.showVertexPanel();
  }

  buildBody() {
    this.bodyBuilt = true;
    this.graph = null;
    if (this.tab === 'overview') {
      this.graphBox = h('div', { class: 'graph-box', id: 'job-graph' }, note('Loading the job graph…'));
      this.vertices = h('section', { 'aria-labelledby': 'vertices-h' });
      this.subtasks = h('section', { 'aria-labelledby': 'subtasks-h', id: 'subtasks' });
      replace(this.body, h('section', { 'aria-labelledby': 'graph-h' }, h('h2', { id: 'graph-h' }, 'Job graph'), legend(), this.graphBox),
        this.vertices, this.subtasks);
    } else {
      this.pane = h('section', { 'aria-labelledby': 'pane-h' });
      replace(this.body, this.pane);
    }
  }

  showVertexPanel() {
    if (!this.subtasks) return;
    if (!this.vertex) {
      replace(this.subtasks, h('h2', { id: 'subtasks-h' }, 'Subtasks'), note('Select a vertex in the graph or the table to see its subtasks.'));
    }
  }

  async update() {
    let d;
    try {
      d = await getJSON(paths.job(this.id));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        this.message.hidden = false;
        this.message.textContent = `There is no job ${this.id} on this JobManager.`;
        return;
      }
      throw err;
    }
    this.message.hidden = true;
    this.details = d;
    document.title = `${d.name} · Spate`;
    this.title.textContent = d.name;
    replace(this.meta, h('code', null, d.jid), ' ', badge(d.state));
    this.updateActions(d);
    const vertexMetrics = await this.vertexFigures(d);
    const extra = await this.jobExtras(d);
    this.updateTiles(d, vertexMetrics, extra);
    switch (this.tab) {
      case 'overview': await this.updateOverview(d); break;
      case 'exceptions': await this.updateExceptions(); break;
      case 'checkpoints': this.updateCheckpoints(extra); break;
      case 'restarts': await this.updateRestarts(d, extra); break;
    }
  }

  updateActions(d) {
    if (terminal(d.state)) {
      replace(this.actions);
      return;
    }
    if (this.actions.childElementCount > 0) return;
    replace(this.actions, h('button', {
      type: 'button', class: 'danger', onclick: async () => {
        if (!confirm(`Cancel job ${d.name}?`)) return;
        try {
          await patch(paths.job(this.id) + '?mode=cancel');
        } catch (err) {
          this.message.hidden = false;
          this.message.textContent = err.message;
        }
      },
    }, 'Cancel job'));
  }

  // vertexFigures computes each vertex's figures: rates (from the record
  // counts of the job's details, else the metrics), busy and
  // backpressured ratios and watermarks (from the metric routes).
  async vertexFigures(d) {
    const useMetrics = has(routes.subtasksMetrics) && !terminal(d.state);
    const answers = await Promise.all(d.vertices.map((v) => useMetrics
      ? getJSON(paths.subtasksMetrics(this.id, v.id, VERTEX_METRICS)).then(metricMap, () => new Map())
      : Promise.resolve(new Map())));
    const figures = new Map();
    d.vertices.forEach((v, i) => {
      const m = answers[i];
      this.rates.add(v.id + '/in', d.now, v.metrics['read-records']);
      this.rates.add(v.id + '/out', d.now, v.metrics['write-records']);
      const sum = (k) => (m.get(k) ? m.get(k).sum : undefined);
      const max = (k) => (m.get(k) ? m.get(k).max : undefined);
      const minOf = (k) => (m.get(k) ? realWatermark(m.get(k).min) : undefined);
      const f = {
        status: v.status,
        in: v.metrics['read-records'],
        out: v.metrics['write-records'],
        // The counts' rate over 5 s first: a per-second metric reads 0
        // between the bursts of a window's output.
        inRate: this.rates.rate(v.id + '/in') ?? sum('numRecordsInPerSecond'),
        outRate: this.rates.rate(v.id + '/out') ?? sum('numRecordsOutPerSecond'),
        busy: max('busyTimeMsPerSecond') !== undefined ? max('busyTimeMsPerSecond') / 1000 : undefined,
        bp: max('backPressuredTimeMsPerSecond') !== undefined ? max('backPressuredTimeMsPerSecond') / 1000 : undefined,
        inWatermark: minOf('currentInputWatermark'),
        outWatermark: minOf('currentOutputWatermark'),
      };
      if (terminal(d.state) || v.status === 'FINISHED') {
        f.inRate = f.inRate === undefined ? undefined : 0;
        f.outRate = f.outRate === undefined ? undefined : 0;
      }
      figures.set(v.id, f);
    });
    this.figures = figures;
    return figures;
  }

  // jobExtras fetches what the optional routes tell of the job:
  // numRestarts and its checkpoint statistics.
  async jobExtras(d) {
    const extra = { restarts: undefined, checkpoints: undefined, checkpointsOff: undefined, checkpointConfig: undefined };
    const jobs = [];
    if (has(routes.jobMetrics)) {
      jobs.push(getJSON(paths.jobMetrics(this.id, ['numRestarts', 'uptime'])).then((l) => {
        const m = metricMap(l);
        if (m.get('numRestarts')) extra.restarts = m.get('numRestarts').value;
      }, () => {}));
    }
    if (!has(routes.checkpoints)) {
      extra.checkpointsOff = 'Checkpoint statistics are not available: this JobManager does not serve /v1/jobs/{id}/checkpoints.';
    } else if (this.checkpointsOff) {
      extra.checkpointsOff = this.checkpointsOff;
    } else {
      jobs.push(getJSON(paths.checkpoints(this.id)).then(async (c) => {
        extra.checkpoints = c;
        // The configuration is asked for once a checkpoint was triggered:
        // before, a job without checkpointing has none (404).
        const triggered = c.counts && c.counts.total > 0;
        if (triggered && !this.checkpointConfig && has(routes.checkpointConfig) && this.tab === 'checkpoints') {
          this.checkpointConfig = await getJSON(paths.checkpointConfig(this.id)).catch(() => null);
        }
        extra.checkpointConfig = this.checkpointConfig;
      }, (err) => {
        if (err instanceof ApiError && (err.status === 404 || err.status === 400)) {
          // Checkpointing does not change during a job: ask no more.
          this.checkpointsOff = `Checkpointing is not enabled for this job (${err.message.replace(/^GET \S+: /, '')}).`;
          extra.checkpointsOff = this.checkpointsOff;
        } else {
          extra.checkpointsOff = `Checkpoint statistics could not be read: ${err.message}`;
        }
      }));
    }
    await Promise.all(jobs);
    if (extra.restarts === undefined && extra.checkpoints && typeof extra.checkpoints.numRestarts === 'number') {
      extra.restarts = extra.checkpoints.numRestarts;
    }
    if (extra.restarts === undefined && extra.checkpoints && extra.checkpoints.counts && typeof extra.checkpoints.counts.restored === 'number') {
      extra.restoredCheckpoints = extra.checkpoints.counts.restored;
    }
    return extra;
  }

  updateTiles(d, figures, extra) {
    const plan = d.plan || {};
    const edges = plan.edges || [];
    const hasIn = new Set(edges.map((e) => e.target));
    const hasOut = new Set(edges.map((e) => e.source));
    let inRate; let outRate; let lagWatermark;
    for (const v of d.vertices) {
      const f = figures.get(v.id);
      if (!hasIn.has(v.id) && f.outRate !== undefined) inRate = (inRate || 0) + f.outRate;
      if (!hasOut.has(v.id) && f.inRate !== undefined) outRate = (outRate || 0) + f.inRate;
      if (!hasOut.has(v.id) && f.inWatermark !== undefined) lagWatermark = lagWatermark === undefined ? f.inWatermark : Math.min(lagWatermark, f.inWatermark);
    }
    const lag = lagWatermark !== undefined && !terminal(d.state) ? Math.max(0, d.now - lagWatermark) : undefined;
    const cp = extra.checkpoints && extra.checkpoints.counts;
    replace(this.tiles,
      tile('Started', fmt.time(d['start-time'])),
      tile('Duration', fmt.duration(d.duration), { id: 'tile-duration' }),
      tile('Records in', fmt.rate(inRate), { id: 'tile-in', title: 'records per second the sources read' }),
      tile('Records out', fmt.rate(outRate), { id: 'tile-out', title: 'records per second the sinks received' }),
      tile('Event-time lag', lag === undefined ? '–' : fmt.duration(lag), { title: 'how far the sinks\u2019 input watermark is behind the JobManager\u2019s clock' }),
      tile('Checkpoints', cp && cp.total > 0 ? `${fmt.count(cp.completed)} completed` : cp ? 'none yet' : 'n/a', { title: extra.checkpointsOff || '' }),
      tile('Restarts', extra.restarts === undefined ? 'n/a' : fmt.count(extra.restarts), { title: extra.restarts === undefined ? 'this JobManager does not report numRestarts' : '' }));
  }

  async updateOverview(d) {
    if (!this.graph) {
      const plan = d.plan && d.plan.vertices ? d.plan : { vertices: d.vertices, edges: [] };
      this.graph = new Graph(plan, (vid) => { location.hash = `#/jobs/${this.id}/vertices/${vid}`; });
      replace(this.graphBox, this.graph.svg);
      this.graph.select(this.vertex);
    }
    for (const v of d.vertices) this.graph.update(v.id, this.figures.get(v.id));
    const rows = d.vertices.map((v) => {
      const f = this.figures.get(v.id);
      return {
        header: true,
        attrs: { 'data-vertex': v.id, class: v.id === this.vertex ? 'selected' : null },
        cells: [
          h('a', { href: `#/jobs/${this.id}/vertices/${v.id}` }, v.name),
          badge(v.status), fmt.count(v.parallelism),
          fmt.count(v.metrics['read-records']), fmt.count(v.metrics['write-records']),
          fmt.rate(f.inRate), fmt.rate(f.outRate), fmt.percent(f.busy), fmt.percent(f.bp),
          fmt.watermark(f.inWatermark ?? f.outWatermark), fmt.duration(v.duration), taskCounts(v.tasks),
        ],
      };
    });
    replace(this.vertices, h('h2', { id: 'vertices-h' }, 'Vertices'), table(null,
      ['Vertex', 'Status', { label: 'Parallelism', num: true }, { label: 'Records in', num: true }, { label: 'Records out', num: true },
        { label: 'In/s', num: true }, { label: 'Out/s', num: true }, { label: 'Busy (max)', num: true }, { label: 'Backpressured (max)', num: true },
        'Watermark (min)', { label: 'Duration', num: true }, 'Subtasks'], rows));
    if (this.vertex) await this.updateSubtasks(d);
  }

  async updateSubtasks(d) {
    const v = d.vertices.find((x) => x.id === this.vertex);
    if (!v) {
      replace(this.subtasks, h('h2', { id: 'subtasks-h' }, 'Subtasks'), note(`This job has no vertex ${this.vertex}.`));
      return;
    }
    const heading = h('h2', { id: 'subtasks-h' }, `Subtasks of ${v.name}`);
    const n = v.parallelism;
    const live = !terminal(d.state);
    const [detail, metrics, wms, bp] = await Promise.all([
      has(routes.vertex) ? getJSON(paths.vertex(this.id, v.id)).catch(() => null) : null,
      has(routes.vertexMetrics) && live ? subtaskMetrics(this.id, v.id, n) : null,
      has(routes.watermarks) && live ? getJSON(paths.watermarks(this.id, v.id)).then(metricMap, () => null) : null,
      has(routes.backpressure) && live ? getJSON(paths.backpressure(this.id, v.id)).catch(() => null) : null,
    ]);
    const parts = [heading];
    if (!metrics && !detail) {
      parts.push(h('p', null, `${n} subtask${n === 1 ? '' : 's'}: `, taskCounts(v.tasks), '.'));
      parts.push(note(live
        ? 'Per-subtask metrics are not available: this JobManager does not serve /v1/jobs/{id}/vertices/{vid}/metrics.'
        : 'The job has ended: its subtasks report no more metrics.'));
      replace(this.subtasks, parts);
      return;
    }
    const subs = detail && Array.isArray(detail.subtasks) ? detail.subtasks : [];
    const bpSubs = bp && Array.isArray(bp.subtasks) ? bp.subtasks : [];
    if (bp) {
      // Flink's status "deprecated" means no recent figures.
      const level = bp.status === 'deprecated' ? 'no figures yet' : String(bp['backpressure-level'] || bp.backpressureLevel || '–').toUpperCase();
      parts.push(h('p', null, 'Backpressure: ', h('strong', null, level)));
    }
    const m = metrics || new Map();
    const val = (i, k) => (m.get(`${i}.${k}`) ? m.get(`${i}.${k}`).value : undefined);
    const wm = (i, k) => realWatermark(wms && wms.get(`${i}.${k}`) ? wms.get(`${i}.${k}`).value : val(i, k));
    // Columns: those of the routes this JobManager serves.
    const cols = [{ label: 'Subtask', cell: (i) => String(i) }];
    if (subs.length > 0) {
      cols.push({ label: 'Status', cell: (i, s) => (s.status ? badge(s.status) : '–') },
        { label: 'TaskManager', cell: (i, s) => s.host || s.endpoint || s['taskmanager-id'] || '–' });
    }
    const ratio = (v) => fmt.percent(v === undefined ? undefined : v / 1000);
    cols.push(
      { label: 'Records in', num: true, cell: (i, s) => fmt.count(val(i, 'numRecordsIn') ?? (s.metrics ? s.metrics['read-records'] : undefined)) },
      { label: 'Records out', num: true, cell: (i, s) => fmt.count(val(i, 'numRecordsOut') ?? (s.metrics ? s.metrics['write-records'] : undefined)) },
      { label: 'In/s', num: true, cell: (i) => fmt.rate(val(i, 'numRecordsInPerSecond')) },
      { label: 'Out/s', num: true, cell: (i) => fmt.rate(val(i, 'numRecordsOutPerSecond')) },
      { label: 'Busy', num: true, cell: (i) => ratio(val(i, 'busyTimeMsPerSecond')) },
      { label: 'Backpressured', num: true, cell: (i) => ratio(val(i, 'backPressuredTimeMsPerSecond')) },
      { label: 'Idle', num: true, cell: (i) => ratio(val(i, 'idleTimeMsPerSecond')) });
    if (bpSubs.length > 0) {
      cols.push({ label: 'Backpressure', cell: (i) => String((bpSubs.find((x) => x.subtask === i) || {})['backpressure-level'] || '–').toUpperCase() });
    }
    cols.push(
      { label: 'Input watermark', cell: (i) => fmt.watermark(wm(i, 'currentInputWatermark')) },
      { label: 'Output watermark', cell: (i) => fmt.watermark(wm(i, 'currentOutputWatermark')) },
      {
        label: 'Watermark lag', num: true, cell: (i) => {
          const lag = val(i, 'watermarkLag');
          const inWm = wm(i, 'currentInputWatermark');
          if (typeof lag === 'number') return fmt.duration(lag);
          return inWm === undefined ? '–' : fmt.duration(Math.max(0, d.now - inWm));
        },
      });
    const rows = [];
    for (let i = 0; i < n; i++) {
      const s = subs.find((x) => x.subtask === i) || {};
      rows.push({ header: true, attrs: { 'data-subtask': i }, cells: cols.map((c) => c.cell(i, s)) });
    }
    parts.push(table(null, cols.map((c) => ({ label: c.label, num: c.num })), rows));
    replace(this.subtasks, parts);
  }

  async updateExceptions() {
    if (!has(routes.exceptions)) {
      replace(this.pane, h('h2', { id: 'pane-h' }, 'Exceptions'), note('This JobManager does not serve /v1/jobs/{id}/exceptions.'));
      return;
    }
    const e = await getJSON(paths.exceptions(this.id));
    const entries = (e.exceptionHistory && e.exceptionHistory.entries) || [];
    const parts = [h('h2', { id: 'pane-h' }, 'Exceptions')];
    if (e['root-exception']) {
      parts.push(h('h3', null, `Root exception, ${fmt.time(e.timestamp)}`), h('pre', { class: 'trace' }, e['root-exception']));
    } else {
      parts.push(h('p', null, 'The job has had no failure.'));
    }
    const rows = entries.slice().reverse().map((x) => ({
      header: true,
      cells: [fmt.time(x.timestamp), x.exceptionName || '–', x.taskName || '–', x.location || '–',
        h('details', null, h('summary', null, 'Stack trace'), h('pre', { class: 'trace' }, x.stacktrace || ''))],
    }));
    parts.push(table(`History${e.exceptionHistory && e.exceptionHistory.truncated ? ' (older entries dropped)' : ''}, newest first`,
      ['Time', 'Exception', 'Task', 'Location', 'Details'], rows, 'No exceptions.'));
    replace(this.pane, parts);
  }

  updateCheckpoints(extra) {
    const parts = [h('h2', { id: 'pane-h' }, 'Checkpoints')];
    const c = extra.checkpoints;
    if (!c) {
      parts.push(note(extra.checkpointsOff || 'Checkpoint statistics are not available.'));
      replace(this.pane, parts);
      return;
    }
    const counts = c.counts || {};
    if (!(counts.total > 0)) {
      parts.push(note('No checkpoint has been triggered: checkpointing is not enabled for this job (execution.checkpointing.interval), or its first checkpoint is still to come.'));
      replace(this.pane, parts);
      return;
    }
    parts.push(h('div', { class: 'tiles' },
      tile('Completed', fmt.count(counts.completed)), tile('Failed', fmt.count(counts.failed)),
      tile('In progress', fmt.count(counts.in_progress)), tile('Restored', fmt.count(counts.restored)),
      tile('Triggered', fmt.count(counts.total))));
    const cfg = extra.checkpointConfig;
    if (cfg) {
      parts.push(h('p', null, `Mode ${cfg.mode || '–'}, interval ${fmt.duration(cfg.interval)}, timeout ${fmt.duration(cfg.timeout)}.`));
    }
    const latest = c.latest || {};
    const done = latest.completed;
    if (done) {
      parts.push(h('p', null, `Latest completed: #${done.id}, acknowledged ${fmt.time(done.latest_ack_timestamp)}, took ${fmt.duration(done.end_to_end_duration)}, ${fmt.bytes(done.checkpointed_size ?? done.state_size)}`,
        done.external_path ? ` at ${done.external_path}` : '', '.'));
    }
    if (latest.restored) {
      parts.push(h('p', null, `Restored from #${latest.restored.id} at ${fmt.time(latest.restored.restore_timestamp)}.`));
    }
    const rows = (c.history || []).map((x) => ({
      header: true,
      cells: [`#${x.id}`, badge(x.status), x.is_savepoint ? 'savepoint' : 'checkpoint', fmt.time(x.trigger_timestamp), fmt.time(x.latest_ack_timestamp),
        fmt.duration(x.end_to_end_duration), fmt.bytes(x.checkpointed_size ?? x.state_size),
        `${fmt.count(x.num_acknowledged_subtasks)} / ${fmt.count(x.num_subtasks)}`],
    }));
    parts.push(table('History, newest first', ['Checkpoint', 'Status', 'Type', 'Triggered', 'Latest acknowledgement',
      { label: 'Duration', num: true }, { label: 'Size', num: true }, { label: 'Acknowledged', num: true }], rows, 'No checkpoint yet.'));
    replace(this.pane, parts);
  }

  async updateRestarts(d, extra) {
    const parts = [h('h2', { id: 'pane-h' }, 'Restarts')];
    if (extra.restarts !== undefined) {
      parts.push(h('div', { class: 'tiles' }, tile('Restarts', fmt.count(extra.restarts)),
        extra.restoredCheckpoints !== undefined ? tile('Restored checkpoints', fmt.count(extra.restoredCheckpoints)) : null));
    } else {
      parts.push(note('The number of restarts is not available: this JobManager reports no numRestarts metric for the job. Its status history is below.'));
    }
    const states = Object.entries(d.timestamps || {}).filter(([, t]) => t > 0).sort((a, b) => a[1] - b[1]);
    parts.push(table('Status history (the latest time each state was entered)', ['State', 'Since'],
      states.map(([s, t]) => ({ header: true, cells: [badge(s), fmt.time(t)] }))));
    if (has(routes.exceptions)) {
      const e = await getJSON(paths.exceptions(this.id));
      const n = ((e.exceptionHistory && e.exceptionHistory.entries) || []).length;
      parts.push(h('p', null, `${n} failure${n === 1 ? '' : 's'} recorded; see `, h('a', { href: this.tabHref('exceptions') }, 'Exceptions'), '.'));
    }
    replace(this.pane, parts);
  }
}

// subtaskMetrics reads the SUBTASK_METRICS of every subtask of a vertex
// ("0.numRecordsIn", …, as Flink's vertex metrics name them), in batches.
async function subtaskMetrics(job, vid, n) {
  const ids = [];
  for (let i = 0; i < n; i++) for (const k of SUBTASK_METRICS) ids.push(`${i}.${k}`);
  const out = new Map();
  try {
    for (let i = 0; i < ids.length; i += 60) {
      for (const [k, v] of metricMap(await getJSON(paths.vertexMetrics(job, vid, ids.slice(i, i + 60))))) out.set(k, v);
    }
  } catch (_) {
    return null;
  }
  return out;
}

function legend() {
  const item = (cls, label) => h('li', null, h('span', { class: 'swatch ' + cls, 'aria-hidden': 'true' }), label);
  return h('ul', { class: 'legend', 'aria-label': 'Colours of the graph' },
    item('idle', 'idle'), item('busy-low', 'busy'), item('busy-high', 'very busy'),
    item('bp-low', 'backpressured'), item('bp-high', 'fully backpressured'), item('unknown', 'no metrics'));
}
