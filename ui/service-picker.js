// The target picker of a receiver's form: the target field (scale-service's "service" for Swarm,
// "name" for Kubernetes) becomes a combobox listing what the driver's peer holds now, with the
// current replicas ("web — 3 replicas"), filtered as you type (ARIA 1.2 combobox with a listbox:
// arrows move, Enter picks, Escape closes). Listed by GET /api/v1/drivers/{name}/targets
// (operator or admin); when the peer cannot be reached the field says so and still takes a
// typed name. A driver gets a picker by answering list_targets (drivers/driver.h) and a row here.

import { opsApi, can } from './api.js';
import { h, add, clear, nextId } from './dom.js';

// driver -> backend -> the config field the picker fills (besides the others its items name).
const PICKERS = {
  'scale-service': { swarm: 'service', kubernetes: 'name' },
};

const MAX_SHOWN = 50;

function replicasText(n) {
  if (n === null || n === undefined) return 'global (no replica count)';
  return `${n} ${n === 1 ? 'replica' : 'replicas'}`;
}

function setField(form, key, value) {
  const el = form.querySelector(`[name="config.${key}"]`);
  if (!el || el.value === String(value)) return;
  el.value = String(value);
  el.dispatchEvent(new Event('input', { bubbles: true }));
  el.dispatchEvent(new Event('change', { bubbles: true }));
}

function attach(form, driver, backend, field) {
  const input = form.querySelector(`input[name="config.${field}"]`);
  if (!input || input.dataset.picker) return;
  input.dataset.picker = backend;
  const listId = nextId('picker');
  const statusId = `${listId}-status`;
  const list = h('ul', { id: listId, class: 'picker-list', role: 'listbox', hidden: true, 'aria-label': backend === 'swarm' ? 'Services in the swarm' : 'Deployments' });
  const status = h('p', { id: statusId, class: 'field-help picker-status', 'aria-live': 'polite' });
  input.setAttribute('role', 'combobox');
  input.setAttribute('aria-autocomplete', 'list');
  input.setAttribute('aria-expanded', 'false');
  input.setAttribute('aria-controls', listId);
  const described = (input.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
  input.setAttribute('aria-describedby', [...described, statusId].join(' '));
  const wrap = h('div', { class: 'picker' });
  input.replaceWith(wrap);
  add(wrap, input, list);
  wrap.after(status);

  let items = null; // null: not loaded yet
  let loading = null;
  let retryAfter = 0; // after a failure, focus does not ask again before this (Date.now())
  let shown = [];
  let active = -1;

  const chosenNote = () => {
    const found = items && items.find((t) => t.name === input.value.trim());
    status.textContent = found ? `${found.name} has ${replicasText(found.replicas)} now.` : (items && items.length ? `${items.length} listed${items.truncated ? ' (more exist: type to narrow)' : ''}; or type a name.` : status.textContent);
  };
  const close = () => {
    list.hidden = true;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
    active = -1;
  };
  const highlight = (i) => {
    active = i;
    for (const [n, li] of [...list.children].entries()) li.setAttribute('aria-selected', String(n === i));
    if (i >= 0 && list.children[i]) {
      input.setAttribute('aria-activedescendant', list.children[i].id);
      list.children[i].scrollIntoView({ block: 'nearest' });
    } else {
      input.removeAttribute('aria-activedescendant');
    }
  };
  const choose = (t) => {
    for (const [k, v] of Object.entries(t.config || {})) if (k !== 'backend') setField(form, k, v);
    input.value = t.name;
    close();
    chosenNote();
    input.focus();
  };
  const draw = () => {
    const q = input.value.trim().toLowerCase();
    shown = (items || []).filter((t) => !q || t.name.toLowerCase().includes(q)).slice(0, MAX_SHOWN);
    clear(list);
    shown.forEach((t, i) => {
      const li = h('li', { id: `${listId}-${i}`, role: 'option', class: 'picker-option', 'aria-selected': 'false', dataset: { name: t.name } },
        h('span', { class: 'picker-name' }, t.name), h('span', { class: 'picker-replicas' }, ` — ${replicasText(t.replicas)}`));
      // mousedown, not click: the input keeps focus, so the list is not closed by its blur first.
      li.addEventListener('mousedown', (e) => { e.preventDefault(); choose(t); });
      list.append(li);
    });
    const open = shown.length > 0 && document.activeElement === input;
    list.hidden = !open;
    input.setAttribute('aria-expanded', String(open));
    highlight(-1);
  };
  const load = () => {
    if (loading) return loading;
    // A failed listing is not asked again on every focus: the server holds a thread for each.
    if (Date.now() < retryAfter) return Promise.resolve();
    status.textContent = backend === 'swarm' ? 'Listing the swarm’s services…' : 'Listing Deployments…';
    loading = opsApi.targets(driver, backend).then((r) => {
      items = r.items;
      items.truncated = r.truncated;
      status.textContent = items.length
        ? `${items.length} listed${r.truncated ? ' (more exist: type to narrow)' : ''}; pick one or type a name.`
        : 'None found: type a name.';
      chosenNote();
      draw();
    }, (err) => {
      items = [];
      loading = null; // try again on a focus at least 10 s from now
      retryAfter = Date.now() + 10000;
      status.textContent = err.status === 404
        ? `No list here: ${err.message}. Type a name.`
        : `Could not list them: ${err.message}. Type a name; tripline checks it when you save.`;
      status.classList.add('picker-error');
    });
    return loading;
  };
  input.addEventListener('focus', () => { load().then(draw); });
  input.addEventListener('input', () => { if (items) draw(); });
  input.addEventListener('blur', () => { close(); chosenNote(); });
  input.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      if (list.hidden) draw();
      if (!shown.length) return;
      e.preventDefault();
      const next = e.key === 'ArrowDown' ? Math.min(active + 1, shown.length - 1) : Math.max(active - 1, 0);
      highlight(next);
    } else if (e.key === 'Enter' && !list.hidden && active >= 0) {
      e.preventDefault(); // picks; does not submit the form
      choose(shown[active]);
    } else if (e.key === 'Escape' && !list.hidden) {
      e.preventDefault();
      close();
    }
  });
}

// Called after the config form is drawn. Listing needs an operator or admin token; without one
// the fields stay plain text inputs.
export function attachTargetPickers(form, driver) {
  const pickers = PICKERS[driver];
  if (!pickers || !form || !can('operator')) return;
  for (const [backend, field] of Object.entries(pickers)) attach(form, driver, backend, field);
}
