// "Test rules": paste a sample request, see what a trigger with it would decide: the rule that
// matched, what each rule compared, what `set` made, the effective config, and (optionally) the
// driver's plan. The server runs the very decide() a trigger runs (docs/api.md "Testing rules");
// inbound auth and limits are not checked, and the answer says so.
//
// rulesTester({ receiverId, preset, unsaved }) -> { el, setRequest(request, { run }), run() }
//   receiverId  the saved receiver (POST /receivers/{id}/rules/test), or null for an unsaved one
//   preset      'alertmanager' | 'registry-push' | undefined: which example "Fill in" starts with
//   unsaved()   what to test instead of the saved receiver: { rules } (the edit form: its rules on
//               the saved settings) or { driver, config, rules } (create / clone: POST /rules/test);
//               may throw an Error whose message is shown
// setRequest() takes the API's request object ({headers, query, body, source}): a logged delivery
// can be dropped in by a call, without the panel knowing where it came from (requests.js
// testLoggedRequest); its `note` (nodes) says above the result where the sample came from and
// how it differs from what was sent, until another sample replaces it. The panel element
// carries the same object as el.rulesTester.

import { api } from './api.js';
import { h, add, clear, changeLines } from './dom.js';

const EXAMPLES = {
  alertmanager: {
    label: 'Alertmanager (firing)',
    request: {
      headers: { 'Content-Type': 'application/json', 'User-Agent': 'Alertmanager/0.27.0' },
      body: {
        version: '4', groupKey: '{}:{alertname="HighLoad"}', status: 'firing', receiver: 'tripline',
        groupLabels: { alertname: 'HighLoad' },
        commonLabels: { alertname: 'HighLoad', severity: 'critical', service: 'web' },
        commonAnnotations: { summary: 'web is overloaded', scale_by: '2' },
        externalURL: 'http://alertmanager:9093',
        alerts: [{ status: 'firing', labels: { alertname: 'HighLoad', severity: 'critical', service: 'web' },
          annotations: { summary: 'web is overloaded' }, startsAt: '2026-11-30T06:00:00Z', endsAt: '0001-01-01T00:00:00Z',
          fingerprint: 'c5b2f1e0d3a4b697' }],
      },
    },
  },
  'alertmanager-resolved': {
    label: 'Alertmanager (resolved)',
    request: {
      headers: { 'Content-Type': 'application/json' },
      body: {
        version: '4', groupKey: '{}:{alertname="HighLoad"}', status: 'resolved', receiver: 'tripline',
        groupLabels: { alertname: 'HighLoad' }, commonLabels: { alertname: 'HighLoad', severity: 'critical' },
        commonAnnotations: {}, externalURL: 'http://alertmanager:9093',
        alerts: [{ status: 'resolved', labels: { alertname: 'HighLoad', severity: 'critical' }, annotations: {},
          startsAt: '2026-11-30T06:00:00Z', endsAt: '2026-11-30T06:20:00Z', fingerprint: 'c5b2f1e0d3a4b697' }],
      },
    },
  },
  'registry-push': {
    label: 'Registry push (distribution)',
    request: {
      headers: { 'Content-Type': 'application/vnd.docker.distribution.events.v1+json' },
      body: { events: [{ id: 'e6f1b8a2-0c1d-4e5f-9a7b-3c2d1e0f9a8b', timestamp: '2026-11-30T06:00:00Z', action: 'push',
        target: { mediaType: 'application/vnd.oci.image.manifest.v1+json', repository: 'team/web', tag: 'v1.4.2',
          digest: 'sha256:3b1f0c9e6a7d8f2b4c5e6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d' },
        request: { host: 'registry.example.com' } }] },
    },
  },
  github: {
    label: 'GitHub push',
    request: {
      headers: { 'Content-Type': 'application/json', 'X-GitHub-Event': 'push' },
      body: { ref: 'refs/heads/main', repository: { full_name: 'team/web' }, pusher: { name: 'dev' } },
    },
  },
  plain: { label: 'JSON body', request: { headers: { 'Content-Type': 'application/json' }, query: {}, body: { env: 'prod', by: 2 } } },
};

function headersText(headers) {
  return Object.entries(headers || {}).map(([k, v]) => `${k}: ${v}`).join('\n');
}
function queryText(query) {
  // Values as they are (a trigger's query is not decoded): see request() below.
  return Object.entries(query || {}).map(([k, v]) => `${k}=${v}`).join('&');
}
function bodyText(body) {
  if (body === undefined || body === null) return '';
  return typeof body === 'string' ? body : JSON.stringify(body, null, 2);
}

function show(v) {
  if (v === null || v === undefined) return 'absent';
  return typeof v === 'string' ? `"${v}"` : JSON.stringify(v);
}

const OUTCOME = {
  accepted: ['alert-ok', 'Would run'],
  ignored: ['alert-info', 'Would be ignored'],
  rejected: ['alert-error', 'Would be refused'],
};

export function resultView(res) {
  const [cls, title] = OUTCOME[res.outcome] || ['alert-info', res.outcome];
  const matched = res.matched
    ? `rule ${res.matched.index + 1}${res.matched.name ? ` “${res.matched.name}”` : ''}`
    : 'no rule: the default decided';
  const out = h('div', { class: 'rules-result', dataset: { outcome: res.outcome } },
    h('div', { class: `alert ${cls}`, role: 'status' },
      h('p', {}, h('strong', { class: 'rt-outcome' }, `${title} `), `(the trigger would answer ${res.status}). `,
        'Decided by ', h('strong', { class: 'rt-decided' }, matched), '.'),
      res.reason ? h('p', {}, res.reason) : null,
      res.error ? h('p', {}, res.error.message,
        res.error.fields && res.error.fields.length ? ` (${res.error.fields.map((f) => f.field).join(', ')})` : '') : null,
      res.description ? h('p', {}, 'It would: ', h('strong', {}, res.description)) : null),
    res.warning ? h('div', { class: 'alert alert-warn' }, res.warning) : null);

  if (res.rules && res.rules.length) {
    add(out, h('h3', { class: 'h4' }, 'Rules'),
      h('ol', { class: 'rt-rules' }, res.rules.map((r) => {
        const state = !r.evaluated ? 'not reached' : r.matched ? 'matched' : 'did not match';
        return h('li', { class: `rt-rule rt-${!r.evaluated ? 'skipped' : r.matched ? 'matched' : 'unmatched'}`, dataset: { index: String(r.index) } },
          h('div', {}, h('strong', {}, r.name || `rule ${r.index + 1}`), ' ',
            h('span', { class: `badge ${r.matched ? 'badge-enabled' : 'badge-disabled'}` }, state),
            r.evaluated && r.matched ? h('span', { class: 'muted small' }, ` → ${r.then === 'ignore' ? 'ignore' : 'run'}`) : null),
          r.compared.length ? h('ul', { class: 'rt-compared' }, r.compared.map((c) => h('li', { class: c.result ? 'rt-true' : 'rt-false' },
            h('span', { class: 'rt-mark', 'aria-hidden': 'true' }, c.result ? '✓ ' : '✗ '),
            h('code', {}, c.path), ` ${c.op} `, h('code', {}, show(c.expected)), ': the request has ',
            h('code', { class: 'rt-actual' }, c.actual_truncated ? `${c.actual}…` : show(c.actual)),
            h('span', { class: 'visually-hidden' }, c.result ? ' (true)' : ' (false)'))))
            : r.evaluated ? h('p', { class: 'muted small' }, 'No conditions: always matches.') : null);
      })));
  }
  if (res.set) add(out, h('h3', { class: 'h4' }, 'Set'), h('pre', { class: 'json rt-set' }, h('code', {}, JSON.stringify(res.set, null, 2))));
  if (res.plan) {
    const lines = res.plan.ok ? changeLines(res.plan.plan) : [];
    add(out, h('h3', { class: 'h4' }, 'Plan (dry run)'),
      res.plan.ok
        ? h('div', { class: 'rt-plan' }, lines.length ? h('ul', { class: 'plan-lines' }, lines.map((l) => h('li', {}, l))) : null,
          h('pre', { class: 'json' }, h('code', {}, JSON.stringify(res.plan.plan, null, 2))))
        : h('div', { class: 'alert alert-warn rt-plan' }, `No plan: ${res.plan.error}`));
  }
  if (res.config) {
    add(out, h('details', {}, h('summary', {}, 'The settings it would run with'),
      h('pre', { class: 'json' }, h('code', {}, JSON.stringify(res.config, null, 2)))));
  }
  if (res.not_checked) {
    add(out, h('p', { class: 'muted small' }, 'Not checked by a test: ', res.not_checked.join('; '), '.'));
  }
  return out;
}

export function rulesTester({ receiverId = null, preset, unsaved = null } = {}) {
  const body = h('textarea', { id: 'rt-body', rows: 8, spellcheck: false, class: 'json-input', 'aria-describedby': 'rt-body-help' });
  const headers = h('textarea', { id: 'rt-headers', rows: 3, spellcheck: false, class: 'json-input', placeholder: 'Content-Type: application/json' });
  const query = h('input', { type: 'text', id: 'rt-query', spellcheck: false, placeholder: 'env=prod&by=2' });
  const source = h('input', { type: 'text', id: 'rt-source', spellcheck: false, placeholder: 'your address', autocomplete: 'off' });
  const plan = h('input', { type: 'checkbox', id: 'rt-plan' });
  const example = h('select', { id: 'rt-example', 'aria-label': 'Example' },
    Object.entries(EXAMPLES).map(([k, e]) => h('option', { value: k, selected: k === (preset || 'plain') }, e.label)));
  const fill = h('button', { type: 'button', class: 'btn btn-small', id: 'rt-fill' }, 'Fill in an example');
  const run = h('button', { type: 'button', class: 'btn btn-primary', id: 'rt-run' }, 'Run test');
  const noteBox = h('div', { class: 'rt-note', tabIndex: -1, hidden: true });
  const outBox = h('div', { class: 'rt-out', 'aria-live': 'polite' });
  const el = h('div', { class: 'rules-tester' },
    h('div', { class: 'rt-example-row' }, example, fill),
    h('div', { class: 'field' },
      h('label', { for: 'rt-body', class: 'field-label' }, 'Body'),
      h('p', { class: 'field-help', id: 'rt-body-help' }, 'As the sender would POST it: JSON or any text.'),
      body),
    h('details', { class: 'rt-more' }, h('summary', {}, 'Headers, query, caller address'),
      h('div', { class: 'field' }, h('label', { for: 'rt-headers', class: 'field-label' }, 'Headers ', h('span', { class: 'optional' }, 'one "Name: value" a line')), headers),
      h('div', { class: 'field' }, h('label', { for: 'rt-query', class: 'field-label' }, 'Query string'), query),
      h('div', { class: 'field' }, h('label', { for: 'rt-source', class: 'field-label' }, 'Caller address ', h('span', { class: 'optional' }, 'what a rule on "source" reads; default: yours')), source)),
    h('div', { class: 'check-row rt-plan-row' }, plan, h('label', { for: 'rt-plan' }, 'Also ask the driver for its plan (a dry run: reads the target, changes nothing)')),
    noteBox,
    h('div', { class: 'form-actions' }, run),
    outBox);

  function showNote(note) {
    add(clear(noteBox), note || null);
    noteBox.hidden = !note;
  }
  // The note describes the sample as filled in: once a field is edited, it says so.
  for (const field of [body, headers, query, source]) {
    field.addEventListener('input', () => {
      if (noteBox.hidden || noteBox.querySelector('.rt-edited')) return;
      add(noteBox, h('p', { class: 'muted small rt-edited' }, 'Edited since: the test runs on what the fields hold now.'));
    });
  }

  function request() {
    const hs = {};
    for (const line of headers.value.split('\n')) {
      const t = line.trim();
      if (!t) continue;
      const i = t.indexOf(':');
      if (i <= 0) throw new Error(`The header line “${t}” is not "Name: value".`);
      const name = t.slice(0, i).trim();
      // A trigger reads the first of repeated header lines, as here.
      if (!Object.keys(hs).some((k) => k.toLowerCase() === name.toLowerCase())) hs[name] = t.slice(i + 1).trim();
    }
    // As a trigger reads its query (server/http/http_server.cpp): split on & and =, nothing
    // decoded, the first of repeated names.
    const q = {};
    for (const part of query.value.trim().replace(/^\?/, '').split('&')) {
      if (!part) continue;
      const i = part.indexOf('=');
      const name = i < 0 ? part : part.slice(0, i);
      if (!(name in q)) q[name] = i < 0 ? '' : part.slice(i + 1);
    }
    const req = { headers: hs, query: q, body: body.value };
    if (source.value.trim()) req.source = source.value.trim();
    return req;
  }

  function setRequest(req, { run: andRun = false, note = null } = {}) {
    headers.value = headersText(req.headers);
    query.value = queryText(req.query);
    body.value = bodyText(req.body);
    source.value = req.source || '';
    showNote(note);
    clear(outBox);
    if (andRun) return doRun();
    return null;
  }

  async function doRun() {
    run.disabled = true;
    add(clear(outBox), h('p', { class: 'loading' }, 'Testing…'));
    try {
      const payload = { request: request(), plan: plan.checked };
      const extra = unsaved ? unsaved() : null;
      const res = extra && extra.driver
        ? await api.testRules(null, { ...payload, ...extra })
        : await api.testRules(receiverId, extra ? { ...payload, ...extra } : payload);
      add(clear(outBox), resultView(res));
      return res;
    } catch (err) {
      if (err.status === 401) return null;
      const fields = err.fields && err.fields.length ? err.fields.map((f) => `${f.field}: ${f.message}`) : [];
      add(clear(outBox), h('div', { class: 'alert alert-error', role: 'alert' },
        h('p', {}, `The test could not run: ${err.message}`),
        fields.length > 1 ? h('ul', {}, fields.map((f) => h('li', {}, f))) : null));
      return null;
    } finally {
      run.disabled = false;
    }
  }

  fill.addEventListener('click', () => setRequest(EXAMPLES[example.value].request));
  run.addEventListener('click', () => doRun());
  const self = { el, setRequest, run: doRun, showNote, noteEl: noteBox };
  el.rulesTester = self;
  return self;
}

// The panel in a card, for the receiver page and the form.
export function rulesTesterCard(opts, intro) {
  const t = rulesTester(opts);
  const card = h('section', { class: 'card rules-tester-card', 'aria-labelledby': 'sec-rules-test', id: 'rules-test' },
    h('h2', { id: 'sec-rules-test' }, 'Test rules'),
    h('p', {}, intro),
    t.el);
  card.rulesTester = t;
  return { el: card, tester: t };
}
