// The dashboard's entry: a hash router (#/overview, #/jobs, #/jobs/ID,
// #/jobs/ID/TAB, #/jobs/ID/vertices/VID, #/taskmanagers, #/taskmanagers/ID,
// #/jobmanager) and the poll loop that refreshes the page shown.

import { loadRoutes, setToken, ApiError } from './api.js';
import { OverviewPage, JobsPage, JobManagerPage } from './cluster.js';
import { JobPage } from './job.js';
import { TaskManagersPage, TaskManagerPage } from './taskmanagers.js';
import { h, replace } from './dom.js';

// POLL_MS is how often the page shown is refreshed.
const POLL_MS = 1500;

const main = document.getElementById('main');
const live = document.getElementById('live');

let page = null;
let pageKey = '';
let timer = 0;
let generation = 0;

function route() {
  const parts = location.hash.replace(/^#\/?/, '').split('/').filter(Boolean).map(decodeURIComponent);
  const [section, id, sub, subId] = parts;
  switch (section) {
    case undefined:
    case 'overview': return { nav: 'overview', key: 'overview', make: () => new OverviewPage() };
    case 'jobs':
      if (!id) return { nav: 'jobs', key: 'jobs', make: () => new JobsPage() };
      return {
        nav: 'jobs', key: 'job/' + id, make: () => new JobPage(id),
        tab: sub === 'vertices' ? 'overview' : (sub || 'overview'), vertex: sub === 'vertices' ? subId : undefined,
      };
    case 'taskmanagers':
      if (!id) return { nav: 'taskmanagers', key: 'taskmanagers', make: () => new TaskManagersPage() };
      return { nav: 'taskmanagers', key: 'tm/' + id, make: () => new TaskManagerPage(id) };
    case 'jobmanager': return { nav: 'jobmanager', key: 'jobmanager', make: () => new JobManagerPage() };
    default: return { nav: '', key: 'unknown', make: () => new NotFoundPage(location.hash) };
  }
}

class NotFoundPage {
  constructor(hash) { this.hash = hash; }
  mount(el) {
    document.title = 'Not found · Spate';
    replace(el, h('h1', null, 'Not found'), h('p', null, `Nothing is at ${this.hash}. `, h('a', { href: '#/overview' }, 'Go to the overview'), '.'));
  }
  async update() {}
}

function show() {
  const r = route();
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === r.nav) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  if (r.key !== pageKey || !page) {
    if (page && page.unmount) page.unmount();
    pageKey = r.key;
    page = r.make();
    page.mount(main);
  }
  if (page.navigate) page.navigate(r);
  refresh();
}

// refresh updates the page now and then every POLL_MS while it is shown.
async function refresh() {
  clearTimeout(timer);
  const gen = ++generation;
  const p = page;
  try {
    await p.update();
    if (gen !== generation) return;
    const now = new Date();
    live.textContent = `Live · updated ${now.toLocaleTimeString('en-GB')}`;
    live.classList.remove('down');
    document.body.dataset.updated = String(now.getTime());
  } catch (err) {
    if (gen !== generation) return;
    live.textContent = `Not updated: ${err.message}`;
    live.classList.add('down');
  }
  if (gen !== generation) return;
  timer = setTimeout(() => {
    if (document.hidden) {
      // Resume when the tab is shown again.
      document.addEventListener('visibilitychange', refresh, { once: true });
      return;
    }
    refresh();
  }, POLL_MS);
}

// start reads the routes and shows the page; tokenGiven says a token
// was just typed in (if refused, it is asked for again, saying so).
async function start(tokenGiven = false) {
  try {
    await loadRoutes();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      if (tokenGiven) setToken('');
      askToken(tokenGiven);
      return;
    }
    live.textContent = `Cannot reach the JobManager: ${err.message}`;
    live.classList.add('down');
    setTimeout(start, POLL_MS);
    return;
  }
  window.addEventListener('hashchange', show);
  show();
}

// askToken asks for the JobManager's REST token (it answered 401) and
// starts again with it.
function askToken(refused) {
  document.title = 'Token needed · Spate';
  live.textContent = 'Not connected: the JobManager needs its token';
  live.classList.add('down');
  const input = h('input', { id: 'token', type: 'password', name: 'token', autocomplete: 'current-password', required: true, size: 40 });
  const form = h('form', { class: 'token-form', 'aria-labelledby': 'token-h' },
    h('h1', { id: 'token-h' }, 'This JobManager needs its token'),
    h('p', null, 'Its REST API takes requests with the token of rest.authentication.token-file only. ' +
      'The dashboard keeps it for this browser tab and sends it with every request.'),
    refused ? h('p', { role: 'alert', class: 'alert' }, 'That token was refused.') : null,
    h('label', { for: 'token' }, 'Token'), ' ', input, ' ',
    h('button', { type: 'submit' }, 'Connect'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    setToken(input.value.trim());
    start(true);
  });
  replace(main, form);
  input.focus();
}

start();
