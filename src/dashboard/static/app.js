// Roster's dashboard: fetches pages from /dashboard/api, follows /dashboard/api/events
// (server-sent events fed by the registry's change feed) and refreshes what is on screen.
// The server pages and filters: the DOM holds at most one page of applications and one of
// instances, whatever the registry's size.

import { $, ago, debounce, duration, fmt, h, lagText, safeUrl, STATUSES, statusBadge, throttle } from './dom.js';
import { sparkline } from './sparkline.js';

const API = '/dashboard/api';
const PAGE = 50;
const OVERRIDES = ['UP', 'DOWN', 'OUT_OF_SERVICE', 'STARTING'];

const state = {
  appQuery: '',
  appOffset: 0,
  app: new URLSearchParams(location.hash.slice(1)).get('app') ?? '',
  instQuery: '',
  instStatus: '',
  instOffset: 0,
};

/** The latest answer wins: an older request still in flight is aborted. */
const inflight = new Map();
async function getJson(key, path) {
  inflight.get(key)?.abort();
  const controller = new AbortController();
  inflight.set(key, controller);
  try {
    const res = await fetch(`${API}${path}`, { signal: controller.signal, headers: { accept: 'application/json' } });
    const body = await res.json();
    if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
    return body;
  } finally {
    if (inflight.get(key) === controller) inflight.delete(key);
  }
}

/** Runs a refresh, ignoring the aborts that newer refreshes cause. */
function run(task) {
  task().catch((err) => {
    if (err.name !== 'AbortError') toast(err.message, true);
  });
}

// ---- overview ----------------------------------------------------------------------------

function renderOverview(o) {
  document.title = `Roster · ${o.nodeId}`;
  $('node-id').textContent = o.nodeId;
  $('version').textContent = o.version;
  $('uptime').textContent = duration(o.uptimeMs);
  $('revision').textContent = fmt(o.revision);
  const r = o.registry;
  $('size').textContent = fmt(r.size);
  $('app-count').textContent = fmt(o.apps);
  renderStatusBar(r.byStatus, r.size);

  $('renewals').textContent = fmt(r.renewalsLastMinute);
  $('expected').textContent = fmt(Math.round(r.expectedRenewalsPerMinute));
  const ratio = r.expectedRenewalsPerMinute > 0 ? r.renewalsLastMinute / r.expectedRenewalsPerMinute : null;
  $('renewal-fill').style.width = `${Math.min(100, (ratio ?? 0) * 100)}%`;
  $('renewal-fill').classList.toggle('low', ratio !== null && ratio < 0.85);
  $('renewal-ratio').textContent = ratio === null ? 'no renewals expected yet' : `${Math.round(ratio * 100)} % of expected (threshold 85 %)`;
  $('lapsed').textContent = fmt(r.lapsedInstances);

  const banner = $('banner');
  banner.hidden = !r.selfPreservation;
  $('banner-text').textContent = r.selfPreservation
    ? ` Renewals in the last minute (${fmt(r.renewalsLastMinute)}) are below 85 % of the ${fmt(Math.round(r.expectedRenewalsPerMinute))} expected and ${fmt(r.lapsedInstances)} leases have lapsed at once, which looks like a network fault rather than deaths: expired instances are kept, so some listed here may be gone. It lifts by itself once renewals recover.`
    : '';
  $('not-ready').hidden = o.ready;

  const samples = o.history.samples;
  const minutes = Math.max(1, Math.round((samples.length * o.history.intervalMs) / 60000));
  const queue = o.peers.reduce((n, p) => n + p.queueDepth, 0);
  $('queue').textContent = o.peers.length === 0 ? 'no peers' : fmt(queue);
  sparkline(
    $('queue-spark'),
    samples.map((s) => s.queueDepth),
    { label: `Replication queue depth over the last ${minutes} min, now ${queue}` },
  );
  const lastLag = samples.findLast((s) => s.lagMs !== null);
  $('lag').textContent = lastLag ? lagText(lastLag.lagMs) : '–';
  sparkline(
    $('lag-spark'),
    samples.map((s) => s.lagMs),
    { label: `Replication lag over the last ${minutes} min, latest ${lagText(lastLag?.lagMs)}` },
  );

  $('evictions').textContent = fmt(r.evictionsTotal);
  const recent = samples.reduce((n, s) => n + s.evictions, 0);
  $('evictions-recent').textContent = fmt(recent);
  $('history-span').textContent = `${minutes} min`;
  sparkline(
    $('evictions-spark'),
    samples.map((s) => s.evictions),
    { label: `Evictions over the last ${minutes} min: ${recent}`, bars: true },
  );

  const peers = $('peers');
  if (o.peers.length === 0) {
    peers.replaceChildren(h('tr', {}, h('td', { colSpan: 8, className: 'empty' }, 'No peers: this node runs alone.')));
  } else {
    peers.replaceChildren(
      ...o.peers.map((p) =>
        h(
          'tr',
          {},
          h('td', {}, h('code', {}, p.peer)),
          h('td', {}, h('span', { className: `badge ${p.connected ? 's-UP' : 's-DOWN'}` }, p.connected ? 'connected' : 'down')),
          h('td', { className: 'num' }, fmt(p.queueDepth)),
          h('td', { className: 'num' }, fmt(p.inFlight)),
          h('td', { className: 'num' }, fmt(p.dropped)),
          h('td', { className: 'num' }, fmt(p.expired)),
          h('td', { className: 'num' }, fmt(p.retries)),
          h('td', { className: 'error-text' }, p.lastError ?? ''),
        ),
      ),
    );
  }
}

function renderStatusBar(byStatus, total) {
  const bar = $('status-bar');
  bar.replaceChildren(
    ...STATUSES.filter((s) => byStatus[s] > 0).map((s) => {
      const seg = h('span', { className: `seg s-${s}`, title: `${s}: ${fmt(byStatus[s])}` });
      seg.style.flexGrow = String(byStatus[s]);
      return seg;
    }),
  );
  bar.setAttribute('aria-label', `Instances by status: ${STATUSES.map((s) => `${s} ${byStatus[s]}`).join(', ')}`);
  bar.classList.toggle('empty', total === 0);
  $('status-legend').replaceChildren(
    ...STATUSES.map((s) => h('li', { className: byStatus[s] === 0 ? 'zero' : '' }, h('span', { className: `dot s-${s}` }), `${s.replaceAll('_', ' ')} `, h('strong', {}, fmt(byStatus[s])))),
  );
}

const refreshOverview = () => run(async () => renderOverview(await getJson('overview', '/overview')));

// ---- applications ------------------------------------------------------------------------

async function loadApps() {
  const q = new URLSearchParams({ offset: String(state.appOffset), limit: String(PAGE) });
  if (state.appQuery) q.set('q', state.appQuery);
  const page = await getJson('apps', `/apps?${q}`);
  if (page.total > 0 && page.offset >= page.total) {
    state.appOffset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
    return loadApps();
  }
  renderApps(page);
}

function renderApps(page) {
  const t = page.totals;
  // The registry card follows the change feed too (the rest of the overview comes every tick).
  $('size').textContent = fmt(t.instances);
  $('app-count').textContent = fmt(t.apps);
  renderStatusBar(t.byStatus, t.instances);
  $('status-totals').replaceChildren(
    ...STATUSES.map((s) =>
      h('li', { className: `chip ${t.byStatus[s] === 0 ? 'zero' : ''}` }, h('span', { className: `dot s-${s}` }), `${s.replaceAll('_', ' ')} `, h('strong', {}, fmt(t.byStatus[s]))),
    ),
  );
  const zones = Object.entries(t.byZone).sort(([a], [b]) => a.localeCompare(b));
  $('zone-totals').replaceChildren(...zones.map(([zone, n]) => h('li', { className: 'chip zone' }, `${zone || '(no zone)'} `, h('strong', {}, fmt(n)))));
  $('apps-status').textContent = state.appQuery ? `${fmt(page.total)} of ${fmt(t.apps)} applications match “${state.appQuery}”` : `${fmt(t.apps)} applications, ${fmt(t.instances)} instances`;
  const rows = page.items.map((a) => {
    const open = h('button', { type: 'button', className: 'app-link', 'aria-controls': 'instances-section', 'aria-expanded': String(a.app === state.app), onclick: () => selectApp(a.app) }, a.app);
    return h(
      'tr',
      { className: a.app === state.app ? 'selected' : '', dataset: { app: a.app } },
      h('th', { scope: 'row' }, open),
      h('td', { className: 'num' }, fmt(a.count)),
      ...STATUSES.map((s) => h('td', { className: `num ${a.byStatus[s] === 0 ? 'zero' : `c-${s}`}` }, fmt(a.byStatus[s]))),
      h(
        'td',
        { className: 'zones' },
        Object.entries(a.byZone)
          .sort(([x], [y]) => x.localeCompare(y))
          .map(([z, n]) => `${z || '–'} ${n}`)
          .join(' · '),
      ),
    );
  });
  $('apps').replaceChildren(...(rows.length > 0 ? rows : [h('tr', {}, h('td', { colSpan: 8, className: 'empty' }, state.appQuery ? 'No application matches.' : 'No application is registered.'))]));
  pager('apps', page, (offset) => {
    state.appOffset = offset;
    run(loadApps);
  });
}

function pager(prefix, page, go) {
  const end = Math.min(page.total, page.offset + page.items.length);
  $(`${prefix}-range`).textContent = page.total === 0 ? '0 of 0' : `${fmt(page.offset + 1)}–${fmt(end)} of ${fmt(page.total)}`;
  const prev = $(`${prefix}-prev`);
  const next = $(`${prefix}-next`);
  prev.disabled = page.offset === 0;
  next.disabled = end >= page.total;
  prev.onclick = () => go(Math.max(0, page.offset - PAGE));
  next.onclick = () => go(page.offset + PAGE);
}

// ---- instances of one application ---------------------------------------------------------

function selectApp(app) {
  state.app = app;
  state.instOffset = 0;
  state.instQuery = '';
  state.instStatus = '';
  $('instance-search').value = '';
  $('instance-status').value = '';
  history.replaceState(null, '', app ? `#app=${encodeURIComponent(app)}` : location.pathname);
  for (const row of $('apps').rows) {
    row.classList.toggle('selected', row.dataset.app === app);
    row.querySelector('.app-link')?.setAttribute('aria-expanded', String(row.dataset.app === app));
  }
  $('instances-section').hidden = !app;
  if (app) {
    $('instances-app').textContent = app;
    run(loadInstances);
    $('instances-heading').scrollIntoView({ block: 'start', behavior: 'smooth' });
  }
}

async function loadInstances() {
  if (!state.app) return;
  const q = new URLSearchParams({ offset: String(state.instOffset), limit: String(PAGE) });
  if (state.instQuery) q.set('q', state.instQuery);
  if (state.instStatus) q.set('status', state.instStatus);
  const page = await getJson('instances', `/apps/${encodeURIComponent(state.app)}/instances?${q}`);
  if (page.total > 0 && page.offset >= page.total) {
    state.instOffset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
    return loadInstances();
  }
  renderInstances(page);
}

function renderInstances(page) {
  const s = page.summary;
  $('instance-totals').replaceChildren(
    ...STATUSES.filter((st) => s.byStatus[st] > 0).map((st) =>
      h('li', { className: 'chip' }, h('span', { className: `dot s-${st}` }), `${st.replaceAll('_', ' ')} `, h('strong', {}, fmt(s.byStatus[st]))),
    ),
    ...Object.entries(s.byZone)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([z, n]) => h('li', { className: 'chip zone' }, `${z || '(no zone)'} `, h('strong', {}, fmt(n)))),
  );
  $('instances-status').textContent = page.summary.count === 0 ? 'This application has no instance left.' : `${fmt(page.total)} of ${fmt(s.count)} instances shown by the filter`;
  // Keep a half-made choice when the list refreshes under the operator's hands.
  const focusedId = document.activeElement?.closest?.('tr')?.dataset.id;
  const kept = new Map([...$('instances').querySelectorAll('select')].map((sel) => [sel.dataset.id, sel.value]));
  const rows = page.items.map((i) => instanceRow(i, page.now, kept.get(i.instanceId)));
  $('instances').replaceChildren(...(rows.length > 0 ? rows : [h('tr', {}, h('td', { colSpan: 10, className: 'empty' }, 'No instance matches.'))]));
  if (focusedId)
    $('instances')
      .querySelector(`tr[data-id="${CSS.escape(focusedId)}"] select`)
      ?.focus();
  pager('instances', page, (offset) => {
    state.instOffset = offset;
    run(loadInstances);
  });
}

function instanceRow(i, now, keptChoice) {
  const address = [h('code', {}, `${i.ipAddr}${i.port.enabled ? `:${i.port.number}` : ''}`)];
  if (i.securePort.enabled) address.push(h('span', { className: 'muted small' }, ` TLS ${i.securePort.number}`));
  if (i.hostName) address.push(h('div', { className: 'muted small' }, i.hostName));
  const meta = Object.entries(i.metadata);
  const metaList = h(
    'ul',
    { className: 'meta' },
    meta.map(([k, v]) => h('li', {}, h('span', { className: 'k' }, k), '=', h('span', { className: 'v' }, v))),
  );
  const links = [
    ['home', i.homePageUrl],
    ['status', i.statusPageUrl],
    ['health', i.healthCheckUrl],
  ]
    .map(([label, url]) => [label, safeUrl(url)])
    .filter(([, url]) => url !== undefined)
    .map(([label, url]) => h('a', { href: url, target: '_blank', rel: 'noopener noreferrer', 'aria-label': `${label} page of ${i.instanceId}` }, label));

  const select = h(
    'select',
    { 'aria-label': `Action on ${i.instanceId}`, dataset: { id: i.instanceId } },
    h('option', { value: '' }, 'Choose…'),
    h(
      'optgroup',
      { label: 'Override status' },
      OVERRIDES.map((s) => h('option', { value: `set:${s}` }, `Override: ${s}`)),
    ),
    i.overriddenStatus ? h('option', { value: 'clear' }, 'Clear override') : null,
    h('option', { value: 'cancel' }, 'Cancel instance'),
  );
  if (keptChoice && [...select.options].some((o) => o.value === keptChoice)) select.value = keptChoice;
  const apply = h('button', { type: 'button', className: 'small-button', onclick: () => act(i, select.value) }, 'Apply');
  apply.setAttribute('aria-label', `Apply the chosen action to ${i.instanceId}`);

  return h(
    'tr',
    { dataset: { id: i.instanceId } },
    h('th', { scope: 'row' }, h('code', {}, i.instanceId)),
    h('td', {}, statusBadge(i.status)),
    h('td', {}, i.overriddenStatus ? statusBadge(i.overriddenStatus) : h('span', { className: 'muted' }, '–')),
    h('td', { className: 'nowrap' }, i.zone || h('span', { className: 'muted' }, '–')),
    h('td', { className: 'address' }, address),
    h('td', { className: 'nowrap', title: new Date(i.registrationTimestamp).toISOString() }, duration(now - i.registrationTimestamp)),
    h('td', { className: 'nowrap', title: new Date(i.lastRenewalTimestamp).toISOString() }, ago(now, i.lastRenewalTimestamp)),
    h('td', {}, meta.length > 0 ? (meta.length > 3 ? h('details', {}, h('summary', {}, `${meta.length} entries`), metaList) : metaList) : h('span', { className: 'muted' }, '–')),
    h('td', { className: 'links' }, links.length > 0 ? links : h('span', { className: 'muted' }, '–')),
    h('td', { className: 'actions' }, select, apply),
  );
}

// ---- operator actions ---------------------------------------------------------------------

function confirmDialog(title, text, yesLabel) {
  const dialog = $('confirm');
  $('confirm-title').textContent = title;
  $('confirm-text').textContent = text;
  $('confirm-yes').textContent = yesLabel;
  return new Promise((resolve) => {
    const done = (answer) => {
      dialog.removeEventListener('close', onClose);
      if (dialog.open) dialog.close();
      resolve(answer);
    };
    const onClose = () => done(false);
    dialog.addEventListener('close', onClose);
    $('confirm-yes').onclick = () => done(true);
    $('confirm-no').onclick = () => done(false);
    dialog.showModal();
  });
}

async function act(instance, choice) {
  if (!choice) {
    toast('Choose an action first.', true);
    return;
  }
  const who = `${instance.app}/${instance.instanceId}`;
  const path = `${API}/apps/${encodeURIComponent(instance.app)}/instances/${encodeURIComponent(instance.instanceId)}`;
  let request;
  let question;
  if (choice.startsWith('set:')) {
    const status = choice.slice(4);
    question = [
      `Override the status of ${who}?`,
      `Its status becomes ${status} on every node until the override is cleared, whatever the instance reports (unless it reports DOWN, STARTING or UNKNOWN).`,
      `Override to ${status}`,
    ];
    request = { method: 'PUT', url: `${path}/override`, body: JSON.stringify({ status }) };
  } else if (choice === 'clear') {
    question = [`Clear the override of ${who}?`, 'Its status becomes UNKNOWN until its next heartbeat, which makes it register again with its own status.', 'Clear override'];
    request = { method: 'DELETE', url: `${path}/override` };
  } else {
    question = [`Cancel ${who}?`, 'It is removed from the registry on every node. A live instance comes back at its next heartbeat.', 'Cancel instance'];
    request = { method: 'DELETE', url: path };
  }
  if (!(await confirmDialog(...question))) return;
  const res = await fetch(request.url, {
    method: request.method,
    headers: request.body ? { 'content-type': 'application/json' } : {},
    body: request.body,
  });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) {
    toast(`Refused: ${body.error ?? `HTTP ${res.status}`}`, true);
    return;
  }
  toast(`Done: ${question[2].toLowerCase()} on ${who}.`);
  run(loadInstances);
}

let toastTimer;
function toast(text, error = false) {
  const el = $('toast');
  el.textContent = text;
  el.classList.toggle('error', error);
  el.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (el.hidden = true), 4000);
}

// ---- live updates ------------------------------------------------------------------------

const refreshApps = throttle(() => run(loadApps), 250);
const refreshInstances = throttle(() => run(loadInstances), 250);

function reloadAll() {
  refreshOverview();
  run(loadApps);
  if (state.app) run(loadInstances);
}

function connect() {
  const live = $('live');
  const events = new EventSource(`${API}/events`);
  const setLive = (stateName, text) => {
    live.dataset.state = stateName;
    live.textContent = text;
  };
  events.addEventListener('hello', () => {
    setLive('live', 'live');
    reloadAll();
  });
  events.addEventListener('changes', (e) => {
    const batch = JSON.parse(e.data);
    $('revision').textContent = fmt(batch.revision);
    refreshApps();
    if (state.app && (batch.omitted > 0 || batch.changes.some((c) => c.app === state.app))) refreshInstances();
  });
  events.addEventListener('overview', (e) => {
    renderOverview(JSON.parse(e.data));
    // Lease ages and last renewals move without changes: keep the open page current.
    if (state.app) refreshInstances();
  });
  events.addEventListener('resync', () => setLive('connecting', 'catching up…'));
  events.onerror = () => setLive(events.readyState === EventSource.CLOSED ? 'down' : 'connecting', events.readyState === EventSource.CLOSED ? 'disconnected' : 'reconnecting…');
}

// ---- wiring ------------------------------------------------------------------------------

$('app-search').addEventListener(
  'input',
  debounce((e) => {
    state.appQuery = e.target.value.trim();
    state.appOffset = 0;
    run(loadApps);
  }, 120),
);
$('instance-search').addEventListener(
  'input',
  debounce((e) => {
    state.instQuery = e.target.value.trim();
    state.instOffset = 0;
    run(loadInstances);
  }, 120),
);
$('instance-status').addEventListener('change', (e) => {
  state.instStatus = e.target.value;
  state.instOffset = 0;
  run(loadInstances);
});
$('instances-close').addEventListener('click', () => selectApp(''));

if (state.app) selectApp(state.app);
connect();
