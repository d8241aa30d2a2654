// Create, edit and clone a receiver. The config part of the form is drawn from the driver's
// JSON Schema (schema-form.js); validation errors from the server land next to their fields.

import { api } from './api.js';
import { h, add, clear, announce, confirmDialog } from './dom.js';
import { schemaForm, MASK } from './schema-form.js';

function stripSecrets(config, schema) {
  // A clone starts without the source's secrets: they come back from the API as "********",
  // which would mean "keep the stored one" on an edit but is meaningless on a new receiver.
  const out = {};
  for (const [k, v] of Object.entries(config || {})) {
    const s = (schema && schema.properties && schema.properties[k]) || {};
    if (v === MASK && s.writeOnly) continue;
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && s.properties ? stripSecrets(v, s) : v;
  }
  return out;
}

// The receiver's optional rules, inbound authentication and limits (docs/api.md), edited as
// JSON. A PUT replaces the receiver, so an edit always sends them back; secrets in `auth` come
// from the API as "********", which the server reads as "keep the stored one". A clone does not
// copy `auth`, since its secrets cannot be carried over.
const ADVANCED = [
  { key: 'rules', label: 'Rules', help: 'Which requests run the action, e.g. {"preset": "alertmanager", "on_resolved": "ignore"} to read Alertmanager notifications and ignore resolved alerts.' },
  { key: 'auth', label: 'Inbound authentication', help: 'Checks beyond the URL\'s token, e.g. {"bearer_token": "…"} or {"allow_sources": ["10.0.0.0/8"]}. Secrets show as ******** and are kept unless replaced.' },
  { key: 'limits', label: 'Limits', help: 'e.g. {"cooldown_seconds": 60, "rate_per_minute": 30, "burst": 10}.' },
];

function present(v) {
  return !(v === null || v === undefined || (typeof v === 'object' && Object.keys(v).length === 0));
}

function advancedSection(source, mode) {
  const fields = ADVANCED.map(({ key, label, help }) => {
    const id = `r-${key}`;
    const initial = source && mode !== 'create' && !(mode === 'clone' && key === 'auth') && present(source[key]) ? source[key] : null;
    const input = h('textarea', { id, name: key, rows: initial ? Math.min(12, JSON.stringify(initial, null, 2).split('\n').length + 1) : 3,
      spellcheck: false, class: 'json-input', 'aria-describedby': `${id}-help`, placeholder: 'none' });
    input.value = initial ? JSON.stringify(initial, null, 2) : '';
    const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
    const el = h('div', { class: 'field', dataset: { path: key } },
      h('label', { for: id, class: 'field-label' }, label, ' ', h('span', { class: 'optional' }, 'optional, JSON')),
      h('p', { class: 'field-help', id: `${id}-help` }, help),
      input, error);
    return {
      key, el, input,
      setError(msg) {
        error.hidden = !msg;
        error.textContent = msg ? msg.charAt(0).toUpperCase() + msg.slice(1) : '';
        if (msg) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
        input.setAttribute('aria-describedby', msg ? `${id}-error ${id}-help` : `${id}-help`);
        el.classList.toggle('has-error', Boolean(msg));
      },
      value() {
        const t = input.value.trim();
        return t ? JSON.parse(t) : undefined;
      },
      check() {
        const t = input.value.trim();
        if (!t) return null;
        try {
          const v = JSON.parse(t);
          return v && typeof v === 'object' && !Array.isArray(v) ? null : 'Must be a JSON object, like {"key": "value"}.';
        } catch (e) {
          return `Is not valid JSON: ${e.message}`;
        }
      },
    };
  });
  const anySet = fields.some((f) => f.input.value);
  const notCopied = mode === 'clone' && source && present(source.auth)
    ? h('p', { class: 'alert alert-info' }, 'Inbound authentication is not copied, since its secrets are never shown: set it again here if the clone needs it.')
    : null;
  const el = h('details', { class: 'advanced', open: anySet || Boolean(notCopied) },
    h('summary', {}, 'Advanced: rules, inbound authentication, limits',
      anySet ? h('span', { class: 'muted small' }, ` (set: ${fields.filter((f) => f.input.value).map((f) => f.key).join(', ')})`) : null),
    h('p', { class: 'field-help' }, 'Optional; the API documentation (docs/api.md) describes every field. Leave a box empty for none.'),
    notCopied,
    fields.map((f) => f.el));
  return { el, fields };
}

// mode: 'create' | 'edit' | 'clone'
export async function receiverFormView(main, { mode, id, drivers, navigate }) {
  let source = null;
  if (mode !== 'create') {
    const loading = h('p', { class: 'loading', role: 'status' }, 'Loading receiver…');
    add(main, loading);
    try {
      source = await api.receiver(id);
    } catch (err) {
      loading.remove();
      if (err.status === 401) return null;
      add(main, h('h1', { tabIndex: -1 }, 'Could not load the receiver'),
        h('div', { class: 'alert alert-error', role: 'alert' }, err.status === 404 ? 'There is no receiver with this id: it may have been deleted.' : err.message),
        h('p', {}, h('a', { href: '#/receivers', class: 'btn' }, 'Back to receivers')));
      return null;
    }
    loading.remove();
  }

  const driverList = [...drivers.values()];
  const title = mode === 'create' ? 'New receiver' : mode === 'edit' ? `Edit ${source.name}` : `Clone ${source.name}`;
  const messages = h('div', { class: 'alert alert-error', role: 'alert', hidden: true, tabIndex: -1, id: 'form-message' });

  // Name
  const nameInput = h('input', {
    id: 'r-name', name: 'name', type: 'text', required: true, maxLength: 100, autocomplete: 'off', spellcheck: false,
    'aria-describedby': 'r-name-help',
  });
  nameInput.value = mode === 'create' ? '' : mode === 'edit' ? source.name : `${source.name}-copy`;
  const nameError = h('p', { class: 'field-error', id: 'r-name-error', hidden: true });
  const nameField = h('div', { class: 'field', dataset: { path: 'name' } },
    h('label', { for: 'r-name', class: 'field-label' }, 'Name'),
    h('p', { class: 'field-help', id: 'r-name-help' }, 'Unique; shown in lists and logs, e.g. web-scale-up.'),
    nameInput, nameError);

  // Driver
  const driverError = h('p', { class: 'field-error', id: 'r-driver-error', hidden: true });
  let driverField;
  let chosenDriver = source ? source.driver : (driverList.length === 1 ? driverList[0].name : null);
  const radios = [];
  if (mode === 'edit') {
    const d = drivers.get(source.driver);
    driverField = h('div', { class: 'field', dataset: { path: 'driver' } },
      h('span', { class: 'field-label', id: 'r-driver-label' }, 'What it does'),
      h('p', { class: 'static-value' }, d?.config_schema?.title || source.driver, ' ', h('span', { class: 'chip' }, source.driver)),
      h('p', { class: 'field-help' }, 'The driver of a receiver cannot change: clone it into a new receiver instead.'),
      driverError);
  } else {
    driverField = h('fieldset', { class: 'field driver-choice', dataset: { path: 'driver' }, 'aria-describedby': 'r-driver-error' },
      h('legend', { class: 'field-label' }, 'What should it do?'),
      h('div', { class: 'driver-options' }, driverList.map((d) => {
        const rid = `r-driver-${d.name}`;
        const radio = h('input', { type: 'radio', name: 'driver', id: rid, value: d.name, checked: d.name === chosenDriver });
        radios.push(radio);
        return h('label', { class: 'driver-option', for: rid },
          radio,
          h('span', { class: 'driver-text' },
            h('span', { class: 'driver-title' }, d.config_schema?.title || d.name, ' ', h('span', { class: 'chip' }, d.name)),
            d.config_schema?.description ? h('span', { class: 'driver-desc' }, d.config_schema.description) : null));
      })),
      driverError);
  }

  // Config, drawn from the chosen driver's schema.
  const configBox = h('section', { class: 'config-box', 'aria-live': 'off' });
  let form = null;
  function drawConfig() {
    clear(configBox);
    form = null;
    if (!chosenDriver) {
      configBox.append(h('p', { class: 'muted' }, 'Choose what it should do to see its settings.'));
      return;
    }
    const d = drivers.get(chosenDriver);
    const schema = d?.config_schema || { type: 'object', properties: {} };
    let value;
    if (mode === 'edit') value = source.config;
    else if (mode === 'clone' && chosenDriver === source.driver) value = stripSecrets(source.config, schema);
    form = schemaForm(schema, value, { mode });
    configBox.append(h('h2', { class: 'h3' }, 'Settings'), form.el);
  }
  for (const radio of radios) {
    radio.addEventListener('change', () => {
      if (!radio.checked) return;
      chosenDriver = radio.value;
      // The summary of errors named fields of the driver just left: it goes with them.
      showMessages([]);
      setDriverError(null);
      drawConfig();
    });
  }
  drawConfig();

  // Enabled (new receivers only; existing ones use Enable/Disable)
  const enabledInput = h('input', { type: 'checkbox', id: 'r-enabled', name: 'enabled', checked: true });
  const enabledField = mode === 'edit' ? null : h('div', { class: 'field field-check' },
    h('div', { class: 'check-row' }, enabledInput, h('label', { for: 'r-enabled', class: 'field-label' }, 'Enabled')),
    h('p', { class: 'field-help' }, 'Its trigger URL works as soon as it is created. Untick to create it disabled.'));

  const advanced = advancedSection(source, mode);

  const submit = h('button', { type: 'submit', class: 'btn btn-primary' }, mode === 'edit' ? 'Save changes' : 'Create receiver');
  const cancelHref = mode === 'edit' ? `#/receivers/${id}` : '#/receivers';
  const formEl = h('form', { class: 'receiver-form', noValidate: true, 'aria-labelledby': 'form-title' },
    messages,
    nameField,
    driverField,
    configBox,
    enabledField,
    advanced.el,
    mode === 'edit' ? h('div', { class: 'alert alert-info' },
      h('strong', {}, 'The trigger URL stays the same '), 'when you change the name, bounds, rules or limits. ',
      'Changing what it acts on or what it does issues a new URL: tripline asks before saving such an edit.') : null,
    h('div', { class: 'form-actions' }, submit, h('a', { href: cancelHref, class: 'btn btn-link' }, 'Cancel')));

  const aside = h('aside', { class: 'form-aside', 'aria-label': 'How it works' },
    h('h2', { class: 'h3' }, 'How it works'),
    h('ol', {},
      h('li', {}, mode === 'edit' ? 'Change the settings and save.' : 'Pick what it should do and its bounds.'),
      h('li', {}, mode === 'edit' ? 'The trigger URL stays, unless the edit changes what it acts on or does: then you get a new one, and the old one stops working.' : 'Create it: you get a trigger URL, a curl command and an Alertmanager snippet to copy.'),
      h('li', {}, 'Press ', h('strong', {}, 'Send test'), ' on its page to see what it would change, without changing anything.'),
      h('li', {}, 'Every POST to the URL is recorded as an execution; watch them under ', h('a', { href: '#/executions' }, 'Executions'), '.')),
    h('p', { class: 'muted small' }, 'tripline checks the settings against the target when you save: a service that does not exist, or bounds the wrong way round, are reported next to the field.'));

  add(main,
    h('p', { class: 'crumbs' }, h('a', { href: '#/receivers' }, '← Receivers')),
    h('div', { class: 'page-head' }, h('h1', { tabIndex: -1, id: 'form-title' }, title)),
    mode === 'create' ? h('p', { class: 'lead' }, 'Pick what it should do and its bounds. You get a trigger URL when you create it.') : null,
    h('div', { class: 'form-layout' }, formEl, aside));

  function setNameError(msg) {
    nameError.hidden = !msg;
    nameError.textContent = msg ? msg.charAt(0).toUpperCase() + msg.slice(1) : '';
    if (msg) nameInput.setAttribute('aria-invalid', 'true'); else nameInput.removeAttribute('aria-invalid');
    nameInput.setAttribute('aria-describedby', msg ? 'r-name-error r-name-help' : 'r-name-help');
    nameField.classList.toggle('has-error', Boolean(msg));
  }
  function setDriverError(msg) {
    driverError.hidden = !msg;
    driverError.textContent = msg ? msg.charAt(0).toUpperCase() + msg.slice(1) : '';
    driverField.classList.toggle('has-error', Boolean(msg));
  }
  function showMessages(lines) {
    clear(messages);
    messages.hidden = lines.length === 0;
    if (lines.length === 1) messages.append(h('p', {}, lines[0]));
    else if (lines.length) messages.append(h('ul', {}, lines.map((l) => h('li', {}, l))));
  }

  // Set by "Save anyway": the next submit skips the live peer check (?check_peer=false).
  let skipPeerCheck = false;
  formEl.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const checkPeer = !skipPeerCheck;
    skipPeerCheck = false;
    showMessages([]);
    setNameError(null);
    setDriverError(null);
    for (const f of advanced.fields) f.setError(null);
    // Client-side checks first: the same rules the schema states, so the common mistakes are
    // caught without a round trip. The server still decides (e.g. min > max, a missing service).
    let firstBad = null;
    const name = nameInput.value.trim();
    if (!name) { setNameError('Give it a name.'); firstBad = nameInput; }
    if (!chosenDriver) { setDriverError('Choose what it should do.'); firstBad = firstBad || radios[0]; }
    const errs = form ? form.validate() : [];
    if (errs.length && !firstBad) firstBad = errs[0].node;
    for (const f of advanced.fields) {
      const msg = f.check();
      f.setError(msg);
      if (msg) {
        errs.push({ node: f.input, message: msg });
        advanced.el.open = true;
        if (!firstBad) firstBad = f.input;
      }
    }
    if (firstBad) {
      const n = (name ? 0 : 1) + (chosenDriver ? 0 : 1) + errs.length;
      showMessages([`Check the ${n === 1 ? 'field' : `${n} fields`} marked below.`]);
      firstBad.focus();
      return;
    }

    const body = { name, config: form.value() };
    for (const f of advanced.fields) {
      const v = f.value();
      if (v !== undefined) body[f.key] = v;
    }
    if (mode !== 'edit') {
      body.driver = chosenDriver;
      body.enabled = enabledInput.checked;
    }
    submit.disabled = true;
    const label = submit.textContent;
    submit.textContent = mode === 'edit' ? 'Saving…' : 'Creating…';
    formEl.setAttribute('aria-busy', 'true');
    try {
      if (mode === 'edit') {
        // The server says whether this edit revokes the URL (a new target or action) before
        // anything is saved; such an edit needs a yes.
        const preview = await api.previewUpdate(id, body, { checkPeer });
        if (preview.url_revoked) {
          const ok = await confirmDialog({
            title: 'This edit issues a new trigger URL',
            body: [
              h('p', {}, `Now: ${preview.description}. `,
                h('strong', {}, 'The current URL stops working when you save'),
                ' (it answers 401): update Alertmanager, scripts and CI jobs that use it.'),
            ],
            confirmLabel: 'Save and issue a new URL',
            danger: true,
          });
          if (!ok) return;
        }
      }
      const saved = mode === 'edit' ? await api.updateReceiver(id, body, source.version, { checkPeer }) : await api.createReceiver(body, { checkPeer });
      announce(mode === 'edit' ? `Saved ${saved.name}.` : `Created ${saved.name}.`, 'ok');
      const q = new URLSearchParams(mode === 'edit' ? { saved: saved.url_revoked ? 'new-url' : 'same-url' } : { created: '1' });
      if (!checkPeer) q.set('unchecked', '1');
      navigate(`#/receivers/${saved.id}?${q}`);
    } catch (err) {
      if (err.status === 401) return;
      const unmatched = [];
      let focusTarget = null;
      for (const f of err.fields) {
        if (f.field === 'name') { setNameError(f.message); focusTarget = focusTarget || nameInput; continue; }
        if (f.field === 'driver') { setDriverError(f.message); focusTarget = focusTarget || radios[0]; continue; }
        const adv = advanced.fields.find((a) => f.field === a.key || f.field.startsWith(`${a.key}.`) || f.field.startsWith(`${a.key}[`));
        if (adv) {
          adv.setError(f.field === adv.key ? f.message : `At ${f.field.slice(adv.key.length).replace(/^\./, '')}: ${f.message}`);
          advanced.el.open = true;
          focusTarget = focusTarget || adv.input;
          continue;
        }
        const node = form && form.showError(f.field, f.message);
        if (node) focusTarget = focusTarget || node;
        else unmatched.push(`${f.field.replace(/^config\./, '')}: ${f.message}`);
      }
      if (err.status === 409) {
        setNameError(`${err.message}. Choose another name.`);
        focusTarget = nameInput;
      }
      const lines = [];
      if (err.fields.length) lines.push(`tripline did not accept this: check the ${err.fields.length === 1 ? 'field' : 'fields'} marked below.`);
      else if (err.status === 412) lines.push('Someone saved a change to this receiver after you opened this form, so yours was not saved. Cancel and edit it again to start from their change.');
      else if (err.status !== 409) lines.push(err.message);
      else lines.push(err.message);
      showMessages([...lines, ...unmatched]);
      // The driver could not reach its peer (Docker, the Kubernetes API) to check the target:
      // not a mistake in the form. Offer to save without that check, saying what it means.
      const unreachable = err.status === 422 && checkPeer
        && err.fields.some((f) => /^could not be checked/.test(f.message));
      if (unreachable) {
        const anyway = h('button', { type: 'submit', class: 'btn', id: 'save-anyway' }, 'Save anyway, without the check');
        anyway.addEventListener('click', () => { skipPeerCheck = true; });
        messages.append(h('div', { class: 'save-anyway' },
          h('p', {}, 'tripline could not reach the target’s system to check it, so nothing was saved. ',
            'If it is down for now, or not set up yet, you can save anyway: the settings are still checked, ',
            'and the first trigger finds out whether the target exists (it fails, and says why, if it does not).'),
          anyway));
      }
      if (focusTarget) focusTarget.focus();
      else messages.focus();
    } finally {
      submit.disabled = false;
      submit.textContent = label;
      formEl.removeAttribute('aria-busy');
    }
  });
  return null;
}
