// The structured rules editor (docs/api.md "Rules"): a receiver's rules as a list of rules, each
// a name, conditions (field, operator, value) combined by all / any with a "not" per condition,
// then run or ignore, and `set` values limited to the fields the driver lets rules set
// ("x-tripline-per-request" in its schema). "Edit as JSON" shows the same rules as JSON; the two
// round-trip without loss: what the editor cannot show exactly (nesting deeper than one all/any,
// unknown keys, a field it cannot read) opens in JSON mode with a message, and is never rewritten.
//
// The editor's value is what the API takes; the server still decides (rules.h), and its errors
// land in the editor's error line with their path.

import { h, add, clear } from './dom.js';

export const OPERATORS = [
  ['equals', 'equals'], ['not_equals', 'does not equal'], ['in', 'is one of'], ['regex', 'matches (regex)'],
  ['exists', 'exists'], ['gt', '>'], ['gte', '≥'], ['lt', '<'], ['lte', '≤'], ['cidr', 'is in range (CIDR)'],
];
const OP_NAMES = new Set(OPERATORS.map(([op]) => op));
const SOURCES = [['body', 'Body'], ['header', 'Header'], ['query', 'Query'], ['method', 'Method'], ['source', 'Caller address']];
const TOP_KEYS = new Set(['preset', 'on_resolved', 'default', 'ignore_status', 'rules']);
const RULE_KEYS = new Set(['name', 'when', 'then', 'set']);

// --- values as text, losslessly ---------------------------------------------------------------
// A string is shown as it is unless it reads as JSON (then quoted); anything else as JSON.
function parses(text) {
  try { JSON.parse(text); return true; } catch { return false; }
}
export function valueText(v) {
  return typeof v === 'string' && !parses(v) ? v : JSON.stringify(v);
}
export function readValue(text) {
  return parses(text) ? JSON.parse(text) : text;
}
// Lists (in, cidr): "a, b" when every item is a plain string that can say so; JSON otherwise.
function listText(v) {
  const plain = Array.isArray(v) && v.length > 1 && v.every((x) => typeof x === 'string' && x !== ''
    && !x.includes(',') && x.trim() === x && !parses(x));
  return plain ? v.join(', ') : JSON.stringify(v);
}
function readList(text) {
  if (parses(text)) return JSON.parse(text);
  return text.split(',').map((s) => s.trim());
}

function condText(op, value) {
  if (op === 'regex') return typeof value === 'string' ? value : null;
  if (op === 'in') return Array.isArray(value) ? listText(value) : null;
  if (op === 'cidr') return typeof value === 'string' && !value.includes(',') && !parses(value) ? value : Array.isArray(value) ? listText(value) : null;
  if (['gt', 'gte', 'lt', 'lte'].includes(op)) return typeof value === 'number' ? String(value) : null;
  return valueText(value);
}
function readCond(op, text) {
  if (op === 'regex') return text;
  if (op === 'in') return readList(text);
  if (op === 'cidr') return text.includes(',') || parses(text) ? readList(text) : text;
  if (['gt', 'gte', 'lt', 'lte'].includes(op)) return text.trim() === '' ? NaN : Number(text);
  return readValue(text);
}

// --- JSON <-> the editor's model ------------------------------------------------------------
// Why `rules` cannot be shown in the editor, or null.
function leafModel(j, negated, where) {
  if (!j || typeof j !== 'object' || Array.isArray(j)) return `${where} is not a condition object`;
  if ('all' in j || 'any' in j || 'not' in j) return `${where} nests conditions more than one level deep`;
  for (const k of Object.keys(j)) if (!['field', 'op', 'value'].includes(k)) return `${where} has the key "${k}"`;
  if (typeof j.field !== 'string') return `${where}.field is not a string`;
  const m = /^(body|header|query):(.*)$/s.exec(j.field);
  let kind; let path = '';
  if (j.field === 'method' || j.field === 'source') kind = j.field;
  else if (m && (m[1] === 'body' || m[2] !== '')) { kind = m[1]; path = m[2]; } else return `${where}.field "${j.field}" is not a field the editor knows`;
  const op = j.op === undefined ? 'equals' : j.op;
  if (!OP_NAMES.has(op)) return `${where}.op "${j.op}" is not an operator`;
  let text = '';
  if (op === 'exists') {
    if (j.value !== undefined && typeof j.value !== 'boolean') return `${where}.value is not true or false`;
  } else {
    if (!('value' in j)) return `${where} has no value`;
    text = condText(op, j.value);
    if (text === null) return `${where}.value does not fit ${op}`;
  }
  return {
    negated, kind, path, op, text, exists: j.value === undefined ? true : j.value,
    explicitOp: 'op' in j, explicitValue: 'value' in j,
  };
}

function conditionModel(j, where) {
  if (j && typeof j === 'object' && !Array.isArray(j) && 'not' in j && Object.keys(j).length === 1) return leafModel(j.not, true, `${where}.not`);
  return leafModel(j, false, where);
}

export function toModel(rules) {
  if (rules === undefined || rules === null) return { top: {}, rules: [] };
  if (typeof rules !== 'object' || Array.isArray(rules)) return 'the rules are not an object';
  for (const k of Object.keys(rules)) if (!TOP_KEYS.has(k)) return `the key "${k}" is not one the editor knows`;
  const top = {};
  for (const k of ['preset', 'on_resolved', 'default']) if (k in rules) {
    if (typeof rules[k] !== 'string') return `${k} is not a string`;
    top[k] = rules[k];
  }
  if ('ignore_status' in rules) {
    if (!Number.isInteger(rules.ignore_status)) return 'ignore_status is not a whole number';
    top.ignore_status = rules.ignore_status;
  }
  if ('rules' in rules && !Array.isArray(rules.rules)) return 'rules.rules is not a list';
  const list = [];
  for (const [i, r] of (rules.rules || []).entries()) {
    const where = `rules[${i}]`;
    if (!r || typeof r !== 'object' || Array.isArray(r)) return `${where} is not an object`;
    for (const k of Object.keys(r)) if (!RULE_KEYS.has(k)) return `${where} has the key "${k}"`;
    if ('name' in r && (typeof r.name !== 'string' || r.name === '')) return `${where}.name is not a name`;
    if ('then' in r && r.then !== 'run' && r.then !== 'ignore') return `${where}.then is not run or ignore`;
    const rule = { name: r.name || '', then: r.then || 'run', explicitThen: 'then' in r, combinator: 'all', bare: true, conditions: [], set: [], hasSet: 'set' in r };
    if ('when' in r) {
      const w = r.when;
      const combined = w && typeof w === 'object' && !Array.isArray(w) && Object.keys(w).length === 1 && ('all' in w || 'any' in w) ? Object.keys(w)[0] : null;
      if (combined) {
        if (!Array.isArray(w[combined]) || w[combined].length === 0) return `${where}.when.${combined} is not a list of conditions`;
        rule.combinator = combined;
        rule.bare = false;
        for (const [k, c] of w[combined].entries()) {
          const m = conditionModel(c, `${where}.when.${combined}[${k}]`);
          if (typeof m === 'string') return m;
          rule.conditions.push(m);
        }
      } else {
        const m = conditionModel(w, `${where}.when`);
        if (typeof m === 'string') return m;
        rule.conditions.push(m);
      }
    }
    if ('set' in r) {
      if (!r.set || typeof r.set !== 'object' || Array.isArray(r.set)) return `${where}.set is not an object`;
      for (const [key, v] of Object.entries(r.set)) {
        const from = v && typeof v === 'object' && !Array.isArray(v) && 'from_request' in v;
        if (from && (Object.keys(v).length !== 1 || typeof v.from_request !== 'string')) return `${where}.set.${key} is not a value or {"from_request": FIELD}`;
        rule.set.push(from ? { key, from: true, text: v.from_request } : { key, from: false, text: valueText(v) });
      }
    }
    list.push(rule);
  }
  return { top, rules: list, hasList: 'rules' in rules };
}

function leafJson(c) {
  const field = c.kind === 'method' || c.kind === 'source' ? c.kind : `${c.kind}:${c.path}`;
  const leaf = { field };
  if (c.explicitOp || c.op !== 'equals') leaf.op = c.op;
  if (c.op === 'exists') {
    if (c.explicitValue || c.exists !== true) leaf.value = c.exists;
  } else {
    leaf.value = readCond(c.op, c.text);
  }
  return c.negated ? { not: leaf } : leaf;
}

export function toJson(model) {
  const out = { ...model.top };
  if (model.rules.length || model.hasList) {
    out.rules = model.rules.map((r) => {
      const j = {};
      if (r.name) j.name = r.name;
      if (r.conditions.length === 1 && r.bare) j.when = leafJson(r.conditions[0]);
      else if (r.conditions.length) j.when = { [r.combinator]: r.conditions.map(leafJson) };
      if (r.explicitThen || r.then !== 'run') j.then = r.then;
      if (r.set.length || (r.hasSet && r.then === 'run')) {
        j.set = {};
        for (const s of r.set) j.set[s.key] = s.from ? { from_request: s.text } : readValue(s.text);
      }
      return j;
    });
  }
  return Object.keys(out).length ? out : undefined;
}

// What the client can say before the server does: empty paths, numbers that are not.
function problems(model) {
  const out = [];
  model.rules.forEach((r, i) => {
    r.conditions.forEach((c, k) => {
      if ((c.kind === 'header' || c.kind === 'query') && !c.path.trim()) out.push(`Rule ${i + 1}, condition ${k + 1}: name the ${c.kind}.`);
      if (['gt', 'gte', 'lt', 'lte'].includes(c.op) && !Number.isFinite(readCond(c.op, c.text))) out.push(`Rule ${i + 1}, condition ${k + 1}: ${c.op} compares with a number.`);
      if (c.op !== 'exists' && c.op !== 'equals' && c.op !== 'not_equals' && !c.text.trim()) out.push(`Rule ${i + 1}, condition ${k + 1}: give a value.`);
    });
    r.set.forEach((s) => {
      if (!s.key) out.push(`Rule ${i + 1}: choose the setting "set" changes.`);
      if (s.from && !s.text.trim()) out.push(`Rule ${i + 1}: name the request field ${s.key} is taken from.`);
    });
  });
  return out;
}

// --- the editor ------------------------------------------------------------------------------
// rulesEditor({ initial, setFields }) -> { key, el, input, isSet(), value(), check(), setError(msg),
//   setFields(list), mode() }. `setFields`: the config fields rules may set (the driver's
//   per-request fields); the form calls setFields() when the driver changes.
export function rulesEditor({ initial, setFields = [] }) {
  const id = 'r-rules';
  let allowed = setFields;
  let model = null;
  let jsonMode = false;
  const textarea = h('textarea', { id, name: 'rules', rows: 8, spellcheck: false, class: 'json-input', 'aria-labelledby': `${id}-label`, 'aria-describedby': `${id}-help`, placeholder: 'none' });
  const structured = h('div', { class: 'rules-editor', id: `${id}-editor` });
  const notice = h('p', { class: 'alert alert-warn rules-notice', role: 'status', hidden: true });
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const toggle = h('button', { type: 'button', class: 'btn btn-small', id: 'rules-toggle' }, 'Edit as JSON');
  const el = h('div', { class: 'field rules-field', dataset: { path: 'rules' } },
    h('div', { class: 'section-head' },
      h('span', { class: 'field-label', id: `${id}-label` }, 'Rules ', h('span', { class: 'optional' }, 'optional')),
      toggle),
    h('p', { class: 'field-help', id: `${id}-help` },
      'Which requests run the action, and what they may change. The first rule whose conditions match decides; when none does, the default decides.'),
    notice, structured, textarea, error);

  function setNotice(msg) {
    notice.hidden = !msg;
    notice.textContent = msg || '';
  }

  function showJson() {
    jsonMode = true;
    structured.hidden = true;
    textarea.hidden = false;
    toggle.textContent = 'Edit in the form';
  }
  function showStructured() {
    jsonMode = false;
    structured.hidden = false;
    textarea.hidden = true;
    toggle.textContent = 'Edit as JSON';
    draw();
  }

  function load(rules) {
    const m = toModel(rules);
    if (typeof m === 'string') {
      model = null;
      textarea.value = rules === undefined ? '' : JSON.stringify(rules, null, 2);
      setNotice(`These rules open as JSON: ${m}, which the form cannot show exactly.`);
      showJson();
      return false;
    }
    model = m;
    textarea.value = rules === undefined || rules === null ? '' : JSON.stringify(rules, null, 2);
    setNotice(null);
    showStructured();
    return true;
  }

  toggle.addEventListener('click', () => {
    setError(null);
    if (!jsonMode) {
      const v = toJson(model);
      textarea.value = v === undefined ? '' : JSON.stringify(v, null, 2);
      setNotice(null);
      showJson();
      textarea.focus();
      return;
    }
    const t = textarea.value.trim();
    let parsed;
    try {
      parsed = t ? JSON.parse(t) : undefined;
    } catch (e) {
      setError(`Is not valid JSON: ${e.message}`);
      textarea.focus();
      return;
    }
    if (load(parsed)) {
      const first = structured.querySelector('input, select, button');
      if (first) first.focus();
    } else {
      textarea.focus();
    }
  });

  const sel = (options, value, attrs) => {
    const s = h('select', attrs, options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
    return s;
  };

  function draw() {
    clear(structured);
    if (!model) return;
    const top = model.top;
    const presetSel = sel([['', 'none'], ['alertmanager', 'Alertmanager notifications'], ['registry-push', 'Registry push notifications']], top.preset || '', { id: 'rules-preset', 'aria-label': 'Preset' });
    presetSel.addEventListener('change', () => {
      if (presetSel.value) top.preset = presetSel.value; else { delete top.preset; delete top.on_resolved; }
      if (top.preset !== 'alertmanager') delete top.on_resolved;
      draw();
    });
    const defaultSel = sel([['run', 'run the action'], ['ignore', 'ignore the request']], top.default || 'run', { id: 'rules-default', 'aria-label': 'When no rule matches' });
    defaultSel.addEventListener('change', () => { top.default = defaultSel.value; });
    const resolved = top.preset === 'alertmanager'
      ? sel([['ignore', 'ignore them'], ['inverse', 'run the inverse action'], ['run', 'run the action']], top.on_resolved || 'ignore', { id: 'rules-on-resolved', 'aria-label': 'Resolved alerts' })
      : null;
    if (resolved) resolved.addEventListener('change', () => { top.on_resolved = resolved.value; });
    add(structured,
      h('div', { class: 'rules-top' },
        h('label', { class: 'rules-inline' }, h('span', {}, 'Preset'), presetSel),
        resolved ? h('label', { class: 'rules-inline' }, h('span', {}, 'Resolved alerts'), resolved) : null,
        h('label', { class: 'rules-inline' }, h('span', {}, 'When no rule matches'), defaultSel)),
      model.rules.length === 0 ? h('p', { class: 'muted small rules-empty' }, 'No rules: every request runs the action as configured.') : null,
      h('ol', { class: 'rules-list' }, model.rules.map((r, i) => ruleEl(r, i))),
      h('button', {
        type: 'button', class: 'btn btn-small', id: 'rules-add',
        onclick: () => {
          model.rules.push({ name: '', then: 'run', explicitThen: false, combinator: 'all', bare: true, conditions: [newCondition()], set: [], hasSet: false });
          draw();
          const names = structured.querySelectorAll('.rule-name');
          if (names.length) names[names.length - 1].focus();
        },
      }, '+ Add a rule'));
  }

  function newCondition() {
    return { negated: false, kind: 'body', path: '', op: 'equals', text: '', exists: true, explicitOp: true, explicitValue: true };
  }

  function ruleEl(r, i) {
    const n = i + 1;
    const name = h('input', { type: 'text', class: 'rule-name', value: r.name, placeholder: `rule ${n}`, 'aria-label': `Rule ${n} name`, maxLength: 200 });
    name.addEventListener('input', () => { r.name = name.value; });
    const then = sel([['run', 'run the action'], ['ignore', 'ignore the request']], r.then, { class: 'rule-then', 'aria-label': `Rule ${n}: then` });
    then.addEventListener('change', () => { r.then = then.value; r.explicitThen = true; draw(); });
    const comb = sel([['all', 'all of'], ['any', 'any of']], r.combinator, { class: 'rule-combinator', 'aria-label': `Rule ${n}: match` });
    comb.addEventListener('change', () => { r.combinator = comb.value; r.bare = false; });
    const move = (d) => {
      const j = i + d;
      if (j < 0 || j >= model.rules.length) return;
      [model.rules[i], model.rules[j]] = [model.rules[j], model.rules[i]];
      draw();
    };
    const allowedKeys = [...new Set([...allowed, ...r.set.map((s) => s.key).filter(Boolean)])];
    return h('li', { class: 'rule-card', dataset: { rule: String(i) } },
      h('div', { class: 'rule-head' },
        h('span', { class: 'rule-num' }, `${n}.`), name,
        h('div', { class: 'actions' },
          h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'aria-label': `Move rule ${n} up`, disabled: i === 0, onclick: () => move(-1) }, '↑'),
          h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'aria-label': `Move rule ${n} down`, disabled: i === model.rules.length - 1, onclick: () => move(1) }, '↓'),
          h('button', { type: 'button', class: 'btn btn-small btn-danger-outline', 'aria-label': `Remove rule ${n}`, onclick: () => { model.rules.splice(i, 1); draw(); } }, 'Remove'))),
      h('div', { class: 'rule-when' },
        r.conditions.length ? h('span', { class: 'rule-word' }, 'When ', r.conditions.length > 1 || !r.bare ? comb : null) : h('span', { class: 'rule-word' }, 'Always (no conditions)'),
        h('ul', { class: 'conditions' }, r.conditions.map((c, k) => conditionEl(r, c, n, k))),
        h('button', { type: 'button', class: 'btn btn-small btn-link', onclick: () => { r.conditions.push(newCondition()); if (r.conditions.length > 1) r.bare = false; draw(); } }, '+ condition')),
      h('div', { class: 'rule-then-row' }, h('span', { class: 'rule-word' }, 'then'), then),
      r.then === 'run' ? h('div', { class: 'rule-set' },
        h('span', { class: 'rule-word' }, 'and set'),
        r.set.length === 0 ? h('span', { class: 'muted small' }, allowed.length ? ' nothing (the saved settings run)' : ' nothing: this driver lets rules set no setting') : null,
        h('ul', { class: 'set-list' }, r.set.map((s, k) => setEl(r, s, n, k, allowedKeys))),
        allowed.length ? h('button', { type: 'button', class: 'btn btn-small btn-link', onclick: () => { r.set.push({ key: allowed[0], from: false, text: '' }); draw(); } }, '+ set a value') : null) : null);
  }

  function conditionEl(r, c, n, k) {
    const label = `Rule ${n}, condition ${k + 1}`;
    const not = h('input', { type: 'checkbox', checked: c.negated, 'aria-label': `${label}: not` });
    not.addEventListener('change', () => { c.negated = not.checked; });
    const kind = sel(SOURCES, c.kind, { class: 'cond-kind', 'aria-label': `${label}: field` });
    const path = h('input', { type: 'text', class: 'cond-path', value: c.path, 'aria-label': `${label}: ${c.kind === 'body' ? 'path' : 'name'}`,
      placeholder: c.kind === 'body' ? '/commonLabels/severity or a.b[0]' : c.kind === 'header' ? 'X-GitHub-Event' : 'name', hidden: c.kind === 'method' || c.kind === 'source' });
    kind.addEventListener('change', () => { c.kind = kind.value; if (c.kind === 'method' || c.kind === 'source') c.path = ''; draw(); });
    path.addEventListener('input', () => { c.path = path.value; });
    const op = sel(OPERATORS, c.op, { class: 'cond-op', 'aria-label': `${label}: operator` });
    op.addEventListener('change', () => { c.op = op.value; c.explicitOp = true; draw(); });
    let value;
    if (c.op === 'exists') {
      value = sel([['true', 'yes'], ['false', 'no']], String(c.exists), { class: 'cond-value', 'aria-label': `${label}: exists` });
      value.addEventListener('change', () => { c.exists = value.value === 'true'; c.explicitValue = true; });
    } else {
      value = h('input', { type: 'text', class: 'cond-value', value: c.text, 'aria-label': `${label}: value`,
        placeholder: c.op === 'in' || c.op === 'cidr' ? 'a, b, c' : c.op === 'regex' ? '^refs/heads/main$' : 'value' });
      value.addEventListener('input', () => { c.text = value.value; });
    }
    return h('li', { class: 'condition' },
      h('label', { class: 'cond-not' }, not, h('span', {}, 'not')),
      kind, path, op, value,
      h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'aria-label': `Remove ${label.toLowerCase()}`,
        onclick: () => { r.conditions.splice(k, 1); draw(); } }, '×'));
  }

  function setEl(r, s, n, k, keys) {
    const label = `Rule ${n}, set ${k + 1}`;
    const key = sel(keys.map((x) => [x, x]), s.key, { class: 'set-key', 'aria-label': `${label}: setting` });
    key.addEventListener('change', () => { s.key = key.value; });
    const from = sel([['value', 'to'], ['request', 'from request']], s.from ? 'request' : 'value', { class: 'set-from', 'aria-label': `${label}: source` });
    from.addEventListener('change', () => { s.from = from.value === 'request'; draw(); });
    const value = h('input', { type: 'text', class: 'set-value', value: s.text, 'aria-label': `${label}: ${s.from ? 'request field' : 'value'}`,
      placeholder: s.from ? 'body:/commonAnnotations/scale_by' : 'value' });
    value.addEventListener('input', () => { s.text = value.value; });
    return h('li', { class: 'set-row' }, key, from, value,
      h('button', { type: 'button', class: 'btn btn-small btn-ghost', 'aria-label': `Remove ${label.toLowerCase()}`, onclick: () => { r.set.splice(k, 1); draw(); } }, '×'));
  }

  function setError(msg) {
    error.hidden = !msg;
    error.textContent = msg ? msg.charAt(0).toUpperCase() + msg.slice(1) : '';
    el.classList.toggle('has-error', Boolean(msg));
    textarea.setAttribute('aria-describedby', msg ? `${id}-error ${id}-help` : `${id}-help`);
  }

  load(initial === null ? undefined : initial);

  const api = {
    key: 'rules',
    el,
    get input() { return jsonMode ? textarea : (structured.querySelector('input, select') || toggle); },
    isSet() { return api.value() !== undefined; },
    mode() { return jsonMode ? 'json' : 'form'; },
    value() {
      if (!jsonMode) return toJson(model);
      const t = textarea.value.trim();
      return t ? JSON.parse(t) : undefined;
    },
    check() {
      if (!jsonMode) {
        const p = problems(model);
        return p.length ? p.join(' ') : null;
      }
      const t = textarea.value.trim();
      if (!t) return null;
      try {
        const v = JSON.parse(t);
        return v && typeof v === 'object' && !Array.isArray(v) ? null : 'Must be a JSON object, like {"key": "value"}.';
      } catch (e) {
        return `Is not valid JSON: ${e.message}`;
      }
    },
    setError,
    setFields(list) {
      allowed = list;
      if (!jsonMode) draw();
    },
  };
  return api;
}

// The config fields a driver lets rules set: its schema's "x-tripline-per-request" properties.
export function perRequestFields(schema) {
  return Object.entries((schema && schema.properties) || {}).filter(([, s]) => s && s['x-tripline-per-request']).map(([k]) => k);
}

