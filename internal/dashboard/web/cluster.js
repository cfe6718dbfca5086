// The cluster's pages: the overview, the job list and the JobManager
// (configuration and metrics).

import { getJSON, has, paths, routes, metricMap } from './api.js';
import { h, table, replace, badge, tile, note } from './dom.js';
import * as fmt from './format.js';

// jobRows are the rows of a table of jobs.
export function jobRows(jobs) {
  return jobs.map((j) => ({
    attrs: { 'data-job': j.jid },
    header: true,
    cells: [
      h('a', { href: `#/jobs/${j.jid}` }, j.name || j.jid),
      h('code', null, j.jid),
      badge(j.state),
      fmt.time(j['start-time']),
      fmt.duration(j.duration),
      fmt.time(j['end-time']),
      taskCounts(j.tasks),
    ],
  }));
}

export const jobColumns = ['Job', 'ID', 'State', 'Started', 'Duration', 'Ended', 'Subtasks'];

// taskCounts shows a job's subtasks by state, "5 running, 1 finished".
export function taskCounts(tasks) {
  const parts = [];
  for (const [state, n] of Object.entries(tasks || {})) {
    if (n > 0) parts.push(h('span', { class: 'count state-' + state.toLowerCase() }, `${n} ${state.toLowerCase()}`));
  }
  if (parts.length === 0) return '–';
  return h('span', { class: 'counts' }, parts);
}

function byStartDesc(a, b) {
  return (b['start-time'] || 0) - (a['start-time'] || 0);
}

export class OverviewPage {
  mount(el) {
    document.title = 'Overview · Spate';
    this.tiles = h('div', { class: 'tiles', id: 'overview-tiles' });
    this.running = h('section', { 'aria-labelledby': 'running-h' });
    this.done = h('section', { 'aria-labelledby': 'done-h' });
    replace(el, h('h1', null, 'Overview'), this.tiles, this.running, this.done);
  }

  async update() {
    const [o, jobs] = await Promise.all([getJSON(paths.overview()), getJSON(paths.jobsOverview())]);
    replace(this.tiles,
      tile('TaskManagers', fmt.count(o.taskmanagers), { id: 'tile-taskmanagers' }),
      tile('Task slots', fmt.count(o['slots-total'])),
      tile('Available slots', fmt.count(o['slots-available'])),
      tile('Running jobs', fmt.count(o['jobs-running']), { id: 'tile-running' }),
      tile('Finished jobs', fmt.count(o['jobs-finished'])),
      tile('Cancelled jobs', fmt.count(o['jobs-cancelled'])),
      tile('Failed jobs', fmt.count(o['jobs-failed'])),
      tile('Version', o['spate-version'] || '–'));
    const all = (jobs.jobs || []).slice().sort(byStartDesc);
    const ended = (s) => s === 'FINISHED' || s === 'FAILED' || s === 'CANCELED';
    replace(this.running, h('h2', { id: 'running-h' }, 'Running jobs'),
      table(null, jobColumns, jobRows(all.filter((j) => !ended(j.state))), 'No job is running.'));
    replace(this.done, h('h2', { id: 'done-h' }, 'Completed jobs'),
      table(null, jobColumns, jobRows(all.filter((j) => ended(j.state))), 'No job has ended yet.'));
  }
}

export class JobsPage {
  mount(el) {
    document.title = 'Jobs · Spate';
    this.list = h('div');
    replace(el, h('h1', null, 'Jobs'), this.list);
  }

  async update() {
    const jobs = await getJSON(paths.jobsOverview());
    const all = (jobs.jobs || []).slice().sort(byStartDesc);
    replace(this.list, table(`${all.length} job${all.length === 1 ? '' : 's'}, newest first`, jobColumns, jobRows(all), 'No job was submitted yet.'));
  }
}

// metricsTable lists metrics [{id, value}] sorted by id.
export function metricsTable(caption, list) {
  const rows = [...metricMap(list).values()].sort((a, b) => a.id.localeCompare(b.id))
    .map((m) => ({ header: true, cells: [h('code', null, m.id), typeof m.value === 'number' ? fmt.count(m.value) : String(m.value ?? '–')] }));
  return table(caption, ['Metric', { label: 'Value', num: true }], rows, 'No metrics.');
}

// allMetrics reads every metric a metrics route lists (its ids first,
// then their values, in batches that keep the URL short).
export async function allMetrics(pathFor) {
  const ids = (await getJSON(pathFor([]))).map((m) => m.id);
  const out = [];
  for (let i = 0; i < ids.length; i += 40) {
    out.push(...await getJSON(pathFor(ids.slice(i, i + 40))));
  }
  return out;
}

export class JobManagerPage {
  mount(el) {
    document.title = 'JobManager · Spate';
    this.metrics = h('section', { 'aria-labelledby': 'jm-metrics-h' });
    this.config = h('section', { 'aria-labelledby': 'jm-config-h' });
    replace(el, h('h1', null, 'JobManager'), this.metrics, this.config);
  }

  async update() {
    const c = await getJSON(paths.config());
    const rows = (c.config || []).slice().sort((a, b) => a.key.localeCompare(b.key))
      .map((e) => ({ header: true, cells: [h('code', null, e.key), h('code', null, e.value)] }));
    replace(this.config, h('h2', { id: 'jm-config-h' }, 'Configuration'),
      h('p', null, `Spate ${c['spate-version'] || ''}, time zone ${c['timezone-name'] || '–'}. Secrets are not shown.`),
      table(null, ['Key', 'Value'], rows, 'No configuration entries.'));
    if (!has(routes.jmMetrics)) {
      replace(this.metrics, h('h2', { id: 'jm-metrics-h' }, 'Metrics'),
        note('Metrics are not available: this JobManager does not serve /v1/jobmanager/metrics.'));
      return;
    }
    const list = await allMetrics((names) => paths.jmMetrics(names));
    replace(this.metrics, h('h2', { id: 'jm-metrics-h' }, 'Metrics'), metricsTable(null, list));
  }
}
