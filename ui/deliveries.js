// A receiver's notifications (docs/webhooks.md): its subscribers, and the deliveries to them,
// each with every attempt (status, latency, the start of the answer) and a Re-send button for
// the ones that are no longer pending. Polled every 3 s while the tab is visible.

import { api } from './api.js';
import { h, add, clear, badge, timeEl, announce } from './dom.js';
import { poll } from './executions.js';

const POLL_MS = 3000;

function subscriptionLine(s) {
  return h('li', { dataset: { subscription: s.id } },
    h('code', {}, s.url), ' ',
    s.enabled ? badge('enabled') : badge('disabled'), ' ',
    h('span', { class: 'muted small' }, `${s.events.join(', ')} · ${s.scheme}`),
    s.disabled_reason ? h('div', { class: 'muted small' }, s.disabled_reason) : null,
    s.dropped ? h('div', { class: 'muted small' }, `${s.dropped} notifications dropped (backlog full)`) : null);
}

function attemptRows(d) {
  if (!d.attempt_log.length) return h('p', { class: 'muted small' }, 'Not tried yet.');
  return h('table', { class: 'table table-attempts' },
    h('caption', { class: 'visually-hidden' }, `Attempts of delivery ${d.id}`),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', class: 'num' }, 'Attempt'),
      h('th', { scope: 'col' }, 'When'),
      h('th', { scope: 'col', class: 'num' }, 'Status'),
      h('th', { scope: 'col', class: 'num' }, 'Latency'),
      h('th', { scope: 'col' }, 'Answer'))),
    h('tbody', {}, d.attempt_log.map((a) => h('tr', { class: 'attempt-row' },
      h('td', { class: 'num' }, String(a.attempt)),
      h('td', {}, timeEl(a.started_at)),
      h('td', { class: 'num' }, a.status === null ? '—' : String(a.status)),
      h('td', { class: 'num' }, `${a.latency_ms} ms`),
      h('td', {}, a.error ? h('div', {}, a.error) : null,
        a.answer ? h('code', { class: 'answer' }, a.answer) : null)))));
}

// Mounts the notifications section of receiver `rid` into `container`; returns { stop }.
export function mountDeliveries(container, rid) {
  const subs = h('ul', { class: 'subscriptions' });
  const errorBox = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
  const tbody = h('tbody');
  const table = h('table', { class: 'table table-deliveries' },
    h('caption', { class: 'visually-hidden' }, 'Deliveries of notifications, newest first'),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Delivery'),
      h('th', { scope: 'col' }, 'Event'),
      h('th', { scope: 'col' }, 'State'),
      h('th', { scope: 'col', class: 'num' }, 'Attempts'),
      h('th', { scope: 'col' }, 'Attempts log'),
      h('th', { scope: 'col' }, ''))),
    tbody);
  const empty = h('p', { class: 'muted' }, 'No notifications sent yet. Subscribers are added through the API (POST /api/v1/receivers/{id}/notifications).');
  const open = new Set();
  let lastSig = '';
  add(container, errorBox, subs, empty, h('div', { class: 'table-wrap' }, table));

  async function resend(d, btn) {
    btn.disabled = true;
    try {
      await api.redeliver(rid, d.id);
      announce(`Delivery ${d.id} will be sent again.`, 'ok', { toast: true });
      await refresh();
    } catch (err) {
      errorBox.hidden = false;
      errorBox.textContent = `Could not re-send delivery ${d.id}: ${err.message}`;
      btn.disabled = false;
    }
  }

  async function refresh() {
    let s;
    let d;
    try {
      [s, d] = await Promise.all([api.subscriptions(rid), api.deliveries(rid)]);
    } catch (err) {
      if (err.status === 401) return;
      errorBox.hidden = false;
      errorBox.textContent = err.message;
      return;
    }
    errorBox.hidden = true;
    const sig = JSON.stringify([s, d]);
    if (sig === lastSig) return;
    lastSig = sig;
    add(clear(subs), s.items.map(subscriptionLine));
    empty.hidden = d.items.length !== 0;
    table.hidden = d.items.length === 0;
    clear(tbody);
    for (const item of d.items) {
      const btn = h('button', { type: 'button', class: 'btn btn-small', disabled: item.state === 'pending' },
        'Re-send');
      btn.setAttribute('aria-label', `Re-send delivery ${item.id}`);
      btn.addEventListener('click', () => resend(item, btn));
      const det = h('details', { open: open.has(item.id) },
        h('summary', {}, `${item.attempt_log.length} shown`), attemptRows(item));
      det.addEventListener('toggle', () => { if (det.open) open.add(item.id); else open.delete(item.id); });
      tbody.append(h('tr', { class: 'delivery-row', dataset: { id: item.id, state: item.state } },
        h('td', {}, h('span', { class: 'mono' }, `#${item.id}`), h('div', { class: 'muted small' }, `execution #${item.execution_id}`)),
        h('td', {}, item.event),
        h('td', {}, badge(item.state, item.state === 'delivered' ? 'succeeded' : item.state === 'pending' ? 'queued' : 'failed'),
          item.last_error ? h('div', { class: 'muted small' }, item.last_error) : null),
        h('td', { class: 'num' }, String(item.attempts)),
        h('td', {}, det),
        h('td', {}, btn)));
    }
  }

  const stop = poll(refresh, POLL_MS);
  return { stop, refresh };
}
