// The receivers list and a receiver's page: its trigger URL and ready snippets, a dry run, its
// settings, its recent executions, and the actions (edit, clone, enable/disable, rotate, delete).

import { api } from './api.js';
import {
  h, add, clear, badge, timeEl, copyButton, copyBlock, confirmDialog, announce, changeLines,
} from './dom.js';
import { mountExecutions, poll } from './executions.js';
import { mountDeliveries } from './deliveries.js';
import { MASK, propertyOrder } from './schema-form.js';

const LIST_POLL_MS = 5000;

const q = (v) => `'${String(v).replace(/'/g, "'\\''")}'`;

function authOf(r) {
  return r.auth && typeof r.auth === 'object' ? r.auth : {};
}

function isAlertmanager(r) {
  return Boolean(r.rules && typeof r.rules === 'object' && r.rules.preset === 'alertmanager');
}

// A curl command that works for this receiver as configured: a plain POST, plus the credential
// and an Alertmanager-shaped body when its auth and rules ask for them.
export function curlCommand(r) {
  const parts = ['curl -X POST'];
  const auth = authOf(r);
  if (auth.bearer_token) parts.push(`-H ${q('Authorization: Bearer <the bearer token>')}`);
  else if (auth.basic_username) parts.push(`-u ${q(`${auth.basic_username}:<the password>`)}`);
  if (isAlertmanager(r)) {
    const body = {
      version: '4', status: 'firing', receiver: 'tripline', groupKey: `curl-test-${Date.now()}`,
      alerts: [{ status: 'firing', labels: { alertname: 'TriplineTest' }, fingerprint: 'curl-test', startsAt: new Date().toISOString() }],
    };
    parts.push(`-H ${q('Content-Type: application/json')}`, `-d ${q(JSON.stringify(body))}`);
  }
  parts.push(q(r.trigger_url));
  return parts.length === 2 ? parts.join(' ') : parts.join(' \\\n  ');
}

export function alertmanagerYaml(r) {
  const auth = authOf(r);
  const lines = [
    'receivers:',
    `  - name: 'tripline-${r.name.replace(/[^A-Za-z0-9_.-]+/g, '-')}'`,
    '    webhook_configs:',
    `      - url: '${r.trigger_url.replace(/'/g, "''")}'`,
    '        send_resolved: true',
  ];
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
  return h('p', { class: 'muted small' }, 'Route alerts to it with ', route, '. Note: with ', h('code', {}, 'send_resolved: true'),
    ' Alertmanager POSTs again when the alert resolves, and that runs the action again. To have resolved alerts ignored (or undo the action), set the rules to ',
    h('code', {}, '{"preset": "alertmanager"}'), ' under Edit › Advanced.');
}

function stateBadge(r) {
  return r.enabled ? badge('Enabled', 'enabled') : badge('Disabled', 'disabled');
}

function lastExecution(r) {
  const e = r.last_execution;
  if (!e) return h('span', { class: 'muted' }, 'Never run');
  return h('a', { href: `#/executions?receiver=${r.id}`, class: 'last-exec', 'aria-label': `Last execution: ${e.status}, see executions of ${r.name}` },
    badge(e.status), h('span', { class: 'last-exec-time' }, timeEl(e.finished_at || e.started_at || e.created_at)));
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
  announce(`Deleted ${r.name}.`, 'ok', { toast: true });
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
  const small = compact ? ' btn-small' : '';
  return h('div', { class: 'actions', role: 'group', 'aria-label': `Actions for ${r.name}` },
    h('a', { href: `#/receivers/${r.id}/edit`, class: `btn${small}`, dataset: { focusKey: `edit-${r.id}` } }, 'Edit'),
    h('a', { href: `#/receivers/${r.id}/clone`, class: `btn${small}`, dataset: { focusKey: `clone-${r.id}` } }, 'Clone'),
    h('button', {
      type: 'button', class: `btn${small}`, dataset: { focusKey: `toggle-${r.id}`, action: 'toggle' },
      onclick: run(async () => { const u = await toggleEnabled(r); if (u) onChange(u); }),
    }, r.enabled ? 'Disable' : 'Enable'),
    h('button', {
      type: 'button', class: `btn${small}`, dataset: { focusKey: `rotate-${r.id}`, action: 'rotate' },
      onclick: run(async () => { const u = await rotate(r); if (u) onChange(u); }),
    }, 'Rotate URL'),
    h('button', {
      type: 'button', class: `btn btn-danger-outline${small}`, dataset: { focusKey: `delete-${r.id}`, action: 'delete' },
      onclick: run(async () => { if (await remove(r)) onDeleted(r); }),
    }, 'Delete'));
}

// A table cell with one wrapper inside, so the stacked (phone) layout has exactly two grid
// items per cell: the label (::before) and the content.
export function cell(label, cls, ...children) {
  return h('td', { 'data-label': label, class: cls || null }, h('div', { class: 'cell' }, ...children));
}

// --- the list --------------------------------------------------------------------------------

export async function receiversView(main, { drivers, refreshReceivers }) {
  const errorBox = h('div', { class: 'alert alert-error', role: 'alert', hidden: true });
  const loading = h('p', { class: 'loading', role: 'status' }, 'Loading receivers…');
  const body = h('div', { 'aria-busy': 'true' });
  const more = h('p', { class: 'muted small', hidden: true });
  add(main, 
    h('div', { class: 'page-head' },
      h('h1', { tabIndex: -1 }, 'Receivers'),
      h('a', { href: '#/receivers/new', class: 'btn btn-primary' }, 'New receiver')),
    h('p', { class: 'lead' }, 'A receiver turns a POST to its trigger URL into one action, such as scaling a service up by 2 within bounds.'),
    errorBox, loading, body, more);

  let lastSig = '';
  const showError = (err) => {
    if (err.status === 401) return;
    errorBox.hidden = false;
    errorBox.textContent = err.message;
  };

  function draw(list) {
    const sig = JSON.stringify(list);
    if (sig === lastSig) return;
    lastSig = sig;
    const focusKey = document.activeElement && body.contains(document.activeElement)
      ? document.activeElement.dataset.focusKey : null;
    loading.hidden = true;
    body.setAttribute('aria-busy', 'false');
    clear(body);
    if (!list.length) {
      body.append(h('div', { class: 'empty' },
        h('p', { class: 'empty-title' }, 'No receivers yet.'),
        h('p', {}, 'Create one, and you get a trigger URL to paste into Alertmanager, a script or CI.'),
        h('a', { href: '#/receivers/new', class: 'btn btn-primary', dataset: { focusKey: 'empty-new' } }, 'Create your first receiver')));
      return;
    }
    const rows = list.map((r) => {
      const urlCode = h('code', { class: 'url', title: r.trigger_url }, r.trigger_url);
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
          h('div', { class: 'url-row' }, urlCode, copyButton(() => r.trigger_url, `trigger URL of ${r.name}`, urlCode))),
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
          onChange: (u) => { r = u; redraw(); },
          onError: showError,
          onDeleted: () => navigate('#/receivers'),
        })),
      r.enabled ? null : h('div', { class: 'alert alert-warn' }, 'This receiver is disabled: its trigger URL answers 403 until you enable it.'));
  }

  function drawTrigger() {
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
  const banner = query.get('created') ? h('div', { class: 'alert alert-ok', role: 'status', tabIndex: -1 },
    h('strong', {}, 'Receiver created. '), 'Copy its trigger URL below into Alertmanager, a script or CI.')
    : query.get('saved') === 'new-url' ? h('div', { class: 'alert alert-ok', role: 'status', tabIndex: -1 },
      h('strong', {}, 'Saved. '), 'The trigger URL changed with this edit: update the places that use the old one.')
      : query.get('saved') ? h('div', { class: 'alert alert-ok', role: 'status', tabIndex: -1 },
        h('strong', {}, 'Saved. '), 'The trigger URL is unchanged.')
        : null;

  drawHead();
  drawTrigger();
  drawSettings();
  add(main, head, banner, errorBox,
    h('div', { class: 'grid-2' },
      trigger,
      h('div', {},
        h('section', { class: 'card', 'aria-labelledby': 'sec-test' },
          h('h2', { id: 'sec-test' }, 'Send test'),
          h('p', {}, 'Asks the driver what this receiver would do right now, without doing it.'),
          testBtn, testOut),
        settings)),
    h('section', { class: 'card', 'aria-labelledby': 'sec-exec' },
      h('div', { class: 'section-head' },
        h('h2', { id: 'sec-exec' }, 'Recent executions'),
        h('a', { href: `#/executions?receiver=${r.id}` }, 'All executions of this receiver')),
      execBox),
    h('section', { class: 'card', 'aria-labelledby': 'sec-notify' },
      h('h2', { id: 'sec-notify' }, 'Notifications'),
      notifyBox));
  const notifications = mountDeliveries(notifyBox, r.id);
  const mounted = mountExecutions(execBox, {
    receiverId: r.id, receivers, showReceiver: false, limit: 10, caption: `Recent executions of ${r.name}`,
    emptyText: () => [h('p', { class: 'empty-title' }, 'Not triggered yet.'),
      h('p', {}, 'Run the curl command above, or press Send test to see what it would do first.')],
  });
  return { stop: () => { mounted.stop(); notifications.stop(); }, focus: banner };
}
