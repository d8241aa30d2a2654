// The operations page (#/operations): the workers (pause, resume, the queue by state), the
// admin tokens (list; create with a role, the secret shown once; revoke) and the health of
// tripline's peers. What the signed-in token's role may not do is not offered: the API's
// routes.cpp decides, and this page follows GET /api/v1/whoami (api.js can()).

import { opsApi, caller, can, signOut } from './api.js';
import { h, add, clear, announce, badge, timeEl, copyBlock, confirmDialog } from './dom.js';
import { refreshPauseBanner, onWorkers } from './pause-banner.js';

const PEERS_POLL_MS = 10000;

const ROLE_HELP = {
  'read-only': 'sees receivers, executions, deliveries and workers; changes nothing (a dashboard)',
  operator: 'also enables and disables receivers, sends tests, retries, pauses the workers',
  admin: 'everything: receivers, tokens, trigger URLs',
};

function roleNeeded(role, what) {
  return h('p', { class: 'muted small role-note' }, `${what} needs an ${role} token; you are signed in as ${caller()?.role || 'unknown'}.`);
}

// --- workers ------------------------------------------------------------------------------------

function workersCard() {
  const state = h('p', { class: 'workers-state' });
  const counts = h('dl', { class: 'kv workers-counts', 'aria-label': 'Executions by state' });
  const button = can('operator') ? h('button', { type: 'button', class: 'btn', id: 'workers-toggle' }, '…') : null;
  let current = null;
  const draw = (w) => {
    current = w;
    clear(state);
    add(state, badge(w.paused ? 'paused' : 'running', w.paused ? 'queued' : 'succeeded'), ' ',
      w.paused ? 'Executions are held; triggers are still accepted and queued.' : 'Executions run as they come.');
    add(clear(counts),
      h('dt', {}, 'Queued'), h('dd', { dataset: { count: 'queued' } }, String(w.queued)),
      h('dt', {}, 'Running'), h('dd', { dataset: { count: 'running' } }, String(w.running)),
      h('dt', {}, 'Waiting to retry'), h('dd', { dataset: { count: 'retrying' } }, String(w.retrying)));
    if (button) {
      button.textContent = w.paused ? 'Resume workers' : 'Pause workers';
      button.className = w.paused ? 'btn btn-primary' : 'btn';
    }
  };
  if (button) {
    button.addEventListener('click', async () => {
      const pausing = !current || !current.paused;
      if (pausing) {
        const ok = await confirmDialog({
          title: 'Pause the workers?',
          body: [h('p', {}, 'No execution runs until someone resumes them, across restarts too. ',
            'Triggers are still accepted and queued; every screen shows a banner while paused.')],
          confirmLabel: 'Pause workers',
        });
        if (!ok) return;
      }
      button.disabled = true;
      try {
        draw(pausing ? await opsApi.pauseWorkers() : await opsApi.resumeWorkers());
        announce(pausing ? 'Workers paused.' : 'Workers resumed.', 'ok');
      } catch (err) {
        if (err.status !== 401) announce(`Could not ${pausing ? 'pause' : 'resume'}: ${err.message}`, 'warn', { toast: true });
      } finally {
        button.disabled = false;
      }
      refreshPauseBanner();
    });
  }
  const el = h('section', { class: 'card ops-card', 'aria-labelledby': 'ops-workers' },
    h('div', { class: 'section-head' }, h('h2', { id: 'ops-workers' }, 'Workers'), button),
    state, counts,
    button ? null : roleNeeded('operator', 'Pausing or resuming'));
  return { el, draw };
}

// --- tokens -------------------------------------------------------------------------------------

function tokensCard() {
  const body = h('div', { class: 'tokens-body' });
  const secretBox = h('div', { class: 'token-secret', hidden: true, tabIndex: -1 });
  const el = h('section', { class: 'card ops-card', 'aria-labelledby': 'ops-tokens' },
    h('div', { class: 'section-head' }, h('h2', { id: 'ops-tokens' }, 'Admin tokens')),
    h('p', { class: 'muted small' }, 'Who may use the management API and this UI. Only a hash of each token is stored, so a lost token cannot be shown again: create another and revoke the old one.'),
    secretBox, body);

  if (!can('operator')) {
    add(body, roleNeeded('operator', 'Seeing the tokens'));
    return { el, load: async () => {} };
  }

  const showSecret = (made) => {
    const done = h('button', { type: 'button', class: 'btn btn-small' }, 'I have stored it');
    done.addEventListener('click', () => {
      clear(secretBox);
      secretBox.hidden = true;
      document.getElementById('token-name')?.focus();
    });
    add(clear(secretBox),
      h('div', { class: 'alert alert-warn', role: 'alert' },
        h('p', {}, h('strong', {}, `Token “${made.name}” (${made.role}) created. Copy it now: you will not see it again.`),
          ' tripline keeps only its hash; if it is lost, create a new one and revoke this one.'),
        copyBlock('New admin token', made.token, { testid: 'new-token' }),
        done));
    secretBox.hidden = false;
    secretBox.focus();
  };

  let createForm = null;
  if (can('admin')) {
    const name = h('input', { id: 'token-name', name: 'name', type: 'text', required: true, maxLength: 100, autocomplete: 'off', spellcheck: false, 'aria-describedby': 'token-name-help' });
    const role = h('select', { id: 'token-role', name: 'role', 'aria-describedby': 'token-role-help' },
      ['read-only', 'operator', 'admin'].map((r) => h('option', { value: r }, r)));
    role.value = 'operator';
    const roleHelp = h('p', { class: 'field-help', id: 'token-role-help' }, ROLE_HELP.operator);
    role.addEventListener('change', () => { roleHelp.textContent = ROLE_HELP[role.value]; });
    const error = h('p', { class: 'field-error', id: 'token-name-error', hidden: true });
    const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, 'Create token');
    createForm = h('form', { class: 'token-form', noValidate: true, 'aria-label': 'Create an admin token' },
      h('div', { class: 'field' },
        h('label', { for: 'token-name', class: 'field-label' }, 'Name'),
        name, error,
        h('p', { class: 'field-help', id: 'token-name-help' }, 'Who or what uses it, e.g. grafana or night-shift.')),
      h('div', { class: 'field' },
        h('label', { for: 'token-role', class: 'field-label' }, 'Role'),
        role, roleHelp),
      h('div', { class: 'form-actions' }, submit));
    createForm.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const value = name.value.trim();
      error.hidden = true;
      name.removeAttribute('aria-invalid');
      if (!value) {
        error.hidden = false;
        error.textContent = 'Give it a name.';
        name.setAttribute('aria-invalid', 'true');
        name.focus();
        return;
      }
      submit.disabled = true;
      try {
        const made = await opsApi.createToken(value, role.value);
        name.value = '';
        // Shown first: it is shown only once, whatever the reload below does.
        showSecret(made);
        announce(`Created token ${made.name}.`, 'ok');
        await load();
      } catch (err) {
        if (err.status === 401) return;
        error.hidden = false;
        error.textContent = err.fields.length ? `${err.fields[0].field} ${err.fields[0].message}` : err.message;
        name.setAttribute('aria-invalid', 'true');
        name.focus();
      } finally {
        submit.disabled = false;
      }
    });
  }

  const revoke = async (t) => {
    const self = caller() && caller().id === t.id;
    const ok = await confirmDialog({
      title: `Revoke “${t.name}”?`,
      body: [h('p', {}, 'Anything that uses this token is refused from now on (401). This cannot be undone: a new token would have a new value.'),
        self ? h('p', {}, h('strong', {}, 'This is the token you are signed in with: you will be signed out.')) : null],
      confirmLabel: 'Revoke token',
      danger: true,
    });
    if (!ok) return;
    try {
      await opsApi.revokeToken(t.id);
      announce(`Revoked token ${t.name}.`, 'ok');
      // Our own token is gone: sign out now, not on the next request's 401.
      if (self) signOut('rejected');
      else await load();
    } catch (err) {
      if (err.status !== 401) announce(`Could not revoke ${t.name}: ${err.message}`, 'warn', { toast: true });
    }
  };

  const table = h('div', { class: 'table-wrap' });
  async function load() {
    let list;
    try {
      list = await opsApi.tokens();
    } catch (err) {
      if (err.status === 401) return;
      add(clear(table), h('div', { class: 'alert alert-error', role: 'alert' }, err.message));
      return;
    }
    const me = caller();
    add(clear(table), h('table', { class: 'table table-tokens' },
      h('caption', { class: 'visually-hidden' }, 'Admin tokens'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Role'),
        h('th', { scope: 'col' }, 'Created'), h('th', { scope: 'col' }, 'Last used'),
        can('admin') ? h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')) : null)),
      h('tbody', {}, list.items.map((t) => {
        const btn = can('admin') ? h('button', { type: 'button', class: 'btn btn-small btn-danger-outline', 'aria-label': `Revoke ${t.name}` }, 'Revoke') : null;
        if (btn) btn.addEventListener('click', () => revoke(t));
        return h('tr', { dataset: { token: t.name } },
          h('td', { 'data-label': 'Name', class: 'cell-token-name' }, h('div', {}, h('span', { class: 'token-name' }, t.name),
            me && me.id === t.id ? [' ', h('span', { class: 'chip' }, 'you')] : null,
            t.from_env ? [' ', h('span', { class: 'chip', title: 'Managed by TRIPLINE_ADMIN_TOKEN: changing the variable replaces it at the next start' }, 'from environment')] : null)),
          h('td', { 'data-label': 'Role' }, badge(t.role, t.role === 'admin' ? 'failed' : t.role === 'operator' ? 'running' : 'disabled')),
          h('td', { 'data-label': 'Created' }, timeEl(t.created_at)),
          h('td', { 'data-label': 'Last used', class: 'muted', title: 'tripline does not record when a token was last used' }, 'not recorded'),
          btn ? h('td', { class: 'num cell-actions' }, btn) : null);
      }))));
  }
  add(body, table, createForm ? [h('h3', { class: 'h3' }, 'Create a token'), createForm] : roleNeeded('admin', 'Creating or revoking tokens'));
  return { el, load };
}

// --- peers --------------------------------------------------------------------------------------

function peersCard() {
  const table = h('div', { class: 'table-wrap' });
  const detail = can('operator');
  const el = h('section', { class: 'card ops-card', 'aria-labelledby': 'ops-peers' },
    h('div', { class: 'section-head' }, h('h2', { id: 'ops-peers' }, 'Peers')),
    h('p', { class: 'muted small' }, 'What tripline talks to, as its readiness check last found it (every few seconds, in the background). DNS servers, registries and webhook URLs are set per receiver: their executions say how they went.'),
    table,
    detail ? null : roleNeeded('operator', 'Seeing addresses and errors'));
  async function load() {
    let p;
    try {
      p = await opsApi.peers();
    } catch (err) {
      if (err.status === 401) return;
      add(clear(table), h('div', { class: 'alert alert-error', role: 'alert' }, err.message));
      return;
    }
    add(clear(table), h('table', { class: 'table table-peers' },
      h('caption', { class: 'visually-hidden' }, 'Peers'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Peer'), h('th', { scope: 'col' }, 'State'),
        h('th', { scope: 'col' }, 'Used by'), h('th', { scope: 'col' }, 'Last check'),
        detail ? h('th', { scope: 'col' }, 'Address and error') : null)),
      h('tbody', {}, p.items.map((x) => h('tr', { dataset: { peer: x.peer } },
        h('td', { 'data-label': 'Peer', class: 'cell-peer' }, h('strong', {}, x.peer)),
        h('td', { 'data-label': 'State' }, badge(x.state === 'ok' ? 'ok' : x.state, x.state === 'ok' ? 'succeeded' : x.state === 'down' ? 'failed' : 'disabled')),
        h('td', { 'data-label': 'Used by' }, x.used_by.length ? x.used_by.join(', ') : h('span', { class: 'muted' }, 'tripline')),
        h('td', { 'data-label': 'Last check' }, timeEl(x.checked_at)),
        detail ? h('td', { 'data-label': 'Address', class: 'peer-detail' }, h('div', {},
          x.address ? h('code', {}, x.address) : h('span', { class: 'muted' }, '—'),
          x.detail ? h('p', { class: 'outcome-bad small' }, x.detail) : null)) : null)))));
  }
  return { el, load };
}

export async function operationsView(main) {
  const me = caller();
  const workers = workersCard();
  const tokens = tokensCard();
  const peers = peersCard();
  add(main,
    h('div', { class: 'page-head' }, h('h1', { tabIndex: -1 }, 'Operations')),
    h('p', { class: 'lead' }, 'Signed in as ', h('strong', {}, me ? me.name : '?'), ' (', me ? me.role : '?', ').'),
    h('div', { class: 'ops-grid' }, workers.el, peers.el),
    tokens.el);
  const stopWorkers = onWorkers((w) => workers.draw(w));
  try {
    workers.draw(await opsApi.workers());
  } catch (err) {
    if (err.status === 401) {
      stopWorkers();
      return null;
    }
    add(workers.el, h('div', { class: 'alert alert-error', role: 'alert' }, err.message));
  }
  await Promise.all([tokens.load(), peers.load()]);
  const timer = setInterval(() => {
    if (document.visibilityState === 'visible') peers.load();
  }, PEERS_POLL_MS);
  return () => {
    clearInterval(timer);
    stopWorkers();
  };
}
