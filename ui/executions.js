// Executions: a live list (polled every 2 s while the tab is visible), filtered by receiver and
// status, newest first. Used by the Executions page and, smaller, by a receiver's page.

import { api, canOperate } from './api.js';
import { h, add, clear, badge, timeEl, duration, changeLines, absoluteTime, announce } from './dom.js';

export const STATUSES = ['queued', 'running', 'succeeded', 'failed'];
const POLL_MS = 2000;

// Calls fn now and every `ms` while the document is visible; returns a stop function.
export function poll(fn, ms) {
  let timer = null;
  let stopped = false;
  let running = false;
  const tick = async () => {
    timer = null;
    if (stopped) return;
    if (document.visibilityState === 'visible' && !running) {
      running = true;
      try { await fn(); } finally { running = false; }
    }
    if (!stopped && document.visibilityState === 'visible') timer = setTimeout(tick, ms);
  };
  const onVisibility = () => {
    if (document.visibilityState === 'visible' && !timer && !stopped) tick();
  };
  document.addEventListener('visibilitychange', onVisibility);
  tick();
  return () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    document.removeEventListener('visibilitychange', onVisibility);
  };
}

function ms(a, b) {
  const x = Date.parse(a);
  const y = Date.parse(b);
  return Number.isNaN(x) || Number.isNaN(y) ? null : y - x;
}

function cell(label, cls, ...children) {
  return h('td', { 'data-label': label, class: cls || null }, h('div', { class: 'cell' }, ...children));
}

// A succeeded execution whose driver changed nothing (result.changed false: the service was
// already at the bound, the record already held the value). It is shown neutral, not as a
// change, and runs of them collapse into one row ("×5").
export function isNoop(e) {
  return e.status === 'succeeded' && Boolean(e.result) && e.result.changed === false;
}

// The status badge, neutral ("no change") for a no-op.
export function statusBadge(e) {
  return isNoop(e) ? h('span', { class: 'badge badge-noop', title: 'Succeeded without changing anything' }, 'no change') : badge(e.status);
}

function noopText(res) {
  if ('replicas_after' in res) return `No change: already at ${res.replicas_after} replicas${res.clamped ? ' (the bound)' : ''}`;
  if ('after' in res) return `No change: ${res.name || 'the value'} already ${typeof res.after === 'object' ? JSON.stringify(res.after) : res.after}`;
  return 'No change: already in that state';
}

// One line a person can read: what happened, or why not.
export function outcome(e) {
  if (isNoop(e)) return h('span', { class: 'outcome outcome-noop' }, noopText(e.result));
  if (e.status === 'succeeded') {
    const lines = changeLines(e.result);
    return h('span', { class: 'outcome outcome-ok' }, lines.length ? lines.join('; ') : 'Done');
  }
  if (e.status === 'failed') return h('span', { class: 'outcome outcome-bad' }, e.error || 'Failed');
  if (e.status === 'running') {
    const lines = changeLines(e.plan);
    return h('span', { class: 'outcome' }, lines.length ? `Applying: ${lines.join('; ')}` : 'Running…');
  }
  if (e.error) {
    const next = e.attempts + 1;
    return h('span', { class: 'outcome outcome-warn' },
      `Will retry${e.max_attempts ? ` (attempt ${next} of ${e.max_attempts})` : ''}`,
      e.next_attempt_at ? [' ', whenNext(e.next_attempt_at)] : null, `: ${e.error}`);
  }
  return h('span', { class: 'outcome muted' }, 'Waiting for a worker…');
}

// "2 of 8": the tries made and the tries it gets (max_attempts, the server's --max-attempts).
// A queued execution waiting for its retry is on the next one: "attempt 5 of 8" in its outcome.
function attemptsText(e) {
  return e.max_attempts ? `${e.attempts} of ${e.max_attempts}` : String(e.attempts);
}

// "at 14:05:31 (in 20 s)": the clock time of a coming retry, and how far off it is.
function whenNext(iso) {
  const t = new Date(iso);
  if (Number.isNaN(t.getTime())) return iso;
  const sameDay = t.toDateString() === new Date().toDateString();
  return [`at ${sameDay ? t.toLocaleTimeString() : t.toLocaleString()} (`, timeEl(iso), ')'];
}

function timings(e) {
  const parts = [];
  const wait = ms(e.created_at, e.started_at);
  const took = ms(e.started_at, e.finished_at);
  if (took !== null) parts.push(`took ${duration(took)}`);
  if (wait !== null && wait >= 1000) parts.push(`started after ${duration(wait)}`);
  return parts.join(', ');
}

// Each failed attempt's error (the API keeps them: docs/api.md "Executions"), so a retry that
// succeeded still shows why the attempts before it failed.
function failedAttempts(e) {
  const list = e.attempt_errors || [];
  if (!list.length) return null;
  return [h('dt', {}, 'Failed attempts'),
    h('dd', {}, h('ol', { class: 'attempt-errors' }, list.map((a) =>
      h('li', { dataset: { attempt: a.attempt } }, `#${a.attempt}`,
        a.at ? [' ', timeEl(a.at)] : null, `: ${a.error}`))))];
}

function details(e, open, onToggle) {
  const raw = { plan: e.plan, result: e.result, error: e.error, attempt_errors: e.attempt_errors };
  const d = h('details', { class: 'exec-details', open },
    h('summary', { dataset: { focusKey: `details-${e.id}` } }, 'Details'),
    h('dl', { class: 'kv' },
      h('dt', {}, 'Created'), h('dd', {}, absoluteTime(e.created_at)),
      h('dt', {}, 'Started'), h('dd', {}, e.started_at ? absoluteTime(e.started_at) : '—'),
      h('dt', {}, 'Finished'), h('dd', {}, e.finished_at ? absoluteTime(e.finished_at) : '—'),
      e.next_attempt_at ? [h('dt', {}, 'Next attempt'), h('dd', {}, absoluteTime(e.next_attempt_at))] : null,
      failedAttempts(e)),
    h('pre', { class: 'json' }, h('code', {}, JSON.stringify(raw, null, 2))));
  d.addEventListener('toggle', () => onToggle(e.id, d.open));
  return d;
}

function receiverCell(e, receivers) {
  const r = receivers.get(e.receiver_id);
  // A deleted receiver's executions keep its name (the API's receiver_name, as it was when
  // deleted); "#id" only for those deleted before tripline kept names.
  if (e.receiver_deleted || (!r && !e.receiver_name)) {
    return h('span', { class: 'muted deleted-receiver' }, e.receiver_name || `#${e.receiver_id}`,
      ' ', h('span', { class: 'badge badge-disabled' }, 'deleted'));
  }
  return h('a', { href: `#/receivers/${e.receiver_id}`, dataset: { focusKey: `recv-${e.id}` } }, r ? r.name : e.receiver_name);
}

// Consecutive no-op executions of one receiver with the same outcome, as [[e, ...], ...] in
// the list's order; every other execution is a group of one.
export function groupRepeats(items) {
  const groups = [];
  for (const e of items) {
    const last = groups[groups.length - 1];
    const prev = last && last[0];
    if (prev && isNoop(e) && isNoop(prev) && prev.receiver_id === e.receiver_id
        && noopText(prev.result) === noopText(e.result)) last.push(e);
    else groups.push([e]);
  }
  return groups;
}

// Cancel for a queued execution (waiting for a worker or for its retry), Re-run for a failed
// one: operators and admins only (a read-only token gets neither).
function actionButtons(e, act) {
  if (!act) return null;
  if (e.status === 'queued') {
    return h('button', {
      type: 'button', class: 'btn btn-small exec-cancel', 'aria-label': `Cancel execution ${e.id}`,
      dataset: { focusKey: `cancel-${e.id}` }, onclick: (ev) => act(e, 'cancel', ev.currentTarget),
    }, 'Cancel');
  }
  if (e.status === 'failed') {
    return h('button', {
      type: 'button', class: 'btn btn-small exec-rerun', 'aria-label': `Re-run execution ${e.id}`,
      dataset: { focusKey: `rerun-${e.id}` }, onclick: (ev) => act(e, 'retry', ev.currentTarget),
    }, 'Re-run');
  }
  return null;
}

// Renders the table body rows for `items` into `table` (keeping open details, expanded
// repeats and focus).
function renderRows(tbody, items, { receivers, showReceiver, openIds, expanded, redraw, act }) {
  const focusKey = document.activeElement && tbody.contains(document.activeElement)
    ? document.activeElement.dataset.focusKey : null;
  clear(tbody);
  const onToggle = (id, isOpen) => { if (isOpen) openIds.add(id); else openIds.delete(id); };
  const row = (e, extra = {}) => h('tr', { dataset: { id: e.id, status: e.status }, class: `exec-row${isNoop(e) ? ' is-noop' : ''}${extra.cls || ''}` },
    cell('Execution', '', h('span', { class: 'mono' }, `#${e.id}`), extra.repeat || null),
    showReceiver ? cell('Receiver', '', receiverCell(e, receivers)) : null,
    cell('Status', '', statusBadge(e)),
    cell('Attempts', 'num', attemptsText(e)),
    cell('When', '', timeEl(e.created_at), h('div', { class: 'muted small' }, timings(e))),
    cell('Outcome', 'cell-outcome', outcome(e), extra.toggle || null, actionButtons(e, act),
      details(e, openIds.has(e.id), onToggle)));
  for (const group of groupRepeats(items)) {
    const [first, ...rest] = group;
    if (!rest.length) {
      tbody.append(row(first));
      continue;
    }
    const open = expanded.has(first.id);
    const toggle = h('button', {
      type: 'button', class: 'btn btn-small btn-link repeat-toggle', 'aria-expanded': String(open),
      dataset: { focusKey: `repeat-${first.id}` },
      onclick: () => { if (open) expanded.delete(first.id); else expanded.add(first.id); redraw(); },
    }, open ? 'Hide the repeats' : `Show all ${group.length}`);
    tbody.append(row(first, {
      cls: ' has-repeats',
      repeat: h('span', { class: 'repeat-count', title: `${group.length} executions in a row with this outcome` },
        `×${group.length}`, h('span', { class: 'visually-hidden' }, ` (${group.length} executions in a row with this outcome)`)),
      toggle,
    }));
    if (open) for (const e of rest) tbody.append(row(e, { cls: ' is-repeat' }));
  }
  if (focusKey) {
    const again = tbody.querySelector(`[data-focus-key="${CSS.escape(focusKey)}"]`);
    if (again) again.focus();
  }
}

// Mounts a live executions list into `container`. Options: receiverId, status, limit,
// showReceiver, receivers (Map id -> receiver), emptyText. Returns { stop, refresh }.
export function mountExecutions(container, opts) {
  const openIds = new Set();
  const expanded = new Set(); // groups of repeats shown in full, by their newest execution's id
  let items = [];
  let nextBefore = null;
  let older = []; // pages loaded with "Show older", kept while polling the newest page
  let lastSig = '';
  let loadedOnce = false;
  let act = null; // set once the token is known to be an operator's or an admin's

  const status = h('p', { class: 'muted small live-status', 'aria-live': 'off' });
  const errorBox = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
  const thead = h('thead', {}, h('tr', {},
    h('th', { scope: 'col', class: 'col-id' }, 'Execution'),
    opts.showReceiver ? h('th', { scope: 'col', class: 'col-receiver' }, 'Receiver') : null,
    h('th', { scope: 'col', class: 'col-status' }, 'Status'),
    h('th', { scope: 'col', class: 'num col-attempts' }, 'Attempts'),
    h('th', { scope: 'col', class: 'col-when' }, 'When'),
    h('th', { scope: 'col' }, 'Outcome')));
  const tbody = h('tbody');
  const table = h('table', { class: 'table table-exec' },
    h('caption', { class: 'visually-hidden' }, opts.caption || 'Executions, newest first'), thead, tbody);
  const empty = h('div', { class: 'empty', hidden: true });
  const loading = h('p', { class: 'loading', role: 'status' }, 'Loading executions…');
  const moreBtn = h('button', { type: 'button', class: 'btn', hidden: true }, 'Show older');
  const tableWrap = h('div', { class: 'table-wrap', hidden: true }, table);
  const wrap = h('div', { class: 'exec-list', 'aria-busy': 'true' }, errorBox, loading, empty, tableWrap, moreBtn, status);
  container.append(wrap);

  function draw() {
    const all = [...items, ...older.filter((o) => !items.some((i) => i.id === o.id))];
    const sig = JSON.stringify(all) + opts.receivers.size + Boolean(act);
    if (sig === lastSig) return;
    lastSig = sig;
    loading.hidden = true;
    wrap.setAttribute('aria-busy', 'false');
    tableWrap.hidden = all.length === 0;
    empty.hidden = all.length !== 0;
    if (all.length === 0) {
      add(clear(empty), opts.emptyText());
    }
    renderRows(tbody, all, {
      receivers: opts.receivers, showReceiver: opts.showReceiver, openIds, expanded,
      redraw: () => { lastSig = ''; draw(); },
      act,
    });
    moreBtn.hidden = !(older.length ? olderNext : nextBefore);
  }

  let olderNext = null;
  // "Show older" pages were loaded below an earlier newest page. Executions accepted since push
  // the newest page's oldest rows out of it: fetched here, between it and the older pages, so
  // the list has no gap. Over a few pages of them, the older pages start again from the newest.
  async function fillGap() {
    const top = older[0].id; // the newest of the older pages (newest first)
    const between = [];
    let before = nextBefore;
    for (let n = 0; before && before > top + 1; n++) {
      if (n === 5) {
        older = [];
        olderNext = nextBefore;
        return;
      }
      const page = await api.executions({ receiverId: opts.receiverId, status: opts.status, limit: opts.limit || 50, before });
      between.push(...page.items.filter((e) => e.id > top));
      before = page.items.some((e) => e.id <= top) ? null : page.next_before;
    }
    if (between.length) older = [...between, ...older];
  }

  async function refresh() {
    try {
      const page = await api.executions({ receiverId: opts.receiverId, status: opts.status, limit: opts.limit || 50 });
      items = page.items;
      nextBefore = page.next_before;
      if (!older.length) olderNext = nextBefore;
      else await fillGap();
      errorBox.hidden = true;
      loadedOnce = true;
      status.textContent = `Live: updated ${new Date().toLocaleTimeString()}, every ${POLL_MS / 1000} s while this tab is open.`;
      draw();
    } catch (err) {
      if (err.status === 401) return;
      errorBox.hidden = false;
      errorBox.textContent = `Could not load executions: ${err.message}`;
      if (!loadedOnce) {
        loading.hidden = true;
        wrap.setAttribute('aria-busy', 'false');
      }
      status.textContent = 'Retrying every 2 s…';
    }
  }

  moreBtn.addEventListener('click', async () => {
    const before = older.length ? olderNext : nextBefore;
    if (!before) return;
    moreBtn.disabled = true;
    try {
      const page = await api.executions({ receiverId: opts.receiverId, status: opts.status, limit: opts.limit || 50, before });
      older = [...older, ...page.items];
      olderNext = page.next_before;
      lastSig = '';
      draw();
      if (!olderNext) moreBtn.hidden = true;
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = `Could not load older executions: ${err.message}`;
    } finally {
      moreBtn.disabled = false;
    }
  });

  async function perform(e, kind, btn) {
    btn.disabled = true;
    try {
      if (kind === 'cancel') {
        await api.cancelExecution(e.id);
        announce(`Execution ${e.id} cancelled: it will not run.`, 'ok', { toast: true });
      } else {
        const made = await api.retryExecution(e.id);
        announce(`Execution ${e.id} re-run as execution ${made.execution_id}.`, 'ok', { toast: true });
      }
      errorBox.hidden = true;
      await refresh();
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = `Could not ${kind === 'cancel' ? 'cancel' : 're-run'} execution ${e.id}: ${err.message}`;
      btn.disabled = false;
    }
  }
  canOperate().then((yes) => {
    if (!yes) return;
    act = perform;
    if (loadedOnce) draw();
  });

  const stop = poll(refresh, POLL_MS);
  return { stop, refresh };
}

// The Executions page: filters (kept in the URL, so a view can be linked) and the live list.
export async function executionsView(main, { query, receivers, navigate }) {
  const receiverId = Number(query.get('receiver')) || null;
  const status = STATUSES.includes(query.get('status')) ? query.get('status') : '';

  const recvSelect = h('select', { id: 'filter-receiver', name: 'receiver' },
    h('option', { value: '' }, 'All receivers'),
    [...receivers.values()].sort((a, b) => a.name.localeCompare(b.name))
      .map((r) => h('option', { value: String(r.id) }, r.name)));
  if (receiverId && !receivers.has(receiverId)) recvSelect.append(h('option', { value: String(receiverId) }, `#${receiverId} (deleted)`));
  recvSelect.value = receiverId ? String(receiverId) : '';
  const statusSelect = h('select', { id: 'filter-status', name: 'status' },
    h('option', { value: '' }, 'Any status'), STATUSES.map((s) => h('option', { value: s }, s)));
  statusSelect.value = status;

  const onFilter = () => {
    const q = new URLSearchParams();
    if (recvSelect.value) q.set('receiver', recvSelect.value);
    if (statusSelect.value) q.set('status', statusSelect.value);
    const qs = q.toString();
    navigate(`#/executions${qs ? `?${qs}` : ''}`, { replace: true, keepFocus: true });
  };
  recvSelect.addEventListener('change', onFilter);
  statusSelect.addEventListener('change', onFilter);

  const filtered = Boolean(receiverId || status);
  add(main, 
    h('div', { class: 'page-head' },
      h('h1', { tabIndex: -1 }, 'Executions')),
    h('p', { class: 'lead' }, 'Every POST to a trigger URL, newest first. A worker plans the change, then applies it.'),
    h('form', { class: 'filters', role: 'search', 'aria-label': 'Filter executions', onsubmit: (e) => e.preventDefault() },
      h('div', { class: 'field' }, h('label', { for: 'filter-receiver', class: 'field-label' }, 'Receiver'), recvSelect),
      h('div', { class: 'field' }, h('label', { for: 'filter-status', class: 'field-label' }, 'Status'), statusSelect),
      filtered ? h('a', { href: '#/executions', class: 'btn btn-link' }, 'Clear filters') : null));

  const listBox = h('div');
  add(main, listBox);
  const mounted = mountExecutions(listBox, {
    receiverId, status, receivers, showReceiver: !receiverId, limit: 50,
    emptyText: () => (filtered
      ? h('p', {}, 'No executions match these filters.')
      : [h('p', { class: 'empty-title' }, 'Nothing has run yet.'),
        h('p', {}, 'POST a receiver’s trigger URL and its execution appears here within a moment.'),
        h('a', { href: '#/receivers', class: 'btn' }, 'Go to receivers')]),
  });
  return () => mounted.stop();
}
