// A receiver's request log (docs/requests-log.md), "why didn't it fire?": every trigger request
// that named it, newest first, with what came of it and why (the rule and the values it
// compared, the check that refused it, the limit that held it). Mounted on a receiver's page
// like the notifications (deliveries.js) and polled every 3 s while the tab is visible; one
// entry's page (#/receivers/ID/requests/RID) shows its redacted headers, the start of its body,
// the answer, the execution it made, and Redeliver (operators and admins). "Test rules" on an
// entry (its row, or its page) runs it through the receiver's rules tester, for operators and
// admins: the tester's API needs one (docs/requests-log.md "In the web UI").

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
      {
        const run = d.rule ? `Run by ${ruleText(d.rule)}` : 'Accepted: an execution was queued';
        // Rebuilt from its execution after tripline stopped (docs/requests-log.md).
        return d.excerpt_lost ? `${run}; its source, headers and body were lost when tripline stopped` : run;
      }
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
  if (e.detail && e.detail.excerpt_lost) return 'Tripline stopped before its headers and body were written: there is nothing to send again.';
  if (e.body_truncated) return `The log kept only the start of its ${e.body_size}-byte body, so it cannot be sent again as it was.`;
  return null;
}

function requestHref(rid, id) {
  return `#/receivers/${rid}/requests/${id}`;
}

// The receiver's page with its rules tester filled from entry `id` and run (receivers.js).
export function testHref(rid, id) {
  return `#/receivers/${rid}?test_request=${encodeURIComponent(id)}`;
}

// The tester's sample from a logged entry (with its headers and body): the headers as logged
// (the first of a repeated name, as a trigger reads them; the "N more headers not kept" line,
// which has no name, left out), the body as kept, the caller's address. The method is POST,
// all a trigger URL accepts; the query string was not kept.
export function testerSample(e) {
  const headers = {};
  let leftOut = 0;
  for (const [name, value] of e.headers || []) {
    if (!name) {
      leftOut = parseInt(value, 10) || 1;
      continue;
    }
    if (!Object.keys(headers).some((k) => k.toLowerCase() === name.toLowerCase())) headers[name] = value;
  }
  return { request: { headers, body: e.body || '', source: e.source || undefined }, headersLeftOut: leftOut };
}

// How the sample differs from what was sent, in words; empty when it is the request as sent
// (but for secret headers and the query string, said in every note).
export function sampleDifferences(e, headersLeftOut = 0) {
  const out = [];
  if (e.token_redacted) out.push('the trigger token was taken out of its body or headers: it reads [redacted] here');
  if (e.body_truncated) out.push(`the log kept only the first ${new TextEncoder().encode(e.body || '').length} of its ${e.body_size} bytes of body`);
  if (headersLeftOut) out.push(`${headersLeftOut} of its headers were not kept`);
  if (e.detail && e.detail.excerpt_lost) out.push('its source, headers and body were lost when tripline stopped: the sample is empty');
  return out;
}

function sampleNote(rid, e, differences) {
  return [
    h('p', { class: 'rt-from' }, 'Filled from ', h('a', { href: requestHref(rid, e.id) }, `request #${e.id}`),
      ', received ', timeEl(e.received_at), ` (${OUTCOMES[e.outcome]?.[0] || e.outcome} then). `,
      h('span', { class: 'muted small' }, 'Secret headers read [redacted] and the query string was not kept: rules on them see that.')),
    differences.length ? h('div', { class: 'alert alert-warn rt-inexact', role: 'status' },
      h('p', {}, h('strong', {}, 'Not the exact request: '), `${differences.join('; ')}. `,
        'The test runs on what the log kept, so its answer may differ from what the trigger decided.')) : null,
  ];
}

// Fills `tester` (rules-tester.js) with receiver `rid`'s logged entry `id` (or the entry
// itself, with headers and body) and runs it; the note above the result says where it came
// from and how it is not the exact request. Brings the tester into view.
export async function testLoggedRequest(tester, rid, entry) {
  let e = entry;
  try {
    if (typeof e !== 'object' || !e.headers) e = await api.request(rid, typeof e === 'object' ? e.id : e);
  } catch (err) {
    if (err.status === 401) return null;
    tester.showNote(h('div', { class: 'alert alert-error', role: 'alert' },
      `Could not load request #${typeof entry === 'object' ? entry.id : entry} to test it: ${err.message}`));
    tester.noteEl.scrollIntoView({ block: 'center' });
    return null;
  }
  const { request, headersLeftOut } = testerSample(e);
  const running = tester.setRequest(request, { run: true, note: sampleNote(rid, e, sampleDifferences(e, headersLeftOut)) });
  tester.noteEl.focus({ preventScroll: true });
  tester.el.closest('section')?.scrollIntoView({ block: 'start' });
  return running;
}

function cell(label, cls, ...children) {
  return h('td', { 'data-label': label, class: cls || null }, h('div', { class: 'cell' }, ...children));
}

function row(rid, e, tester) {
  let test = null;
  if (tester) {
    test = h('button', { type: 'button', class: 'btn btn-small request-test', 'aria-label': `Test rules with request ${e.id}` }, 'Test rules');
    test.addEventListener('click', () => testLoggedRequest(tester, rid, e.id));
  }
  return h('tr', { class: 'request-row', dataset: { id: e.id, outcome: e.outcome } },
    cell('When', '', h('a', { href: requestHref(rid, e.id), 'aria-label': `Request ${e.id}` }, `#${e.id}`), ' ', timeEl(e.received_at),
      e.replay_of ? h('div', { class: 'muted small replay-mark' }, `replay of #${e.replay_of}`) : null),
    cell('Outcome', 'cell-outcome', outcomeBadge(e),
      h('div', { class: 'request-reason' }, reasonText(e)), comparedList(e.detail), test),
    cell('Source', 'mono small', e.source),
    cell('Answer', 'num', String(e.status)));
}

// Mounts receiver `rid`'s request log into `container`; returns { stop, refresh }. With a
// `tester` (rules-tester.js; none for a read-only token) each row has "Test rules".
//
// Paging: one page of `limit` at a time. "Older" shows the page before the last entry shown
// (the API's next_before cursor), "Newer" the one after; the page shown is the one polled, by
// the same cursor, so new requests do not push it along (they are on the first page). One page
// in the DOM, never the whole log; the cursors of the pages passed are kept to go back.
export function mountRequests(container, rid, { limit = 20, tester = null } = {}) {
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
  const newer = h('button', { type: 'button', class: 'btn btn-small requests-newer', hidden: true }, h('span', { 'aria-hidden': 'true' }, '← '), 'Newer');
  const older = h('button', { type: 'button', class: 'btn btn-small requests-older', hidden: true }, 'Older', h('span', { 'aria-hidden': 'true' }, ' →'));
  const pageStatus = h('p', { class: 'muted small requests-page', role: 'status' });
  const pager = h('div', { class: 'pager requests-pager', hidden: true, role: 'group', 'aria-label': 'Pages of requests' }, newer, older, pageStatus);
  add(container, errorBox,
    h('div', { class: 'filters' }, h('div', { class: 'field' },
      h('label', { for: filter.id, class: 'field-label' }, 'Outcome'), filter)),
    off, empty, wrap, pager);
  let lastSig = '';
  let before = 0; // the page shown: entries older than this id (0: the newest)
  const passed = []; // the cursors of the newer pages, to go back
  let next = null; // the API's next_before for the page shown: null, no older page
  let emptyAt = null; // a next_before that "Older" found nothing before: a full last page

  function drawPager(count) {
    const last = !next || emptyAt === next;
    newer.hidden = passed.length === 0;
    older.hidden = passed.length === 0 && !next;
    older.disabled = last;
    const says = [];
    if (passed.length) says.push(`Page ${passed.length + 1} (${count} ${count === 1 ? 'request' : 'requests'}).`);
    if (last && (passed.length || emptyAt)) says.push('There are no older requests in the log.');
    pageStatus.textContent = says.join(' ');
    pager.hidden = newer.hidden && older.hidden && !says.length;
  }

  async function refresh() {
    let page;
    const asked = before;
    try {
      page = await api.requests(rid, { outcome: filter.value, limit, before: asked || undefined });
    } catch (err) {
      if (err.status === 401) return;
      errorBox.hidden = false;
      errorBox.textContent = `Could not load the request log: ${err.message}`;
      return;
    }
    if (asked !== before) return; // the page changed meanwhile: its own load draws it
    // An older page emptied since (pruned: the log keeps the newest N): back to the first.
    if (asked && page.items.length === 0) return firstPage();
    show(page);
  }

  function show(page) {
    errorBox.hidden = true;
    next = page.next_before;
    drawPager(page.items.length);
    const sig = JSON.stringify(page);
    if (sig === lastSig) return;
    lastSig = sig;
    off.hidden = page.enabled !== false;
    empty.hidden = page.items.length !== 0 || page.enabled === false;
    wrap.hidden = page.items.length === 0;
    add(clear(tbody), page.items.map((e) => row(rid, e, tester)));
  }

  function firstPage() {
    passed.length = 0;
    before = 0;
    emptyAt = null;
    lastSig = '';
    return refresh();
  }
  filter.addEventListener('change', () => firstPage());

  older.addEventListener('click', async () => {
    if (!next) return;
    older.disabled = true;
    // A full page with nothing after it still has a next_before: ask before moving.
    let page;
    try {
      page = await api.requests(rid, { outcome: filter.value, limit, before: next });
    } catch (err) {
      if (err.status === 401) return;
      errorBox.hidden = false;
      errorBox.textContent = `Could not load older requests: ${err.message}`;
      older.disabled = false;
      return;
    }
    if (page.items.length === 0) {
      emptyAt = next;
      drawPager(tbody.children.length);
      return;
    }
    passed.push(before);
    before = next;
    show(page);
    container.closest('section')?.scrollIntoView({ block: 'start' });
  });
  newer.addEventListener('click', async () => {
    if (!passed.length) return;
    before = passed.pop();
    emptyAt = null;
    lastSig = '';
    await refresh();
  });

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
  let testing = null;
  if (!operate) {
    actions = h('p', { class: 'muted small' }, 'Redelivering a request needs an operator or admin token. So does testing rules with it.');
  } else {
    const differences = sampleDifferences(e, testerSample(e).headersLeftOut);
    testing = h('div', { class: 'actions' },
      h('a', { href: testHref(id, e.id), class: 'btn request-test' }, 'Test rules with this request'),
      h('p', { class: 'muted small' }, differences.length
        ? `Not the exact request: ${differences.join('; ')}. The test runs on what the log kept.`
        : 'Runs it through the receiver’s rules tester: which rule matches now, and what each compared. Nothing is run.'));
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
      actions, testing),
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
