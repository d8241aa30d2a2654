// Builds a form from a driver's JSON Schema (as served by GET /api/v1/drivers), so a new driver
// needs no UI code. Understood: type string / integer / number / boolean, enum (a select), const,
// default, minimum / maximum, pattern, title / description / examples, required, writeOnly (a
// password input that keeps the stored secret unless retyped), nested objects (a fieldset) and
// oneOf / anyOf (a choice between the alternatives). Anything else gets a JSON textarea.
//
// Fields whose title ends in "(a/b)" or whose description starts with "a only" are shown only
// while a sibling select has one of those values, and are left out of the config while hidden:
// "By how many (up/down)" follows `action`, "DNS server (rfc2136)" follows `backend`. Such a
// field that the schema's if/then/else (top-level or in allOf) requires in one branch is required
// while shown.

import { h, add, nextId } from './dom.js';

export const MASK = '********';

function capitalize(s) {
  return s ? s.charAt(0).toUpperCase() + s.slice(1) : s;
}

function humanize(key) {
  return capitalize(String(key).replace(/[_-]+/g, ' '));
}

function primaryType(schema) {
  const t = schema.type;
  if (Array.isArray(t)) return t.find((x) => x !== 'null');
  if (t) return t;
  if (schema.properties) return 'object';
  if (Array.isArray(schema.enum) && schema.enum.length) return typeof schema.enum[0] === 'number' ? 'number' : 'string';
  return undefined;
}

function isEmpty(v) {
  return v === undefined || v === null || v === '';
}

// Which values of a sibling a field applies to, from its title "(a/b)" or description "a only".
function appliesTo(schema) {
  const out = [];
  const t = /\(([^()]+)\)\s*$/.exec(schema.title || '');
  if (t) out.push(t[1]);
  const d = /^\s*([\w.-]+(?:\s*(?:\/|,|or)\s*[\w.-]+)*)\s+only\b/i.exec(schema.description || '');
  if (d) out.push(d[1]);
  return out.map((s) => s.split(/\s*(?:\/|,|\bor\b)\s*/).map((x) => x.trim().toLowerCase()).filter(Boolean));
}

// --- nodes -----------------------------------------------------------------------------------
// Every node has: el, get() (the value, or undefined to leave it out), check() (client-side
// errors as [{node, message}]), setError(message), focus(), visible(), and `path`.
// Nodes register themselves by path in ctx.registry so server errors find their field.

function register(ctx, path, node) {
  if (!ctx.registry.has(path)) ctx.registry.set(path, []);
  ctx.registry.get(path).push(node);
}

function isShown(el) {
  for (let e = el; e; e = e.parentElement) if (e.hidden) return false;
  return true;
}

function fieldShell(ctx, { path, label, required, description, inputId, hint }) {
  const errorId = `${inputId}-error`;
  const descId = `${inputId}-desc`;
  const labelEl = h('label', { for: inputId, class: 'field-label' }, label,
    required ? null : [' ', h('span', { class: 'optional' }, 'optional')]);
  const texts = [description, hint].filter(Boolean).map((t) => (/[.!?:)]$/.test(t.trim()) ? t.trim() : `${t.trim()}.`));
  const desc = texts.length ? h('p', { id: descId, class: 'field-help' }, texts.join(' ')) : null;
  const error = h('p', { id: errorId, class: 'field-error', hidden: true });
  const wrap = h('div', { class: 'field', dataset: { path } });
  return { wrap, labelEl, desc, error, errorId, descId: desc ? descId : null };
}

function describedBy(input, ids) {
  const list = ids.filter(Boolean).join(' ');
  if (list) input.setAttribute('aria-describedby', list);
  else input.removeAttribute('aria-describedby');
}

function scalarNode(schema, ctx) {
  const type = primaryType(schema);
  const { path, key, required } = ctx;
  const inputId = nextId('f');
  const label = schema.title || humanize(key);
  const hasValue = !isEmpty(ctx.value);
  const initial = hasValue ? ctx.value : schema.default;
  let input;
  let hint = null;
  const examples = Array.isArray(schema.examples) && schema.examples.length
    ? `e.g. ${schema.examples.slice(0, 2).join(', ')}` : '';

  if (Array.isArray(schema.enum)) {
    const names = schema['x-enumNames'] || schema.enumNames || [];
    input = h('select', { id: inputId, name: path });
    const needsBlank = !required || isEmpty(initial);
    if (needsBlank) input.append(h('option', { value: '' }, required ? 'Choose…' : '— none —'));
    schema.enum.forEach((v, i) => input.append(h('option', { value: String(v) }, names[i] ? String(names[i]) : String(v))));
    input.value = isEmpty(initial) ? '' : String(initial);
  } else if (type === 'boolean') {
    input = h('input', { id: inputId, name: path, type: 'checkbox', checked: initial === true });
  } else if (type === 'integer' || type === 'number') {
    input = h('input', {
      id: inputId, name: path, type: 'number', inputMode: type === 'integer' ? 'numeric' : 'decimal',
      step: type === 'integer' ? '1' : 'any',
    });
    if (schema.minimum !== undefined) input.min = String(schema.minimum);
    if (schema.maximum !== undefined) input.max = String(schema.maximum);
    input.value = isEmpty(initial) ? '' : String(initial);
    if (examples) input.placeholder = examples;
  } else {
    const secret = schema.writeOnly === true;
    let kind = 'text';
    if (secret) kind = 'password';
    else if (schema.format === 'uri' || schema.format === 'url') kind = 'url';
    else if (schema.format === 'email') kind = 'email';
    input = h('input', {
      id: inputId, name: path, type: kind, spellcheck: false, autocapitalize: 'off',
      autocomplete: secret ? 'new-password' : 'off',
    });
    if (schema.maxLength) input.maxLength = schema.maxLength;
    if (secret) {
      if (ctx.mode === 'edit' && ctx.value === MASK) {
        input.value = MASK;
        input.dataset.masked = 'true';
        hint = 'Stored secret, not shown: leave it as is to keep it, or type a new one.';
        // Focusing a kept secret selects it, so typing replaces it rather than appending.
        input.addEventListener('focus', () => { if (input.value === MASK) input.select(); });
      } else if (ctx.mode === 'clone' && hasValue) {
        hint = 'Secrets are not copied: type it again.';
      } else {
        hint = 'Write-only: tripline stores it encrypted and never shows it again.';
      }
    } else {
      input.value = isEmpty(initial) ? '' : String(initial);
      if (examples) input.placeholder = examples;
    }
  }

  const shell = fieldShell(ctx, { path, label, required, description: schema.description, inputId, hint });
  if (type === 'boolean') {
    shell.wrap.classList.add('field-check');
    add(shell.wrap, h('div', { class: 'check-row' }, input, shell.labelEl), shell.desc, shell.error);
  } else {
    add(shell.wrap, shell.labelEl, shell.desc, input, shell.error);
  }
  if (type === 'integer' || type === 'number') shell.wrap.classList.add('field-number');
  describedBy(input, [shell.descId]);

  const node = {
    path, el: shell.wrap, input, schema, key,
    raw: () => (type === 'boolean' ? input.checked : input.value),
    get() {
      if (type === 'boolean') return input.checked;
      const v = input.value;
      if (v === '') return undefined;
      if (Array.isArray(schema.enum)) {
        const match = schema.enum.find((e) => String(e) === v);
        return match === undefined ? v : match;
      }
      if (type === 'integer' || type === 'number') {
        const n = Number(v);
        return Number.isFinite(n) ? n : v;
      }
      return v;
    },
    check() {
      const v = node.get();
      if (type === 'boolean') return [];
      if (isEmpty(v)) {
        if (!required) return [];
        return [{ node, message: Array.isArray(schema.enum) ? 'Choose one.' : 'This is required.' }];
      }
      if (type === 'integer' || type === 'number') {
        if (input.validity && input.validity.badInput) return [{ node, message: 'Must be a number.' }];
        if (typeof v !== 'number') return [{ node, message: 'Must be a number.' }];
        if (type === 'integer' && !Number.isInteger(v)) return [{ node, message: 'Must be a whole number.' }];
        if (schema.minimum !== undefined && v < schema.minimum) return [{ node, message: `Must be at least ${schema.minimum}.` }];
        if (schema.maximum !== undefined && v > schema.maximum) return [{ node, message: `Must be at most ${schema.maximum}.` }];
      }
      if (typeof v === 'string' && !(schema.writeOnly && v === MASK)) {
        if (schema.minLength && v.length < schema.minLength) return [{ node, message: `Must be at least ${schema.minLength} characters.` }];
        if (schema.pattern) {
          let re = null;
          try { re = new RegExp(schema.pattern, 'u'); } catch { re = null; }
          if (re && !re.test(v)) return [{ node, message: 'Has characters or a shape that is not allowed here.' }];
        }
      }
      return [];
    },
    setError(message) {
      shell.error.hidden = !message;
      shell.error.textContent = message ? capitalize(message) : '';
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
      describedBy(input, [message ? shell.errorId : null, shell.descId]);
      shell.wrap.classList.toggle('has-error', Boolean(message));
    },
    focus() { input.focus(); },
    visible: () => isShown(shell.wrap),
  };
  register(ctx, path, node);
  return node;
}

function constNode(schema, ctx) {
  const node = {
    path: ctx.path, el: null, key: ctx.key, schema,
    raw: () => schema.const,
    get: () => schema.const,
    check: () => [],
    setError: () => {},
    focus: () => {},
    visible: () => false,
  };
  return node;
}

function jsonNode(schema, ctx, why) {
  const inputId = nextId('f');
  const label = schema.title || humanize(ctx.key);
  const shell = fieldShell(ctx, {
    path: ctx.path, label, required: ctx.required, inputId,
    description: [schema.description, why || 'Enter it as JSON.'].filter(Boolean).join(' '),
  });
  const initial = !isEmpty(ctx.value) ? ctx.value : schema.default;
  const input = h('textarea', { id: inputId, name: ctx.path, rows: 4, spellcheck: false, class: 'json-input' });
  input.value = initial === undefined ? '' : JSON.stringify(initial, null, 2);
  add(shell.wrap, shell.labelEl, shell.desc, input, shell.error);
  describedBy(input, [shell.descId]);
  const node = {
    path: ctx.path, el: shell.wrap, input, schema, key: ctx.key,
    raw: () => input.value,
    get() {
      const t = input.value.trim();
      if (!t) return undefined;
      try { return JSON.parse(t); } catch { return t; }
    },
    check() {
      const t = input.value.trim();
      if (!t) return ctx.required ? [{ node, message: 'This is required (as JSON).' }] : [];
      try { JSON.parse(t); } catch (e) { return [{ node, message: `Is not valid JSON: ${e.message}` }]; }
      return [];
    },
    setError(message) {
      shell.error.hidden = !message;
      shell.error.textContent = message ? capitalize(message) : '';
      if (message) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
      describedBy(input, [message ? shell.errorId : null, shell.descId]);
      shell.wrap.classList.toggle('has-error', Boolean(message));
    },
    focus() { input.focus(); },
    visible: () => isShown(shell.wrap),
  };
  register(ctx, ctx.path, node);
  return node;
}

// Orders properties: an explicit `x-order` wins; else required first, each field that depends on
// a select right after it, fixed single-value choices first, and `min` just before `max`.
function orderKeys(schema, deps) {
  const props = schema.properties || {};
  const keys = Object.keys(props);
  if (Array.isArray(schema['x-order'])) {
    const first = schema['x-order'].filter((k) => k in props);
    return [...first, ...keys.filter((k) => !first.includes(k))];
  }
  const required = (schema.required || []).filter((k) => k in props);
  let order = [...required, ...keys.filter((k) => !required.includes(k))];
  const dependents = new Set([...deps.values()].flat());
  const out = [];
  for (const k of order) {
    if (dependents.has(k)) continue;
    out.push(k);
    for (const d of deps.get(k) || []) out.push(d);
  }
  order = out;
  const fixed = order.filter((k) => Array.isArray(props[k].enum) && props[k].enum.length === 1);
  order = [...fixed, ...order.filter((k) => !fixed.includes(k))];
  if (order.includes('min') && order.includes('max')) {
    order = order.filter((k) => k !== 'min');
    order.splice(order.indexOf('max'), 0, 'min');
  }
  return order;
}

// Which field depends on which select: conditions (key -> {controller, tokens}) and deps
// (controller key -> [dependent keys]).
function dependencies(schema) {
  const props = schema.properties || {};
  const deps = new Map();
  const conditions = new Map();
  for (const [k, s] of Object.entries(props)) {
    for (const tokens of appliesTo(s)) {
      const controller = Object.keys(props).find((c) => c !== k && Array.isArray(props[c].enum) &&
        props[c].enum.length > 1 && tokens.every((t) => props[c].enum.some((e) => String(e).toLowerCase() === t)));
      if (controller) {
        if (!deps.has(controller)) deps.set(controller, []);
        deps.get(controller).push(k);
        conditions.set(k, { controller, tokens });
        break;
      }
    }
  }
  return { deps, conditions };
}

// The order the form shows an object's properties in (used for read-only views too).
export function propertyOrder(schema) {
  return orderKeys(schema || {}, dependencies(schema || {}).deps);
}

// Keys that the schema's if/then/else requires in one branch (at the top, or in each entry of
// `allOf`), and that are shown only for some values of a select: required while shown
// (scale-service: "service" for swarm, "name" for kubernetes; dns-update: the TSIG fields for
// rfc2136, the provider URL for externaldns-webhook, the value for upsert). So the form marks
// them required where they apply, instead of "optional" and then the server's "is required".
// Hidden fields are never checked.
function conditionallyRequired(schema, conditions) {
  const branches = [schema, ...(Array.isArray(schema.allOf) ? schema.allOf : [])];
  const keys = branches.flatMap((b) => [...(b?.then?.required || []), ...(b?.else?.required || [])]);
  return keys.filter((k) => conditions.has(k));
}

function objectNode(schema, ctx, { top = false, bare = false } = {}) {
  const props = schema.properties || {};
  const value = ctx.value && typeof ctx.value === 'object' && !Array.isArray(ctx.value) ? ctx.value : {};
  const { deps, conditions } = dependencies(schema);
  const requiredSet = new Set([...(schema.required || []), ...conditionallyRequired(schema, conditions)]);

  const children = [];
  for (const k of orderKeys(schema, deps)) {
    const child = buildNode(props[k], {
      ...ctx,
      path: `${ctx.path}.${k}`,
      key: k,
      required: requiredSet.has(k),
      value: value[k],
    });
    children.push({ key: k, node: child, condition: conditions.get(k) });
  }

  let el;
  let legendError = null;
  if (top || bare) {
    el = h('div', { class: 'fields' });
  } else {
    legendError = h('p', { class: 'field-error', hidden: true, id: nextId('fs-error') });
    el = h('fieldset', { class: 'fieldset', dataset: { path: ctx.path } },
      h('legend', {}, schema.title || humanize(ctx.key),
        ctx.required ? null : [' ', h('span', { class: 'optional' }, 'optional')]),
      schema.description ? h('p', { class: 'field-help' }, schema.description) : null,
      legendError);
  }
  for (const c of children) if (c.node.el) el.append(c.node.el);

  const byKey = new Map(children.map((c) => [c.key, c.node]));
  function applyConditions() {
    for (const c of children) {
      if (!c.condition || !c.node.el) continue;
      const ctl = byKey.get(c.condition.controller);
      const current = String(ctl.raw()).toLowerCase();
      c.node.el.hidden = !c.condition.tokens.includes(current);
    }
  }
  el.addEventListener('change', applyConditions);
  applyConditions();

  const node = {
    path: ctx.path, el, schema, key: ctx.key, children,
    raw: () => node.get(),
    get() {
      const out = {};
      for (const c of children) {
        if (c.node.el && c.node.el.hidden) continue;
        const v = c.node.get();
        if (v !== undefined) out[c.key] = v;
      }
      if (!top && !ctx.required && children.every((c) => !c.node.el || c.node.get() === undefined || c.node.el.hidden)) return undefined;
      return out;
    },
    check() {
      if (!top && !ctx.required && node.get() === undefined) return [];
      return children.filter((c) => !(c.node.el && c.node.el.hidden)).flatMap((c) => c.node.check());
    },
    setError(message) {
      if (!legendError) return;
      legendError.hidden = !message;
      legendError.textContent = message ? capitalize(message) : '';
      el.classList.toggle('has-error', Boolean(message));
    },
    focus() {
      const first = children.find((c) => c.node.visible());
      if (first) first.node.focus();
    },
    visible: () => isShown(el),
  };
  if (!top) register(ctx, ctx.path, node);
  return node;
}

function alternativeTitle(alt, i) {
  if (alt.title) return alt.title;
  const t = primaryType(alt);
  return t ? `${humanize(t)} (option ${i + 1})` : `Option ${i + 1}`;
}

function matches(alt, value) {
  if (isEmpty(value)) return false;
  const t = primaryType(alt);
  if (t === 'object') {
    if (typeof value !== 'object' || Array.isArray(value)) return false;
    return Object.entries(alt.properties || {}).every(([k, s]) => !('const' in s) || value[k] === s.const);
  }
  if (t === 'integer') return Number.isInteger(value);
  if (t === 'number') return typeof value === 'number';
  if (t === 'string') return typeof value === 'string';
  if (t === 'boolean') return typeof value === 'boolean';
  return false;
}

function renderable(schema, depth = 0) {
  if (depth > 4) return false;
  if ('const' in schema) return true;
  const t = primaryType(schema);
  if (schema.oneOf || schema.anyOf) return false; // no choice inside a choice
  if (t === 'object') return Object.values(schema.properties || {}).every((s) => renderable(s, depth + 1));
  return ['string', 'integer', 'number', 'boolean'].includes(t);
}

function choiceNode(schema, ctx) {
  const alts = schema.oneOf || schema.anyOf;
  if (!alts.every((a) => renderable(a))) return jsonNode(schema, ctx, 'This field has a shape the form cannot draw: enter it as JSON.');
  const selectId = nextId('f');
  const label = schema.title || humanize(ctx.key);
  const shell = fieldShell(ctx, { path: ctx.path, label, required: ctx.required, description: schema.description, inputId: selectId });
  const select = h('select', { id: selectId, name: `${ctx.path}#choice` });
  if (!ctx.required) select.append(h('option', { value: '' }, '— none —'));
  alts.forEach((a, i) => select.append(h('option', { value: String(i) }, alternativeTitle(a, i))));
  const chosen = alts.findIndex((a) => matches(a, ctx.value));
  select.value = chosen >= 0 ? String(chosen) : (ctx.required ? '0' : '');

  const self = { path: ctx.path };
  register(ctx, ctx.path, self); // the choice itself answers for errors on the whole value
  const panes = alts.map((a, i) => {
    const sub = { ...ctx, required: true, value: i === chosen ? ctx.value : undefined };
    const t = primaryType(a);
    const node = t === 'object' ? objectNode(a, sub, { bare: true })
      : buildNode({ ...a, title: a.title ? `${label}: ${a.title.charAt(0).toLowerCase()}${a.title.slice(1)}` : label }, sub);
    const pane = h('div', { class: 'choice-pane', hidden: String(i) !== select.value });
    if (node.el) pane.append(node.el);
    return { node, pane };
  });
  const panesEl = h('div', { class: 'choice-panes' }, panes.map((p) => p.pane));
  select.addEventListener('change', () => panes.forEach((p, i) => { p.pane.hidden = String(i) !== select.value; }));

  shell.wrap.classList.add('field-choice');
  add(shell.wrap, shell.labelEl, shell.desc, select, shell.error, panesEl);
  describedBy(select, [shell.descId]);
  const current = () => (select.value === '' ? null : panes[Number(select.value)]);
  Object.assign(self, {
    el: shell.wrap, input: select, schema, key: ctx.key,
    raw: () => self.get(),
    get: () => { const c = current(); return c ? c.node.get() : undefined; },
    check() {
      const c = current();
      if (!c) return ctx.required ? [{ node: self, message: 'Choose one.' }] : [];
      return c.node.check();
    },
    setError(message) {
      shell.error.hidden = !message;
      shell.error.textContent = message ? capitalize(message) : '';
      if (message) select.setAttribute('aria-invalid', 'true'); else select.removeAttribute('aria-invalid');
      describedBy(select, [message ? shell.errorId : null, shell.descId]);
      shell.wrap.classList.toggle('has-error', Boolean(message));
    },
    focus: () => select.focus(),
    visible: () => isShown(shell.wrap),
  });
  return self;
}

function buildNode(schema, ctx) {
  if (!schema || typeof schema !== 'object') return jsonNode({}, ctx);
  if ('const' in schema) return constNode(schema, ctx);
  if (Array.isArray(schema.oneOf) || Array.isArray(schema.anyOf)) return choiceNode(schema, ctx);
  const t = primaryType(schema);
  if (t === 'object' && schema.properties) return objectNode(schema, ctx);
  if (['string', 'integer', 'number', 'boolean'].includes(t)) return scalarNode(schema, ctx);
  return jsonNode(schema, ctx);
}

// The form for a driver's config. `mode` is 'create', 'edit' or 'clone'.
export function schemaForm(schema, value, { mode = 'create', path = 'config' } = {}) {
  const registry = new Map();
  const root = objectNode(schema || { type: 'object', properties: {} }, {
    path, key: path, required: true, value: value || {}, mode, registry,
  }, { top: true });
  return {
    el: root.el,
    value: () => root.get(),
    // Client-side checks; marks the fields and returns [{path, message, node}].
    validate() {
      for (const list of registry.values()) for (const n of list) if (n.setError) n.setError(null);
      const errs = root.check();
      for (const e of errs) e.node.setError(e.message);
      return errs.map((e) => ({ path: e.node.path, message: e.message, node: e.node }));
    },
    clearErrors() {
      for (const list of registry.values()) for (const n of list) if (n.setError) n.setError(null);
    },
    // Shows a server error next to the field it names ("config.min"), or the nearest enclosing
    // field that is on screen. Returns the node, or null when no field matches.
    showError(field, message) {
      let p = field;
      while (p && p.startsWith(path)) {
        const list = registry.get(p) || [];
        const node = list.find((n) => n.visible && n.visible()) || null;
        if (node) {
          node.setError(p === field ? message : `${field.slice(p.length + 1)} ${message}`);
          return node;
        }
        const i = p.lastIndexOf('.');
        if (i < 0) break;
        p = p.slice(0, i);
      }
      return null;
    },
  };
}
