// Small DOM helpers: element building without innerHTML, copying, times, dialogs, announcements.

// h('button', {class: 'x', onclick: fn, 'aria-label': '...'}, 'text', child, ...)
// Strings become text nodes (never parsed as HTML); null/false children are skipped.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k in el && typeof el[k] !== 'function' && !k.includes('-')) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

// el.append() that skips null / false children (plain append would insert the text "null").
export function add(el, ...children) {
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let uid = 0;
export function nextId(prefix = 'id') {
  uid += 1;
  return `${prefix}-${uid}`;
}

// --- announcements for screen readers and a visible toast -----------------------------------

// Says `message` to screen readers (a polite live region). With toast: true it is also shown
// for a few seconds, for outcomes that are not otherwise visible where the person is looking.
// With survive: true the toast outlives the next page change: for an action whose outcome is
// that page change (a delete, which goes back to the list).
export function announce(message, kind = 'info', { toast = false, survive = false } = {}) {
  const live = document.getElementById('live');
  if (live) {
    live.textContent = '';
    // Set after a tick, so the same message twice is still announced.
    setTimeout(() => { live.textContent = message; }, 30);
  }
  const toasts = document.getElementById('toasts');
  if (!toast || !toasts) return;
  while (toasts.children.length >= 2) toasts.firstElementChild.remove();
  const t = h('div', { class: `toast toast-${kind}`, dataset: survive ? { survive: '1' } : {} }, message);
  toasts.append(t);
  setTimeout(() => t.classList.add('toast-out'), 3500);
  setTimeout(() => t.remove(), 4000);
}

// Removes the toasts: a page change calls it, so a toast from an earlier action never lingers
// over the next page or form (the live region already said it). A toast announced with
// survive: true stays through one page change, the one its action caused.
export function clearToasts() {
  const toasts = document.getElementById('toasts');
  if (!toasts) return;
  for (const t of [...toasts.children]) {
    if (t.dataset.survive) delete t.dataset.survive; // once
    else t.remove();
  }
}

// --- copying ----------------------------------------------------------------------------------

// Copies text: the async clipboard API where the page is a secure context, else the older
// execCommand route through a temporary textarea. Returns true when the text was copied.
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try {
      await navigator.clipboard.writeText(text);
      return true;
    } catch {
      // fall through to the fallback (e.g. permission denied)
    }
  }
  const ta = h('textarea', { readOnly: true, class: 'offscreen', 'aria-hidden': 'true', tabIndex: -1 });
  ta.value = text;
  const focused = document.activeElement;
  document.body.append(ta);
  ta.select();
  let ok = false;
  try {
    ok = document.execCommand('copy');
  } catch {
    ok = false;
  }
  ta.remove();
  if (focused && focused.focus) focused.focus();
  return ok;
}

// A "Copy" button for a value; `what` names it for screen readers and messages.
// On failure it selects `selectTarget` (when given) so the person can press Ctrl+C.
export function copyButton(getText, what, selectTarget) {
  const btn = h('button', { type: 'button', class: 'btn btn-small btn-copy', 'aria-label': `Copy ${what}` }, 'Copy');
  btn.addEventListener('click', async () => {
    const ok = await copyText(typeof getText === 'function' ? getText() : getText);
    if (ok) {
      btn.textContent = 'Copied';
      btn.classList.add('copied');
      announce(`Copied ${what} to the clipboard.`, 'ok');
      setTimeout(() => {
        btn.textContent = 'Copy';
        btn.classList.remove('copied');
      }, 1800);
    } else {
      if (selectTarget) {
        const range = document.createRange();
        range.selectNodeContents(selectTarget);
        const sel = window.getSelection();
        sel.removeAllRanges();
        sel.addRange(range);
      }
      announce(`Could not copy automatically: the ${what} is selected, press Ctrl+C (⌘C) to copy it.`, 'warn', { toast: true });
    }
  });
  return btn;
}

// A block of copyable text: a label, the text in <pre><code>, and a copy button.
export function copyBlock(label, text, { multiline = false, testid } = {}) {
  const code = h('code', {}, text);
  const pre = h('pre', { class: multiline ? 'copy-text multiline' : 'copy-text', tabIndex: 0, 'aria-label': label }, code);
  return h('div', { class: 'copy-block', dataset: testid ? { testid } : {} },
    h('div', { class: 'copy-head' }, h('span', { class: 'copy-label' }, label),
      copyButton(() => text, label.charAt(0).toLowerCase() + label.slice(1), code)),
    pre);
}

// --- time -------------------------------------------------------------------------------------

export function relativeTime(iso) {
  if (!iso) return '';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return iso;
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 5 && s > -5) return 'just now';
  if (s < 0) return `in ${duration(-s * 1000)}`;
  if (s < 60) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const hr = Math.round(m / 60);
  if (hr < 24) return `${hr} h ago`;
  return new Date(t).toLocaleDateString();
}

export function absoluteTime(iso) {
  if (!iso) return '';
  const t = new Date(iso);
  return Number.isNaN(t.getTime()) ? iso : t.toLocaleString();
}

export function timeEl(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  return h('time', { datetime: iso, title: absoluteTime(iso) }, relativeTime(iso));
}

export function duration(ms) {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

// --- what an execution changed ----------------------------------------------------------------

function show(v) {
  if (v === null || v === undefined) return 'none';
  if (Array.isArray(v)) return v.length ? v.join(', ') : 'none';
  if (typeof v === 'object') return JSON.stringify(v);
  return String(v);
}

// Human lines for a plan or result object: "replicas 3 → 5" from replicas_before/replicas or
// replicas_after, "value 1.2.3.4 → 5.6.7.8" from before/after. Other scalar keys are left to the
// raw JSON. Returns [] when nothing recognisable is there.
export function changeLines(obj) {
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return [];
  const lines = [];
  for (const key of Object.keys(obj)) {
    if (!key.endsWith('_before')) continue;
    const base = key.slice(0, -'_before'.length);
    const after = `${base}_after` in obj ? obj[`${base}_after`] : obj[base];
    if (!(`${base}_after` in obj) && !(base in obj)) continue;
    lines.push(`${base.replace(/_/g, ' ')} ${show(obj[key])} → ${show(after)}`);
  }
  if ('before' in obj && 'after' in obj) {
    const label = obj.name ? `${obj.type ? `${obj.type} ` : ''}${obj.name}` : 'value';
    lines.unshift(`${label} ${show(obj.before)} → ${show(obj.after)}`);
  }
  if (obj.clamped === true) lines.push('clamped to the bounds');
  if (obj.changed === false) lines.push('already in that state: nothing changed');
  return lines;
}

// --- dialogs ----------------------------------------------------------------------------------

// A modal confirmation. Resolves true when confirmed. Focus goes to the safe choice (Cancel) and
// returns to whatever had it before, when the dialog closes in any way (Esc included).
export function confirmDialog({ title, body, confirmLabel = 'Confirm', danger = false }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const titleId = nextId('dlg-title');
    const bodyId = nextId('dlg-body');
    const cancel = h('button', { type: 'button', class: 'btn', value: 'cancel' }, 'Cancel');
    const confirm = h('button', { type: 'button', class: danger ? 'btn btn-danger' : 'btn btn-primary', value: 'confirm' }, confirmLabel);
    const dlg = h('dialog', { class: 'dialog', 'aria-labelledby': titleId, 'aria-describedby': bodyId },
      h('h2', { id: titleId }, title),
      h('div', { id: bodyId, class: 'dialog-body' }, body),
      h('div', { class: 'dialog-actions' }, cancel, confirm));
    let result = false;
    cancel.addEventListener('click', () => dlg.close());
    confirm.addEventListener('click', () => { result = true; dlg.close(); });
    dlg.addEventListener('click', (e) => { if (e.target === dlg) dlg.close(); }); // backdrop
    dlg.addEventListener('close', () => {
      dlg.remove();
      if (opener && opener.isConnected && opener.focus) opener.focus();
      resolve(result);
    });
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

// A status badge: "succeeded", "failed", "enabled", ...
export function badge(text, kind = text) {
  return h('span', { class: `badge badge-${kind}` }, text);
}
