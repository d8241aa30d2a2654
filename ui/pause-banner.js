// The banner every screen shows while the workers are paused: since when, by whom (operator and
// admin tokens only: the API leaves it out for read-only), how many executions wait, and Resume
// for tokens that may resume. Polls GET /api/v1/workers every POLL_MS while the tab is visible,
// and at once on navigation and after a pause or resume (refreshPauseBanner).

import { opsApi, can } from './api.js';
import { h, add, clear, announce, timeEl, absoluteTime } from './dom.js';

const POLL_MS = 10000;

let el = null;
let timer = null;
let seq = 0;
const listeners = new Set();

function ensureElement() {
  if (el && el.isConnected) return el;
  el = h('div', { id: 'pause-banner', class: 'pause-banner', role: 'status', hidden: true });
  document.querySelector('.topbar').after(el);
  return el;
}

function queueText(w) {
  const parts = [`${w.queued} queued`];
  if (w.running) parts.push(`${w.running} running`);
  if (w.retrying) parts.push(`${w.retrying} waiting to retry`);
  return parts.join(', ');
}

function draw(w) {
  const banner = ensureElement();
  if (!w || !w.paused) {
    banner.hidden = true;
    clear(banner);
    return;
  }
  const resume = can('operator')
    ? h('button', { type: 'button', class: 'btn btn-small', id: 'banner-resume' }, 'Resume')
    : null;
  if (resume) {
    resume.addEventListener('click', async () => {
      resume.disabled = true;
      try {
        await opsApi.resumeWorkers();
        announce('Workers resumed: queued executions run now.', 'ok');
      } catch (err) {
        if (err.status !== 401) announce(`Could not resume: ${err.message}`, 'warn', { toast: true });
      }
      refreshPauseBanner();
    });
  }
  const since = w.paused_at
    ? [' since ', h('span', { title: absoluteTime(w.paused_at) }, absoluteTime(w.paused_at)), ' (', timeEl(w.paused_at), ')']
    : [];
  add(clear(banner),
    h('div', { class: 'pause-banner-inner' },
      h('p', { class: 'pause-banner-text' },
        h('strong', {}, 'Workers paused'), since,
        w.paused_by ? [' by ', h('strong', {}, w.paused_by)] : null,
        '; ', h('span', { class: 'pause-banner-queue' }, queueText(w)), '. ',
        h('span', { class: 'muted-on-warn' }, 'Triggers are still accepted and wait to run.')),
      resume));
  banner.hidden = false;
}

// Asks the API now and redraws. Safe to call often: answers older than the newest are dropped.
export async function refreshPauseBanner() {
  const mine = ++seq;
  try {
    const w = await opsApi.workers();
    if (mine !== seq) return;
    draw(w);
    for (const fn of listeners) fn(w);
  } catch (err) {
    // Keep what is shown: a transient error should not hide a pause. Sign-out clears it.
    if (err.status === 401) stopPauseBanner();
  }
}

// Called with each GET /workers answer (the operations page keeps its counts fresh with it).
export function onWorkers(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

export function startPauseBanner() {
  stopPauseBanner();
  refreshPauseBanner();
  timer = setInterval(() => {
    if (document.visibilityState === 'visible') refreshPauseBanner();
  }, POLL_MS);
}

export function stopPauseBanner() {
  if (timer) clearInterval(timer);
  timer = null;
  seq++;
  if (el) {
    el.hidden = true;
    clear(el);
  }
}
