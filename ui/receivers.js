// The receivers list and a receiver's page: its trigger URL and ready snippets, a dry run, its
// settings, its recent executions, and the actions (edit, clone, enable/disable, rotate, delete).

import { api, can } from './api.js';
import {
  h, add, clear, badge, timeEl, copyButton, copyBlock, confirmDialog, announce, changeLines,
} from './dom.js';
import { mountExecutions, poll, statusBadge } from './executions.js';
import { mountDeliveries } from './deliveries.js';
import { mountRequests, testLoggedRequest } from './requests.js';
import { MASK, propertyOrder } from './schema-form.js';
import { rulesTesterCard } from './rules-tester.js';

const LIST_POLL_MS = 5000;

const q = (v) => `'${String(v).replace(/'/g, "'\\''")}'`;

function authOf(r) {
  return r.auth && typeof r.auth === 'object' ? r.auth : {};
}

function isAlertmanager(r) {
  return Boolean(r.rules && typeof r.rules === 'object' && r.rules.preset === 'alertmanager');
}

// --- what a sample request must carry -------------------------------------------------------

// "body:/a/b", "body:a.b[0]" -> ['a', 'b'] / ['a', 'b', '0']; null for other fields.
function bodyPath(field) {
  if (typeof field !== 'string' || !field.startsWith('body:')) return null;
  const p = field.slice(5);
  if (p.startsWith('/')) return p.slice(1).split('/').map((t) => t.replace(/~1/g, '/').replace(/~0/g, '~'));
  return p.split(/\.|\[(\d+)\]/).filter((t) => t !== undefined && t !== '');
}

function setAt(obj, path, value) {
  let at = obj;
  path.forEach((key, i) => {
    const last = i === path.length - 1;
    const k = Array.isArray(at) ? Number(key) : key;
    if (last) {
      if (at[k] === undefined) at[k] = value;
      return;
    }
    if (at[k] === null || typeof at[k] !== 'object') at[k] = /^\d+$/.test(path[i + 1]) ? [] : {};
    at = at[k];
  });
}

// The leaf conditions of a `when` that a request must meet for it to match: all of `all`, the
// first of `any`; a `not` is left out (nothing to add makes it hold).
function conditions(when) {
  if (!when || typeof when !== 'object') return [];
  if (Array.isArray(when.all)) return when.all.flatMap(conditions);
  if (Array.isArray(when.any)) return conditions(when.any[0]);
  if (when.not) return [];
  return when.field ? [when] : [];
}

// A value that meets one condition, or undefined when none can be made up (a regex, a CIDR).
function satisfying(c) {
  const op = c.op || 'equals';
  if (op === 'equals') return c.value;
  if (op === 'in') return Array.isArray(c.value) ? c.value[0] : undefined;
  if (op === 'exists') return c.value === false ? undefined : '<value>';
  if (op === 'gte' || op === 'lte') return c.value;
  if (op === 'gt') return Number(c.value) + 1;
  if (op === 'lt') return Number(c.value) - 1;
  if (op === 'not_equals') return `<not ${c.value}>`;
  return undefined;
}

// Every {"from_request": FIELD} and {"from": "body", "pointer": P} in `v` (config, rules' `set`).
function requestSources(v, out = []) {
  if (Array.isArray(v)) v.forEach((x) => requestSources(x, out));
  else if (v && typeof v === 'object') {
    if (typeof v.from_request === 'string') out.push(v.from_request);
    else if (v.from === 'body' && typeof v.pointer === 'string') out.push(`body:${v.pointer}`);
    else Object.values(v).forEach((x) => requestSources(x, out));
  }
  return out;
}

// What a test request needs for this receiver to act: the body fields, headers and query
// parameters its first "run" rule compares (and the values that ignore rules before it must not
// see), and the fields its config and rules read values from. Values it cannot make up (a regex,
// a value read from the body) are <placeholders>.
export function sampleRequest(r) {
  const rules = r.rules && typeof r.rules === 'object' ? r.rules : {};
  const body = {};
  const headers = {};
  const queryParams = {};
  let needed = false;
  const want = (field, value) => {
    const path = bodyPath(field);
    if (value === undefined) value = `<${path && path.length ? path[path.length - 1] : field.replace(/^[a-z]+:/, '')}>`;
    if (path && path.length) { setAt(body, path, value); needed = true; }
    else if (field.startsWith('header:')) headers[field.slice(7)] = String(value);
    else if (field.startsWith('query:')) queryParams[field.slice(6)] = String(value);
  };
  const list = Array.isArray(rules.rules) ? rules.rules : [];
  for (const rule of list) {
    if (rule.then === 'ignore') {
      // An ignore rule of one comparison: send the value that keeps it from matching.
      const c = rule.when && rule.when.field ? rule.when : null;
      if (c && (c.op === 'not_equals')) want(c.field, c.value);
      continue;
    }
    for (const c of conditions(rule.when)) want(c.field, satisfying(c));
    break;
  }
  for (const field of requestSources([r.config, list.map((x) => x.set)])) want(field, undefined);
  return { body, needed, headers, query: queryParams };
}

// An Alertmanager v4 notification (what the "alertmanager" preset reads), merged with the fields
// the receiver's own rules compare.
function alertmanagerBody(extra) {
  const now = new Date().toISOString();
  const base = {
    version: '4', status: 'firing', receiver: 'tripline', groupKey: `curl-test-${Date.now()}`,
    groupLabels: {}, commonLabels: { alertname: 'TriplineTest' }, commonAnnotations: {},
    alerts: [{ status: 'firing', labels: { alertname: 'TriplineTest' }, annotations: {}, fingerprint: 'curl-test', startsAt: now }],
  };
  const merge = (to, from) => {
    for (const [k, v] of Object.entries(from)) {
      if (v && typeof v === 'object' && to[k] && typeof to[k] === 'object') merge(to[k], v);
      else to[k] = v;
    }
  };
  merge(base, extra);
  return base;
}

// A curl command that works for this receiver as configured: a plain POST, plus the credential,
// an Alertmanager-shaped body when its rules use that preset, and the body fields, headers and
// query parameters its rules and value sources read.
export function curlCommand(r) {
  const parts = ['curl -X POST'];
  const auth = authOf(r);
  if (auth.bearer_token) parts.push(`-H ${q('Authorization: Bearer <the bearer token>')}`);
  else if (auth.basic_username) parts.push(`-u ${q(`${auth.basic_username}:<the password>`)}`);
  const sample = sampleRequest(r);
  for (const [name, value] of Object.entries(sample.headers)) parts.push(`-H ${q(`${name}: ${value}`)}`);
  let body = null;
  if (isAlertmanager(r)) body = alertmanagerBody(sample.body);
  else if (sample.needed) body = sample.body;
  if (body) parts.push(`-H ${q('Content-Type: application/json')}`, `-d ${q(JSON.stringify(body))}`);
  const qs = new URLSearchParams(sample.query).toString();
  parts.push(q(qs ? `${r.trigger_url}${r.trigger_url.includes('?') ? '&' : '?'}${qs}` : r.trigger_url));
  return parts.length === 2 ? parts.join(' ') : parts.join(' \\\n  ');
}

// Alertmanager POSTs again when an alert resolves (send_resolved). Only a receiver that reads
// Alertmanager's payload (the "alertmanager" rules preset) tells that POST from a firing one;
// any other would run its action a second time, so the snippet turns it off and says why.
export function alertmanagerYaml(r) {
  const auth = authOf(r);
  const am = isAlertmanager(r);
  const lines = [
    'receivers:',
    `  - name: 'tripline-${r.name.replace(/[^A-Za-z0-9_.-]+/g, '-')}'`,
    '    webhook_configs:',
    `      - url: '${r.trigger_url.replace(/'/g, "''")}'`,
  ];
  if (am) {
    lines.push('        send_resolved: true');
  } else {
    lines.push(
      '        # false: this receiver does not read Alertmanager\'s',
      '        # payload, so the POST sent when an alert resolves',
      '        # would run the action again. Set its rules to',
      '        # {"preset": "alertmanager"} to have it ignored.',
      '        send_resolved: false',
    );
  }
  if (auth.bearer_token) {
    lines.push('        http_config:', '          authorization:', "            credentials: '<the bearer token>'");
  } else if (auth.basic_username) {
    lines.push('        http_config:', '          basic_auth:', `            username: '${String(auth.basic_username).replace(/'/g, "''")}'`,
      "            password: '<the password>'");
  }
  return lines.join('\n');
}

// Said under the snippets when a plain request would be refused.
function requestNotes(r) {
  const auth = authOf(r);
  const signed = ['github_secret', 'standard_webhooks_secret', 'link_secret'].filter((k) => auth[k]);
  const notes = [];
  if (signed.length) {
    const names = { github_secret: 'GitHub (X-Hub-Signature-256)', standard_webhooks_secret: 'Standard Webhooks', link_secret: 'Link' };
    notes.push(`Requests must be signed (${signed.map((k) => names[k]).join(', ')}): the sender computes the signature over the body, so the curl command alone is refused.`);
  }
  if (Array.isArray(auth.allow_sources) && auth.allow_sources.length) notes.push(`Only requests from ${auth.allow_sources.join(', ')} are accepted.`);
  if (auth.bearer_token || auth.basic_username) notes.push('Replace the <placeholders> with the credential you set; tripline only stores a hash of it.');
  const sample = sampleRequest(r);
  if (sample.needed || Object.keys(sample.headers).length || Object.keys(sample.query).length) {
    notes.push('The curl command sends what this receiver’s rules compare and the values it reads from the request; replace any <placeholder> in it with a real value.');
  }
  return notes.length ? h('div', { class: 'alert alert-info small' }, notes.map((n) => h('p', {}, n))) : null;
}

// What Alertmanager's second POST (when the alert resolves) will do to this receiver.
function alertmanagerNote(r) {
  const route = h('code', {}, `receiver: 'tripline-${r.name.replace(/[^A-Za-z0-9_.-]+/g, '-')}'`);
  if (isAlertmanager(r)) {
    const onResolved = r.rules.on_resolved || 'ignore';
    const what = { ignore: 'are ignored', inverse: 'run the opposite action', run: 'run the action again' }[onResolved] || `are handled as "${onResolved}"`;
    return h('p', { class: 'muted small' }, 'Route alerts to it with ', route, '. This receiver reads Alertmanager payloads: resolved alerts ', what, '.');
  }
  return h('p', { class: 'muted small' }, 'Route alerts to it with ', route, '. The snippet sets ', h('code', {}, 'send_resolved: false'),
    ': this receiver does not read Alertmanager payloads, so the POST Alertmanager sends when an alert resolves would run the action a second time. ',
    'To have resolved alerts ignored (or undo the action) instead, set the rules to ',
    h('code', {}, '{"preset": "alertmanager"}'), ' under Edit › Advanced, then turn send_resolved on.');
}

function stateBadge(r) {
  return r.enabled ? badge('Enabled', 'enabled') : badge('Disabled', 'disabled');
}

function lastExecution(r) {
  const e = r.last_execution;
  if (!e) return h('span', { class: 'muted' }, 'Never run');
  return h('a', { href: `#/executions?receiver=${r.id}`, class: 'last-exec', 'aria-label': `Last execution: ${e.status}, see executions of ${r.name}` },
    statusBadge(e), h('span', { class: 'last-exec-time' }, timeEl(e.finished_at || e.started_at || e.created_at)));
}

// --- actions (shared by the list and a receiver's page) --------------------------------------

async function toggleEnabled(r) {
  if (r.enabled) {
    // Disabling revokes: the URL in use never works again, even after an enable.
    const ok = await confirmDialog({
      title: `Disable ${r.name}?`,
      body: [
        h('p', {}, h('strong', {}, 'Its current trigger URL stops working for good'),
          ' (it answers 401). Enabling the receiver later issues a new URL.'),
        h('p', { class: 'muted' }, 'To hold executions for a while without changing URLs, pause the workers instead.'),
      ],
      confirmLabel: 'Disable receiver',
      danger: true,
    });
    if (!ok) return null;
  }
  const updated = await api.setEnabled(r.id, !r.enabled);
  announce(updated.enabled
    ? `${r.name} is enabled: its trigger URL below works.`
    : `${r.name} is disabled: its old trigger URL is revoked, and the new one answers 403 until you enable it.`, 'ok');
  return updated;
}

async function rotate(r) {
  const ok = await confirmDialog({
    title: `Rotate the trigger URL of ${r.name}?`,
    body: [
      h('p', {}, 'tripline issues a new trigger URL. ',
        h('strong', {}, 'The current URL stops working at once'),
        ' (it answers 401): update Alertmanager, scripts and CI jobs that use it.'),
      h('p', { class: 'muted' }, 'Use this when a URL may have leaked.'),
    ],
    confirmLabel: 'Rotate URL',
    danger: true,
  });
  if (!ok) return null;
  const updated = await api.rotate(r.id);
  announce(`New trigger URL for ${r.name}; the old one no longer works.`, 'ok', { toast: true });
  return updated;
}

async function remove(r) {
  const ok = await confirmDialog({
    title: `Delete ${r.name}?`,
    body: [
      h('p', {}, 'Its trigger URL stops working at once. Past executions stay in the history.'),
      h('p', {}, 'This cannot be undone.'),
    ],
    confirmLabel: 'Delete receiver',
    danger: true,
  });
  if (!ok) return false;
  await api.deleteReceiver(r.id);
  announce(`Deleted ${r.name}.`, 'ok', { toast: true, survive: true });
  return true;
}

function actionButtons(r, { onChange, onError, onDeleted, compact }) {
  // Not `disabled` while busy: a disabled button drops focus, and focus must go back to it when
  // a confirmation dialog closes.
  const run = (fn) => async (ev) => {
    const btn = ev.currentTarget;
    if (btn.getAttribute('aria-disabled') === 'true') return;
    btn.setAttribute('aria-disabled', 'true');
    try {
      await fn();
    } catch (err) {
      onError(err);
    } finally {
      btn.removeAttribute('aria-disabled');
    }
  };
  const toggle = async () => { const u = await toggleEnabled(r); if (u) onChange(u); };
  const rotateIt = async () => { const u = await rotate(r); if (u) onChange(u); };
  const removeIt = async () => { if (await remove(r)) onDeleted(r); };
  if (compact) {
    return h('div', { class: 'actions actions-compact', role: 'group', 'aria-label': `Actions for ${r.name}` },
      h('a', { href: `#/receivers/${r.id}/edit`, class: 'btn btn-small', dataset: { focusKey: `edit-${r.id}` } }, 'Edit'),
      actionsMenu(r, [
        { label: 'Clone', href: `#/receivers/${r.id}/clone` },
        { label: r.enabled ? 'Disable' : 'Enable', action: toggle },
        { label: 'Rotate URL', action: rotateIt },
        { label: 'Delete', action: removeIt, danger: true },
      ], run));
  }
  return h('div', { class: 'actions', role: 'group', 'aria-label': `Actions for ${r.name}` },
    h('a', { href: `#/receivers/${r.id}/edit`, class: 'btn', dataset: { focusKey: `edit-${r.id}` } }, 'Edit'),
    h('a', { href: `#/receivers/${r.id}/clone`, class: 'btn', dataset: { focusKey: `clone-${r.id}` } }, 'Clone'),
    h('button', {
      type: 'button', class: 'btn', dataset: { focusKey: `toggle-${r.id}`, action: 'toggle' }, onclick: run(toggle),
    }, r.enabled ? 'Disable' : 'Enable'),
    h('button', {
      type: 'button', class: 'btn', dataset: { focusKey: `rotate-${r.id}`, action: 'rotate' }, onclick: run(rotateIt),
    }, 'Rotate URL'),
    h('button', {
      type: 'button', class: 'btn btn-danger-outline', dataset: { focusKey: `delete-${r.id}`, action: 'delete' }, onclick: run(removeIt),
    }, 'Delete'));
}

// A row's less frequent actions behind one "More" button: the ARIA menu button pattern
// (aria-haspopup, aria-expanded; arrows, Home and End move, Escape and Tab close, focus goes back
// to the button). A chosen action runs after the menu closes, with focus on the button, so a
// confirmation dialog returns focus there too.
function actionsMenu(r, items, run) {
  const menuId = `menu-${r.id}`;
  const button = h('button', {
    type: 'button', class: 'btn btn-small menu-button', id: `${menuId}-button`, 'aria-haspopup': 'menu',
    'aria-expanded': 'false', 'aria-controls': menuId, 'aria-label': `More actions for ${r.name}`,
    dataset: { focusKey: `more-${r.id}` },
  }, 'More ', h('span', { 'aria-hidden': 'true' }, '▾'));
  const entries = items.map((it) => h(it.href ? 'a' : 'button', {
    role: 'menuitem', tabIndex: -1, class: `menu-item${it.danger ? ' menu-item-danger' : ''}`,
    href: it.href || null, type: it.href ? null : 'button', dataset: { action: it.label },
  }, it.label));
  const menu = h('div', { role: 'menu', id: menuId, class: 'menu', 'aria-labelledby': `${menuId}-button`, hidden: true }, entries);
  const wrap = h('div', { class: 'menu-wrap' }, button, menu);

  const isOpen = () => !menu.hidden;
  const onOutside = (ev) => { if (!wrap.contains(ev.target)) close(false); };
  const onMove = () => close(false); // fixed to the viewport: a scroll or resize would detach it
  // Under the button, right edges aligned, kept on screen; above it when there is no room below.
  function place() {
    const b = button.getBoundingClientRect();
    const w = menu.offsetWidth;
    const ht = menu.offsetHeight;
    const below = b.bottom + 4 + ht <= window.innerHeight || b.top - 4 - ht < 0;
    menu.style.top = `${below ? b.bottom + 4 : b.top - 4 - ht}px`;
    menu.style.left = `${Math.max(8, Math.min(b.right - w, window.innerWidth - w - 8))}px`;
  }
  function open(focusLast = false) {
    menu.hidden = false;
    place();
    button.setAttribute('aria-expanded', 'true');
    entries[focusLast ? entries.length - 1 : 0].focus({ preventScroll: true });
    document.addEventListener('pointerdown', onOutside, true);
    window.addEventListener('scroll', onMove, true);
    window.addEventListener('resize', onMove);
  }
  function close(focusButton = true) {
    if (!isOpen()) return;
    menu.hidden = true;
    button.setAttribute('aria-expanded', 'false');
    document.removeEventListener('pointerdown', onOutside, true);
    window.removeEventListener('scroll', onMove, true);
    window.removeEventListener('resize', onMove);
    if (focusButton) button.focus();
  }
  button.addEventListener('click', () => (isOpen() ? close() : open()));
  button.addEventListener('keydown', (ev) => {
    if (ev.key === 'ArrowDown' || ev.key === 'ArrowUp') {
      ev.preventDefault();
      open(ev.key === 'ArrowUp');
    }
  });
  menu.addEventListener('keydown', (ev) => {
    const i = entries.indexOf(document.activeElement);
    const move = { ArrowDown: i + 1, ArrowUp: i - 1, Home: 0, End: entries.length - 1 }[ev.key];
    if (move !== undefined) {
      ev.preventDefault();
      entries[(move + entries.length) % entries.length].focus({ preventScroll: true });
    } else if (ev.key === 'Escape') {
      ev.preventDefault();
      ev.stopPropagation();
      close();
    } else if (ev.key === 'Tab') {
      close(false);
    }
  });
  items.forEach((it, i) => {
    if (it.href) {
      entries[i].addEventListener('click', () => close(false));
      return;
    }
    const act = run(it.action);
    entries[i].addEventListener('click', () => {
      close();
      // `run` marks its event's target busy: the menu button, where focus now is.
      act({ currentTarget: button });
    });
  });
  return wrap;
}

// A table cell with one wrapper inside, so the stacked (phone) layout has exactly two grid
// items per cell: the label (::before) and the content.
export function cell(label, cls, ...children) {
  return h('td', { 'data-label': label, class: cls || null }, h('div', { class: 'cell' }, ...children));
}

// --- the list --------------------------------------------------------------------------------

const SORTS = {
  name: { label: 'Name (A–Z)', cmp: (a, b) => a.name.localeCompare(b.name) },
  recent: {
    label: 'Last execution (newest first)',
    cmp: (a, b) => lastRunAt(b) - lastRunAt(a) || a.name.localeCompare(b.name),
  },
  driver: { label: 'Driver', cmp: (a, b) => a.driver.localeCompare(b.driver) || a.name.localeCompare(b.name) },
  state: { label: 'Disabled first', cmp: (a, b) => Number(a.enabled) - Number(b.enabled) || a.name.localeCompare(b.name) },
};

function lastRunAt(r) {
  const e = r.last_execution;
  return e ? Date.parse(e.created_at) || 0 : 0;
}

// Search: every word must appear in the name, description, target or driver (case ignored).
export function matchesSearch(r, text) {
  const words = text.toLowerCase().split(/\s+/).filter(Boolean);
  if (!words.length) return true;
  const hay = [r.name, r.description, r.target, r.driver].filter(Boolean).join(' ').toLowerCase();
  return words.every((w) => hay.includes(w));
}

export async function receiversView(main, { drivers, refreshReceivers, query }) {
  const errorBox = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
  const loading = h('p', { class: 'loading', role: 'status' }, 'Loading receivers…');
  const body = h('div', { 'aria-busy': 'true' });
  const more = h('p', { class: 'muted small', hidden: true });
  // Search and sort, kept in the URL (so a view can be linked) without re-rendering the page.
  const searchInput = h('input', {
    id: 'receiver-search', type: 'search', name: 'q', autocomplete: 'off', spellcheck: false,
    'aria-describedby': 'receiver-search-help', 'aria-controls': 'receivers-body',
  });
  searchInput.value = (query && query.get('q')) || '';
  const sortSelect = h('select', { id: 'receiver-sort', name: 'sort', 'aria-controls': 'receivers-body' },
    Object.entries(SORTS).map(([v, s]) => h('option', { value: v }, s.label)));
  sortSelect.value = SORTS[query && query.get('sort')] ? query.get('sort') : 'name';
  const matchCount = h('p', { class: 'muted small', id: 'receiver-count', role: 'status' });
  const tools = h('form', { class: 'list-tools', role: 'search', 'aria-label': 'Search and sort receivers', hidden: true, onsubmit: (e) => e.preventDefault() },
    h('div', { class: 'field field-search' },
      h('label', { for: 'receiver-search', class: 'field-label' }, 'Search receivers'),
      h('p', { class: 'visually-hidden', id: 'receiver-search-help' }, 'By name, description, target or driver.'),
      searchInput),
    h('div', { class: 'field field-sort' }, h('label', { for: 'receiver-sort', class: 'field-label' }, 'Sort by'), sortSelect),
    matchCount);
  body.id = 'receivers-body';
  let all = [];
  const onTools = () => {
    const q = new URLSearchParams();
    if (searchInput.value.trim()) q.set('q', searchInput.value.trim());
    if (sortSelect.value !== 'name') q.set('sort', sortSelect.value);
    const qs = q.toString();
    history.replaceState(null, '', `#/receivers${qs ? `?${qs}` : ''}`);
    draw(all);
  };
  searchInput.addEventListener('input', onTools);
  sortSelect.addEventListener('change', onTools);
  add(main, 
    h('div', { class: 'page-head' },
      h('h1', { tabIndex: -1 }, 'Receivers'),
      h('a', { href: '#/receivers/new', class: 'btn btn-primary' }, 'New receiver')),
    h('p', { class: 'lead' }, 'A receiver turns a POST to its trigger URL into one action, such as scaling a service up by 2 within bounds.'),
    errorBox, loading, tools, body, more);

  let lastSig = '';
  const showError = (err) => {
    if (err.status === 401) return;
    errorBox.hidden = false;
    errorBox.textContent = err.message;
  };

  function draw(everything) {
    all = everything;
    const search = searchInput.value.trim();
    const list = everything.filter((r) => matchesSearch(r, search)).sort(SORTS[sortSelect.value].cmp);
    const sig = JSON.stringify([search, sortSelect.value, list]);
    if (sig === lastSig) return;
    // Not under an open row menu: the next poll draws it.
    if (body.querySelector('.menu:not([hidden])')) return;
    lastSig = sig;
    const focusKey = document.activeElement && body.contains(document.activeElement)
      ? document.activeElement.dataset.focusKey : null;
    loading.hidden = true;
    body.setAttribute('aria-busy', 'false');
    clear(body);
    tools.hidden = everything.length === 0;
    const counted = search ? `${list.length} of ${everything.length} receivers match.` : '';
    if (matchCount.textContent !== counted) matchCount.textContent = counted;
    if (!list.length && everything.length) {
      body.append(h('div', { class: 'empty' },
        h('p', { class: 'empty-title' }, `No receiver matches “${search}”.`),
        h('button', {
          type: 'button', class: 'btn', dataset: { focusKey: 'clear-search' },
          onclick: () => { searchInput.value = ''; onTools(); searchInput.focus(); },
        }, 'Clear the search')));
      return;
    }
    if (!list.length) {
      body.append(h('div', { class: 'empty' },
        h('p', { class: 'empty-title' }, 'No receivers yet.'),
        h('p', {}, 'Create one, and you get a trigger URL to paste into Alertmanager, a script or CI.'),
        h('a', { href: '#/receivers/new', class: 'btn btn-primary', dataset: { focusKey: 'empty-new' } }, 'Create your first receiver')));
      return;
    }
    const rows = list.map((r) => {
      // null for a token that is not an admin's: a trigger URL is a capability (docs/security.md).
      const urlCode = r.trigger_url ? h('code', { class: 'url', title: r.trigger_url }, r.trigger_url) : null;
      const driverTitle = drivers.get(r.driver)?.config_schema?.title;
      return h('tr', { dataset: { id: r.id, name: r.name }, class: r.enabled ? '' : 'is-disabled' },
        cell('State', '', stateBadge(r)),
        cell('Receiver', 'cell-name',
          h('div', { class: 'name-line' },
            h('a', { href: `#/receivers/${r.id}`, class: 'receiver-name', dataset: { focusKey: `name-${r.id}` } }, r.name),
            h('span', { class: 'chip', title: driverTitle ? `Driver: ${driverTitle}` : 'Driver' },
              h('span', { class: 'visually-hidden' }, 'driver '), r.driver)),
          h('div', { class: 'description' }, r.description)),
        cell('Last execution', '', lastExecution(r)),
        cell('Trigger URL', 'cell-url',
          urlCode ? h('div', { class: 'url-row' }, urlCode, copyButton(() => r.trigger_url, `trigger URL of ${r.name}`, urlCode))
            : h('span', { class: 'muted small' }, 'Shown to admins only')),
        cell('Actions', 'cell-actions',
          actionButtons(r, { compact: true, onChange: () => update(), onError: showError, onDeleted: () => update() })));
    });
    body.append(h('div', { class: 'table-wrap' }, h('table', { class: 'table table-receivers' },
      h('caption', { class: 'visually-hidden' }, 'Receivers'),
      h('thead', {}, h('tr', {},
        ['State', 'Receiver', 'Last execution', 'Trigger URL', 'Actions'].map((t) => h('th', { scope: 'col' }, t)))),
      h('tbody', {}, rows))));
    if (focusKey) {
      const again = body.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
      if (again) again.focus();
      else main.querySelector('h1').focus();
    }
  }

  async function update() {
    try {
      const list = await refreshReceivers();
      errorBox.hidden = true;
      draw([...list.values()]);
      more.hidden = !(list.total > list.size);
      more.textContent = `Showing the first ${list.size} of ${list.total} receivers.`;
    } catch (err) {
      loading.hidden = true;
      showError(err);
    }
  }
  const stop = poll(update, LIST_POLL_MS);
  return stop;
}

// --- a receiver's page -----------------------------------------------------------------------

function configList(r, schema) {
  const rows = [];
  const walk = (obj, prefix, schemaAt) => {
    const propsAt = (schemaAt && schemaAt.properties) || {};
    const known = propertyOrder(schemaAt).filter((k) => k in (obj || {}));
    const keys = [...known, ...Object.keys(obj || {}).filter((k) => !known.includes(k))];
    for (const k of keys) {
      const v = obj[k];
      const s = propsAt[k] || {};
      const label = s.title || k;
      if (v && typeof v === 'object' && !Array.isArray(v) && s.properties) {
        walk(v, `${prefix}${label} › `, s);
      } else {
        const shown = typeof v === 'object' ? JSON.stringify(v) : String(v);
        rows.push(h('dt', {}, `${prefix}${label}`), h('dd', {}, v === MASK ? h('span', { class: 'muted' }, '******** (stored, hidden)') : shown));
      }
    }
  };
  walk(r.config, '', schema || {});
  return rows;
}

function dryRunResult(res) {
  if (!res.ok) {
    return h('div', { class: 'alert alert-error' },
      h('p', {}, h('strong', {}, 'The dry run failed: '), res.error || 'the driver could not plan this action.'),
      res.retryable ? h('p', {}, 'This looks temporary (the target may be unreachable); a real trigger would be retried.') : null);
  }
  const lines = changeLines(res.plan);
  return h('div', { class: 'alert alert-ok' },
    h('p', {}, h('strong', {}, 'Dry run: nothing was changed. '), 'If triggered now, it would:'),
    lines.length ? h('ul', { class: 'plan-lines' }, lines.map((l) => h('li', {}, l))) : null,
    h('details', {}, h('summary', {}, 'The full plan'), h('pre', { class: 'json' }, h('code', {}, JSON.stringify(res.plan, null, 2)))));
}

export async function receiverView(main, { id, query, drivers, receivers, navigate, refreshReceivers }) {
  const loading = h('p', { class: 'loading', role: 'status' }, 'Loading receiver…');
  add(main, loading);
  let r;
  try {
    r = await api.receiver(id);
  } catch (err) {
    loading.remove();
    if (err.status === 401) return null;
    add(main, 
      h('div', { class: 'page-head' }, h('h1', { tabIndex: -1 }, err.status === 404 ? 'Receiver not found' : 'Could not load the receiver')),
      h('div', { class: 'alert alert-error', role: 'alert' }, err.status === 404 ? 'There is no receiver with this id: it may have been deleted.' : err.message),
      h('p', {}, h('a', { href: '#/receivers', class: 'btn' }, 'Back to receivers')));
    return null;
  }
  loading.remove();
  const driver = drivers.get(r.driver);
  const schema = driver && driver.config_schema;
  const errorBox = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
  const showError = (err) => {
    if (err.status === 401) return;
    errorBox.hidden = false;
    errorBox.textContent = err.message;
  };

  const head = h('div');
  const trigger = h('section', { class: 'card', 'aria-labelledby': 'sec-trigger' });
  const settings = h('section', { class: 'card', 'aria-labelledby': 'sec-settings' });

  function drawHead() {
    add(clear(head), 
      h('p', { class: 'crumbs' }, h('a', { href: '#/receivers' }, '← Receivers')),
      h('div', { class: 'receiver-head' },
        h('h1', { tabIndex: -1 }, r.name, ' ', stateBadge(r)),
        h('p', { class: 'lead description' }, r.description),
        actionButtons(r, {
          onChange: (u) => { r = u; dismissNotices(); redraw(); },
          onError: showError,
          onDeleted: () => navigate('#/receivers'),
        })),
      r.enabled ? null : h('div', { class: 'alert alert-warn' }, 'This receiver is disabled: its trigger URL answers 403 until you enable it.'));
  }

  function drawTrigger() {
    if (!r.trigger_url) {
      add(clear(trigger),
        h('h2', { id: 'sec-trigger' }, 'Trigger it'),
        h('p', {}, 'A trigger URL runs this receiver\'s action, so only an admin token sees it. Sign in with an admin token to copy it.'));
      return;
    }
    add(clear(trigger), 
      h('h2', { id: 'sec-trigger' }, 'Trigger it'),
      h('p', {}, 'Send a POST to this URL from anything that can make a web request. No other credential is needed, so treat it like a password; rotate it if it leaks.'),
      copyBlock('Trigger URL', r.trigger_url, { testid: 'trigger-url' }),
      copyBlock('curl command', curlCommand(r), { testid: 'curl', multiline: curlCommand(r).includes('\n') }),
      copyBlock('Alertmanager receiver (alertmanager.yml)', alertmanagerYaml(r), { multiline: true, testid: 'alertmanager' }),
      requestNotes(r),
      alertmanagerNote(r),
      h('p', { class: 'muted small' }, 'To keep the token out of proxy logs, POST to ', h('code', {}, '/_webhooks/trigger'),
        ' with the token in an ', h('code', {}, 'X-Tripline-Token'), ' header instead.'));
  }

  function drawSettings() {
    add(clear(settings), 
      h('h2', { id: 'sec-settings' }, 'Settings'),
      h('dl', { class: 'kv' },
        h('dt', {}, 'Driver'), h('dd', {}, schema?.title ? `${schema.title} (${r.driver})` : r.driver),
        h('dt', {}, 'Target'), h('dd', {}, h('code', {}, r.target)),
        configList(r, schema),
        ['rules', 'auth', 'limits'].filter((k) => r[k] && Object.keys(r[k]).length).map((k) => [
          h('dt', {}, { rules: 'Rules', auth: 'Inbound auth', limits: 'Limits' }[k]),
          h('dd', {}, h('details', {}, h('summary', {}, 'Set through the API'),
            h('pre', { class: 'json' }, h('code', {}, JSON.stringify(r[k], null, 2)))))]),
        h('dt', {}, 'URL generation'), h('dd', {}, String(r.generation)),
        h('dt', {}, 'Created'), h('dd', {}, timeEl(r.created_at)),
        h('dt', {}, 'Changed'), h('dd', {}, timeEl(r.updated_at))));
  }

  function redraw() {
    const hadFocus = document.activeElement && main.contains(document.activeElement) ? document.activeElement.dataset.focusKey : null;
    drawHead();
    drawTrigger();
    drawSettings();
    if (hadFocus) {
      const again = main.querySelector(`[data-focus-key="${CSS.escape(hadFocus)}"]`);
      if (again) again.focus();
    }
    refreshReceivers().catch(() => {});
  }

  const testBtn = h('button', { type: 'button', class: 'btn btn-primary', id: 'send-test' }, 'Send test (dry run)');
  const testOut = h('div', { class: 'test-result', 'aria-live': 'polite' });
  testBtn.addEventListener('click', async () => {
    testBtn.disabled = true;
    add(clear(testOut), h('p', { class: 'loading' }, 'Asking the driver what it would do…'));
    try {
      const res = await api.test(r.id);
      add(clear(testOut), dryRunResult(res));
    } catch (err) {
      add(clear(testOut), h('div', { class: 'alert alert-error' }, `The dry run could not be sent: ${err.message}`));
    } finally {
      testBtn.disabled = false;
    }
  });

  const execBox = h('div');
  const notifyBox = h('div');
  const requestsBox = h('div');
  const banner = query.get('created') ? h('div', { class: 'alert alert-ok', role: 'status', tabIndex: -1 },
    h('strong', {}, 'Receiver created. '), 'Copy its trigger URL below into Alertmanager, a script or CI.')
    : query.get('saved') === 'new-url' ? h('div', { class: 'alert alert-ok', role: 'status', tabIndex: -1 },
      h('strong', {}, 'Saved. '), 'The trigger URL changed with this edit: update the places that use the old one.')
      : query.get('saved') ? h('div', { class: 'alert alert-ok', role: 'status', tabIndex: -1 },
        h('strong', {}, 'Saved. '), 'The trigger URL is unchanged.')
        : null;
  // Saved with "Save anyway": the peer was not asked whether the target exists.
  const unchecked = query.get('unchecked') ? h('div', { class: 'alert alert-warn', role: 'status' },
    h('strong', {}, 'Saved without checking the target: '),
    'tripline could not reach its system when you saved. Press Send test once it is up; the first trigger fails, and says why, if the target does not exist.')
    : null;

  // After an action on this page (rotate, disable, enable), the "Created"/"Saved" banner and the
  // last dry run describe a receiver that no longer exists as shown: they go, and the URL loses
  // its ?saved= so a reload does not bring the banner back.
  function dismissNotices() {
    if (banner) banner.remove();
    if (unchecked) unchecked.remove();
    clear(testOut);
    if (location.hash.includes('?')) history.replaceState(null, '', `#/receivers/${r.id}`);
  }

  // The rules tester needs an operator (docs/security.md "Roles"): a read-only token, which would
  // only be refused, does not get it, nor "Test rules" on the requests.
  const testerCard = can('operator') ? rulesTesterCard({ receiverId: r.id, preset: r.rules?.preset },
    'Runs a sample request through this receiver\'s rules, as a trigger would: which rule matches, what each compared, what it would run with. Nothing is recorded or run. "Test rules" on a request below fills it with that request.') : null;

  drawHead();
  drawTrigger();
  drawSettings();
  add(main, head, banner, unchecked, errorBox,
    h('div', { class: 'grid-2' },
      trigger,
      h('div', {},
        h('section', { class: 'card', 'aria-labelledby': 'sec-test' },
          h('h2', { id: 'sec-test' }, 'Send test'),
          h('p', {}, 'Asks the driver what this receiver would do right now, without doing it.'),
          testBtn, testOut),
        settings)),
    testerCard && testerCard.el,
    h('section', { class: 'card', 'aria-labelledby': 'sec-exec' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'sec-exec' }, 'Recent executions'),
        h('a', { href: `#/executions?receiver=${r.id}` }, 'All executions of this receiver')),
      execBox),
    h('section', { class: 'card', 'aria-labelledby': 'sec-requests' },
      h('h2', { id: 'sec-requests' }, 'Requests'),
      h('p', { class: 'muted small' }, 'Every request its trigger URL got, newest first, and what came of it: why a request was ignored or refused. Open one for its headers and body.'),
      requestsBox),
    h('section', { class: 'card', 'aria-labelledby': 'sec-notify' },
      h('h2', { id: 'sec-notify' }, 'Notifications'),
      notifyBox));
  const notifications = mountDeliveries(notifyBox, r.id);
  const requestLog = mountRequests(requestsBox, r.id, { tester: testerCard && testerCard.tester });
  // From an entry's page, "Test rules with this request" (requests.js testHref).
  if (testerCard && query.get('test_request')) testLoggedRequest(testerCard.tester, r.id, query.get('test_request'));
  const mounted = mountExecutions(execBox, {
    receiverId: r.id, receivers, showReceiver: false, limit: 10, caption: `Recent executions of ${r.name}`,
    emptyText: () => [h('p', { class: 'empty-title' }, 'Not triggered yet.'),
      h('p', {}, 'Run the curl command above, or press Send test to see what it would do first.')],
  });
  return { stop: () => { mounted.stop(); notifications.stop(); requestLog.stop(); }, focus: banner };
}
