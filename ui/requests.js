// A receiver's request log (docs/requests-log.md), "why didn't it fire?": every trigger request
// that named it, newest first, with what came of it and why (the rule and the values it
// compared, the check that refused it, the limit that held it). Mounted on a receiver's page
// like the notifications (deliveries.js) and polled every 3 s while the tab is visible; one
// entry's page (#/receivers/ID/requests/RID) shows its redacted headers, the start of its body,
// the answer, the execution it made, and Redeliver (operators and admins).

import { api, canOperate } from './api.js';
import { h, add, clear, badge, timeEl, absoluteTime, announce } from './dom.js';
import { poll } from './executions.js';

const POLL_MS = 3000;

const OUTCOMES = {
  accepted: ['accepted', 'succeeded'],
  ignored: ['ignored', 'disabled'],
  refused: ['refused', 'failed'],
  rate_limited: ['rate limited', 'queued'],
  cooling_down: ['cooling down', 'queued'],
  queue_full: ['queue full', 'queued'],
  malformed: ['malformed', 'failed'],
  unavailable: ['unavailable', 'failed'],
};

const CHECKS = {
  signature: 'the signature check',
  credential: 'the credential check',
  source: 'the allowed sources check',
  replay: 'the timestamp (replay) check',
  revoked: 'the trigger URL check: this URL was replaced',
  disabled: 'the enabled check: the receiver is disabled',
};

export function outcomeBadge(e) {
  const [text, kind] = OUTCOMES[e.outcome] || [e.outcome, 'disabled'];
  return badge(text, kind);
}

function show(v) {
  if (v === undefined) return '';
  return typeof v === 'string' ? `"${v}"` : JSON.stringify(v);
}

// The rule's place and name: rule #2 "critical only" (the API's index counts from 0).
function ruleText(rule) {
  if (!rule) return '';
  return `rule #${rule.index + 1}${rule.name ? ` “${rule.name}”` : ''}`;
}

// What each compared field held, against what the rule asked.
export function comparedList(detail) {
  const list = (detail && detail.compared) || [];
  if (!list.length) return null;
  return h('ul', { class: 'compared' }, list.map((c) => h('li', { class: 'compared-item' },
    h('code', {}, c.field || ''), ` ${c.op || 'equals'} ${show(c.value)}: was `,
    h('code', { class: 'compared-actual' }, c.actual === undefined || c.actual === null ? '(missing)' : show(c.actual)),
    c.matched === undefined ? null : h('span', { class: 'muted small' }, c.matched ? ' (matched)' : ' (did not match)'))),
  detail.compared_left_out ? h('li', { class: 'muted small' }, `${detail.compared_left_out} more not kept`) : null);
}

// One line a person can read: why it came out this way.
export function reasonText(e) {
  const d = e.detail || {};
  switch (e.outcome) {
    case 'accepted':
      if (d.duplicate) return 'A repeat of an earlier request (same Idempotency-Key): no new execution';
      return d.rule ? `Run by ${ruleText(d.rule)}` : 'Accepted: an execution was queued';
    case 'ignored':
      // A rule's own message only repeats its name.
      return d.rule ? `Ignored by ${ruleText(d.rule)}` : (d.message || 'Ignored');
    case 'refused':
      return `Refused by ${CHECKS[d.check] || `the ${d.check || 'inbound'} check`}${d.message ? `: ${d.message}` : ''}`;
    case 'cooling_down':
      return d.message || (d.cooldown_s ? `Cooling down (${d.cooldown_s} s between runs)` : 'Cooling down');
    default:
      return d.message || e.error || e.outcome;
  }
}

// Why a logged request cannot be redelivered (null: it can). The server says the same (409).
export function whyNotRedeliver(e) {
  if (e.outcome === 'refused') return 'Refused requests are never redelivered: a replay skips the checks that refused it.';
  if (e.outcome === 'malformed' && e.error === 'bad_idempotency_key') return 'It was turned away before its credentials were checked, so it is never redelivered.';
  if (e.token_redacted) return 'The trigger token was taken out of its body or headers: what the log kept is not what was sent.';
  if (e.body_truncated) return `The log kept only the start of its ${e.body_size}-byte body, so it cannot be sent again as it was.`;
  return null;
}

function requestHref(rid, id) {
  return `#/receivers/${rid}/requests/${id}`;
}

function cell(label, cls, ...children) {
  return h('td', { 'data-label': label, class: cls || null }, h('div', { class: 'cell' }, ...children));
}

function row(rid, e) {
  return h('tr', { class: 'request-row', dataset: { id: e.id, outcome: e.outcome } },
    cell('When', '', h('a', { href: requestHref(rid, e.id), 'aria-label': `Request ${e.id}` }, `#${e.id}`), ' ', timeEl(e.received_at),
      e.replay_of ? h('div', { class: 'muted small replay-mark' }, `replay of #${e.replay_of}`) : null),
    cell('Outcome', 'cell-outcome', outcomeBadge(e),
      h('div', { class: 'request-reason' }, reasonText(e)), comparedList(e.detail)),
    cell('Source', 'mono small', e.source),
    cell('Answer', 'num', String(e.status)));
}

// Mounts receiver `rid`'s request log into `container`; returns { stop, refresh }.
export function mountRequests(container, rid, { limit = 20 } = {}) {
  const errorBox = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
  const filter = h('select', { id: `requests-outcome-${rid}`, name: 'outcome' },
    h('option', { value: '' }, 'Any outcome'),
    Object.entries(OUTCOMES).map(([k, [text]]) => h('option', { value: k }, text)));
  const tbody = h('tbody');
  const table = h('table', { class: 'table table-requests' },
    h('caption', { class: 'visually-hidden' }, 'Trigger requests, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', class: 'col-when' }, 'When'),
      h('th', { scope: 'col' }, 'Outcome'),
      h('th', { scope: 'col', class: 'col-source' }, 'Source'),
      h('th', { scope: 'col', class: 'num col-answer' }, 'Answer'))),
    tbody);
  const empty = h('p', { class: 'muted' }, 'No requests logged yet. Every POST to its trigger URL appears here with what came of it.');
  const off = h('p', { class: 'muted', hidden: true }, 'The request log is off on this server (--request-log 0).');
  const wrap = h('div', { class: 'table-wrap' }, table);
  add(container, errorBox,
    h('div', { class: 'filters' }, h('div', { class: 'field' },
      h('label', { for: filter.id, class: 'field-label' }, 'Outcome'), filter)),
    off, empty, wrap);
  let lastSig = '';

  async function refresh() {
    let page;
    try {
      page = await api.requests(rid, { outcome: filter.value, limit });
    } catch (err) {
      if (err.status === 401) return;
      errorBox.hidden = false;
      errorBox.textContent = `Could not load the request log: ${err.message}`;
      return;
    }
    errorBox.hidden = true;
    const sig = JSON.stringify(page);
    if (sig === lastSig) return;
    lastSig = sig;
    off.hidden = page.enabled !== false;
    empty.hidden = page.items.length !== 0 || page.enabled === false;
    wrap.hidden = page.items.length === 0;
    add(clear(tbody), page.items.map((e) => row(rid, e)));
  }
  filter.addEventListener('change', () => { lastSig = ''; refresh(); });

  const stop = poll(refresh, POLL_MS);
  return { stop, refresh };
}

function headersTable(headers) {
  if (!headers.length) return h('p', { class: 'muted small' }, 'No headers.');
  return h('div', { class: 'table-wrap' }, h('table', { class: 'table table-headers' },
    h('caption', { class: 'visually-hidden' }, 'Request headers, secrets redacted'),
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Header'), h('th', { scope: 'col' }, 'Value'))),
    h('tbody', {}, headers.map(([n, v]) => h('tr', { class: 'header-row' },
      h('td', { class: 'mono' }, n), h('td', { class: `mono${v === '[redacted]' ? ' muted' : ''}` }, v))))));
}

function bodyBlock(e) {
  if (!e.body_size) return h('p', { class: 'muted small' }, 'Empty body.');
  let text = e.body;
  try {
    text = JSON.stringify(JSON.parse(e.body), null, 2);
  } catch { /* not JSON (or cut): shown as kept */ }
  return [
    h('pre', { class: 'json request-body' }, h('code', {}, text)),
    h('p', { class: 'muted small' }, `${e.body_size} bytes`,
      e.body_truncated ? `; the first ${new TextEncoder().encode(e.body).length} kept` : '',
      e.token_redacted ? '; the trigger token was taken out ([redacted])' : ''),
  ];
}

// The page of one logged request: #/receivers/RID/requests/ID.
export async function requestView(main, { id, requestId, receivers, navigate }) {
  const [e, operate] = await Promise.all([api.request(id, requestId), canOperate()]);
  // A receiver made since the list was loaded is asked for.
  const r = receivers.get(id) || await api.receiver(id).catch(() => null);
  const name = r ? r.name : `Receiver ${id}`;
  const errorBox = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
  const why = whyNotRedeliver(e);
  let actions = null;
  if (!operate) {
    actions = h('p', { class: 'muted small' }, 'Redelivering a request needs an operator or admin token.');
  } else {
    const btn = h('button', { type: 'button', class: 'btn btn-primary', disabled: Boolean(why), 'aria-describedby': why ? 'redeliver-why' : null }, 'Redeliver');
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try {
        const made = await api.redeliverRequest(id, e.id);
        announce(`Redelivered as request #${made.id}: ${OUTCOMES[made.outcome]?.[0] || made.outcome}.`, 'ok', { toast: true, survive: true });
        navigate(requestHref(id, made.id));
      } catch (err) {
        errorBox.hidden = false;
        errorBox.textContent = `Could not redeliver request ${e.id}: ${err.message}`;
        btn.disabled = false;
      }
    });
    actions = h('div', { class: 'actions' }, btn,
      why ? h('p', { id: 'redeliver-why', class: 'muted small' }, why)
        : h('p', { class: 'muted small' }, 'Runs it again through the receiver’s current rules, as a new entry marked as a replay. Its credentials were redacted, so your token authorises it.'));
  }
  const execution = e.execution_id
    ? h('a', { href: `#/executions?receiver=${id}`, class: 'execution-link' }, `execution #${e.execution_id}`)
    : h('span', { class: 'muted' }, 'none');
  add(main,
    h('p', { class: 'crumbs' }, h('a', { href: `#/receivers/${id}` }, `← ${name}`)),
    h('div', { class: 'page-head' }, h('h1', { tabIndex: -1 }, `Request #${e.id}`), outcomeBadge(e)),
    errorBox,
    h('section', { class: 'card', 'aria-labelledby': 'sec-why' },
      h('h2', { id: 'sec-why' }, 'What came of it'),
      h('p', { class: 'request-reason' }, reasonText(e)),
      comparedList(e.detail),
      h('dl', { class: 'kv' },
        h('dt', {}, 'Received'), h('dd', {}, absoluteTime(e.received_at), ' (', timeEl(e.received_at), ')'),
        h('dt', {}, 'From'), h('dd', { class: 'mono' }, e.source),
        h('dt', {}, 'Method'), h('dd', { class: 'mono' }, e.method),
        h('dt', {}, 'Answer'), h('dd', { class: 'request-answer' }, `HTTP ${e.status}`, e.error ? ` ${e.error}` : ''),
        h('dt', {}, 'Execution'), h('dd', {}, execution),
        e.replay_of ? [h('dt', {}, 'Replay of'), h('dd', {}, h('a', { href: requestHref(id, e.replay_of) }, `request #${e.replay_of}`))] : null),
      actions),
    h('section', { class: 'card', 'aria-labelledby': 'sec-headers' },
      h('h2', { id: 'sec-headers' }, 'Headers'),
      h('p', { class: 'muted small' }, 'As received, credentials shown as [redacted]. The query string is not kept.'),
      headersTable(e.headers || [])),
    h('section', { class: 'card', 'aria-labelledby': 'sec-body' },
      h('h2', { id: 'sec-body' }, 'Body'),
      bodyBlock(e)));
  return { stop: () => {} };
}

// For the page title before the entry loads.
export function requestTitle(requestId) {
  return `Request #${requestId}`;
}
