// tripline's web UI: plain ES modules, no build step. Hash routes:
//   #/receivers                 the list          #/receivers/new            create
//   #/receivers/ID              one receiver      #/receivers/ID/edit|clone  edit, clone
//   #/receivers/ID/requests/RID one logged request (requests.js)
//   #/executions?receiver=&status=                the live executions list
//   #/operations                                   workers, admin tokens, peers' health
// Until an admin token is entered (kept in memory only, see api.js) every route shows sign-in.

import { api, signIn, signOut, signedIn, onSignOut } from './api.js';
import { h, add, clear, announce, relativeTime, clearToasts } from './dom.js';
import { receiversView, receiverView } from './receivers.js';
import { receiverFormView } from './receiver-form.js';
import { executionsView } from './executions.js';
import { operationsView } from './operations.js';
import { startPauseBanner, stopPauseBanner, refreshPauseBanner } from './pause-banner.js';
import { requestView, requestTitle } from './requests.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOutBtn = document.getElementById('sign-out');

// Per sign-in caches: the drivers (with their schemas) and the receivers by id.
let drivers = new Map();
let receivers = new Map();
let cleanup = null;
let signInNotice = null;
let renderSeq = 0;

async function refreshReceivers() {
  const page = await api.receivers(500, 0);
  receivers = new Map(page.items.map((r) => [r.id, r]));
  receivers.total = page.total; // more than one page (500) is not drawn; the list says so
  return receivers;
}

function parseRoute() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [pathPart, queryPart = ''] = raw.split('?');
  const parts = pathPart.split('/').filter(Boolean);
  const query = new URLSearchParams(queryPart);
  if (parts.length === 0 || (parts[0] === 'receivers' && parts.length === 1)) return { name: 'receivers', query };
  if (parts[0] === 'receivers' && parts[1] === 'new') return { name: 'form', mode: 'create', query };
  if (parts[0] === 'receivers' && /^\d+$/.test(parts[1])) {
    const id = Number(parts[1]);
    if (parts.length === 2) return { name: 'receiver', id, query };
    if (parts[2] === 'edit' || parts[2] === 'clone') return { name: 'form', mode: parts[2], id, query };
    if (parts[2] === 'requests' && /^\d+$/.test(parts[3] || '') && parts.length === 4) {
      return { name: 'request', id, requestId: Number(parts[3]), query };
    }
  }
  if (parts[0] === 'executions') return { name: 'executions', query };
  if (parts[0] === 'operations') return { name: 'operations', query };
  return { name: 'notfound', query };
}

function navigate(hash, { replace = false, keepFocus = false } = {}) {
  if (replace) {
    history.replaceState(null, '', hash);
    render({ keepFocus });
  } else if (location.hash === hash) {
    render({ keepFocus });
  } else {
    location.hash = hash;
  }
}

function setActiveNav(name) {
  for (const a of nav.querySelectorAll('a[data-nav]')) {
    const on = a.dataset.nav === name || (a.dataset.nav === 'receivers' && (name === 'receiver' || name === 'form' || name === 'request'));
    if (on) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
}

function pageTitle(route) {
  switch (route.name) {
    case 'receivers': return 'Receivers';
    case 'receiver': return receivers.get(route.id)?.name || `Receiver ${route.id}`;
    case 'form': return route.mode === 'create' ? 'New receiver' : route.mode === 'edit' ? 'Edit receiver' : 'Clone receiver';
    case 'executions': return 'Executions';
    case 'operations': return 'Operations';
    case 'request': return requestTitle(route.requestId);
    default: return 'Not found';
  }
}

function signInView() {
  document.title = 'Sign in · tripline';
  const input = h('input', {
    id: 'token', name: 'token', type: 'password', autocomplete: 'off', spellcheck: false, required: true,
    'aria-describedby': 'token-help',
  });
  const error = h('p', { class: 'field-error', id: 'token-error', hidden: true });
  const button = h('button', { type: 'submit', class: 'btn btn-primary btn-block' }, 'Sign in');
  const notice = signInNotice;
  signInNotice = null;
  const form = h('form', { class: 'signin card', noValidate: true, 'aria-labelledby': 'signin-title' },
    h('div', { class: 'signin-brand' }, h('img', { src: 'favicon.svg', alt: '', width: 40, height: 40 }),
      h('h1', { id: 'signin-title', tabIndex: -1 }, 'Sign in to tripline')),
    notice ? h('div', { class: 'alert alert-warn', role: 'status' }, notice) : null,
    h('div', { class: 'field' },
      h('label', { for: 'token', class: 'field-label' }, 'Admin token'),
      h('p', { class: 'field-help', id: 'token-help' },
        'tripline printed one when it first started (or use the value of TRIPLINE_ADMIN_TOKEN). ',
        'It stays in this tab’s memory only: reloading the page or signing out forgets it.'),
      input, error),
    button);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const value = input.value.trim();
    const fail = (msg) => {
      error.hidden = false;
      error.textContent = msg;
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', 'token-error token-help');
      input.focus();
      input.select();
    };
    if (!value) return fail('Paste your admin token.');
    button.disabled = true;
    button.textContent = 'Signing in…';
    try {
      await signIn(value);
      input.value = '';
      const list = await api.drivers();
      drivers = new Map(list.items.map((d) => [d.name, d]));
      await refreshReceivers().catch(() => {});
      document.body.classList.add('signed-in');
      nav.hidden = false;
      startPauseBanner();
      announce('Signed in.', 'ok');
      render({});
    } catch (err) {
      if (err.status === 401) fail('That token was not accepted. Check it and try again.');
      else fail(err.message);
    } finally {
      button.disabled = false;
      button.textContent = 'Sign in';
    }
  });
  add(clear(main), h('div', { class: 'signin-wrap' }, form));
  input.focus();
}

async function render({ keepFocus = false } = {}) {
  const seq = ++renderSeq;
  if (cleanup) {
    try { cleanup(); } catch { /* ignore */ }
    cleanup = null;
  }
  clearToasts();
  if (!signedIn()) {
    document.body.classList.remove('signed-in');
    nav.hidden = true;
    signInView();
    return;
  }
  const route = parseRoute();
  setActiveNav(route.name);
  document.title = `${pageTitle(route)} · tripline`;
  const focusedId = keepFocus && document.activeElement ? document.activeElement.id : null;
  const view = h('div', { class: `view view-${route.name}` });
  add(clear(main), view);
  const ctx = { query: route.query, drivers, receivers, navigate, refreshReceivers, id: route.id, requestId: route.requestId };
  let result = null;
  try {
    if (route.name === 'receivers') result = await receiversView(view, ctx);
    else if (route.name === 'receiver') result = await receiverView(view, ctx);
    else if (route.name === 'request') result = await requestView(view, ctx);
    else if (route.name === 'form') result = await receiverFormView(view, { ...ctx, mode: route.mode });
    else if (route.name === 'executions') {
      await refreshReceivers().catch(() => {});
      result = await executionsView(view, { ...ctx, receivers });
    } else if (route.name === 'operations') {
      result = await operationsView(view, ctx);
    } else {
      add(view, h('h1', { tabIndex: -1 }, 'Page not found'),
        h('p', {}, 'There is nothing at this address. ', h('a', { href: '#/receivers' }, 'Go to the receivers.')));
    }
  } catch (err) {
    if (err.status === 401) return;
    add(view, h('div', { class: 'alert alert-error', role: 'alert' }, err.message));
  }
  const stop = typeof result === 'function' ? result : result && result.stop;
  if (seq !== renderSeq) {
    // Another navigation started while this view loaded: it owns the page now.
    if (stop) stop();
    return;
  }
  cleanup = stop || null;
  if (route.name === 'receiver') document.title = `${pageTitle(route)} · tripline`;
  // Focus: keep it on a filter that changed the route, else move it to the new page's heading
  // (or its notice) so keyboard and screen-reader users start at the top of the new content.
  if (focusedId && document.getElementById(focusedId)) {
    document.getElementById(focusedId).focus();
  } else {
    const target = (result && result.focus) || view.querySelector('h1');
    if (target) target.focus({ preventScroll: false });
    window.scrollTo(0, 0);
  }
}

onSignOut((reason) => {
  stopPauseBanner();
  drivers = new Map();
  receivers = new Map();
  if (reason === 'rejected') signInNotice = 'tripline no longer accepts that token (was it revoked?). Sign in again.';
  else if (reason === 'signed-out') signInNotice = 'Signed out. The token was forgotten.';
  render({});
});

signOutBtn.addEventListener('click', () => signOut('signed-out'));
// Keep "2 min ago" true without re-rendering.
setInterval(() => {
  if (document.visibilityState !== 'visible') return;
  for (const t of main.querySelectorAll('time[datetime]')) t.textContent = relativeTime(t.getAttribute('datetime'));
}, 15000);
window.addEventListener('hashchange', () => {
  if (signedIn()) refreshPauseBanner(); // the pause banner is fresh on every screen
  render({});
});
render({});
