// The REST API as the dashboard uses it: JSON GETs, and which routes the
// JobManager serves (so that optional ones are asked only where present).

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function answer(resp, path) {
  if (resp.ok) return resp;
  let msg = `${resp.status} ${resp.statusText}`;
  try {
    const body = await resp.json();
    if (body && Array.isArray(body.errors)) msg = body.errors.join('; ');
  } catch (_) { /* not JSON: keep the status line */ }
  throw new ApiError(resp.status, `GET ${path}: ${msg}`);
}

// TOKEN_KEY keeps the JobManager's REST token, when it asks for one
// (rest.authentication.token-file), for the browser tab's session only.
const TOKEN_KEY = 'spate.rest.token';

// setToken keeps the token every request sends ('' forgets it).
export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function headers(extra) {
  const h = { ...extra };
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h.Authorization = `Bearer ${token}`;
  return h;
}

// getJSON fetches path and decodes its JSON answer.
export async function getJSON(path) {
  const resp = await fetch(path, { headers: headers({ Accept: 'application/json' }), cache: 'no-store' });
  return (await answer(resp, path)).json();
}

// getText fetches path as text.
export async function getText(path) {
  const resp = await fetch(path, { headers: headers(), cache: 'no-store' });
  return (await answer(resp, path)).text();
}

// patch sends a PATCH with no body (cancelling a job).
export async function patch(path) {
  const resp = await fetch(path, { method: 'PATCH', headers: headers() });
  return (await answer(resp, path)).json();
}

// A route pattern with its wildcards' names dropped: "GET /v1/jobs/{}".
function shape(pattern) {
  return pattern.replace(/\{[^}]*\}/g, '{}').replace(/\/$/, '');
}

let routeSet = null;

// loadRoutes reads the routes the API serves; has() answers from them.
export async function loadRoutes() {
  const r = await getJSON('/web/routes.json');
  routeSet = new Set((r.routes || []).map(shape));
  return routeSet;
}

// has tells whether the API serves pattern, e.g. "GET /v1/jobs/{id}/checkpoints".
export function has(pattern) {
  return routeSet !== null && routeSet.has(shape(pattern));
}

const enc = encodeURIComponent;

// Paths of the routes, in Flink's shapes.
export const paths = {
  overview: () => '/v1/overview',
  config: () => '/v1/config',
  jobsOverview: () => '/v1/jobs/overview',
  job: (id) => `/v1/jobs/${enc(id)}`,
  exceptions: (id) => `/v1/jobs/${enc(id)}/exceptions`,
  checkpoints: (id) => `/v1/jobs/${enc(id)}/checkpoints`,
  checkpointConfig: (id) => `/v1/jobs/${enc(id)}/checkpoints/config`,
  jobMetrics: (id, names) => `/v1/jobs/${enc(id)}/metrics` + get(names),
  vertex: (id, vid) => `/v1/jobs/${enc(id)}/vertices/${enc(vid)}`,
  vertexMetrics: (id, vid, names) => `/v1/jobs/${enc(id)}/vertices/${enc(vid)}/metrics` + get(names),
  subtasksMetrics: (id, vid, names) => `/v1/jobs/${enc(id)}/vertices/${enc(vid)}/subtasks/metrics` + get(names),
  watermarks: (id, vid) => `/v1/jobs/${enc(id)}/vertices/${enc(vid)}/watermarks`,
  backpressure: (id, vid) => `/v1/jobs/${enc(id)}/vertices/${enc(vid)}/backpressure`,
  taskManagers: () => '/v1/taskmanagers',
  tmMetrics: (tm, names) => `/v1/taskmanagers/${enc(tm)}/metrics` + get(names),
  tmStdout: (tm) => `/v1/taskmanagers/${enc(tm)}/stdout`,
  jmMetrics: (names) => '/v1/jobmanager/metrics' + get(names),
};

// The patterns of those routes, for has().
export const routes = {
  exceptions: 'GET /v1/jobs/{id}/exceptions',
  checkpoints: 'GET /v1/jobs/{id}/checkpoints',
  checkpointConfig: 'GET /v1/jobs/{id}/checkpoints/config',
  jobMetrics: 'GET /v1/jobs/{id}/metrics',
  vertex: 'GET /v1/jobs/{id}/vertices/{vid}',
  vertexMetrics: 'GET /v1/jobs/{id}/vertices/{vid}/metrics',
  subtasksMetrics: 'GET /v1/jobs/{id}/vertices/{vid}/subtasks/metrics',
  watermarks: 'GET /v1/jobs/{id}/vertices/{vid}/watermarks',
  backpressure: 'GET /v1/jobs/{id}/vertices/{vid}/backpressure',
  tmMetrics: 'GET /v1/taskmanagers/{id}/metrics',
  tmStdout: 'GET /v1/taskmanagers/{id}/stdout',
  jmMetrics: 'GET /v1/jobmanager/metrics',
};

function get(names) {
  if (!names || names.length === 0) return '';
  return '?get=' + names.map(enc).join(',');
}

// metricValues turns Flink's metric answer [{id, value}] (or the
// aggregated [{id, min, max, avg, sum}]) into a Map from id to the entry,
// values as numbers where they parse.
export function metricMap(list) {
  const m = new Map();
  for (const e of list || []) {
    const o = { ...e };
    for (const k of ['value', 'min', 'max', 'avg', 'sum']) {
      if (typeof o[k] === 'string' && o[k] !== '' && !Number.isNaN(Number(o[k]))) o[k] = Number(o[k]);
    }
    m.set(e.id, o);
  }
  return m;
}
