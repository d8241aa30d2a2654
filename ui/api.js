// The management API client. The admin token lives in this module's memory only: never in
// localStorage, sessionStorage or a cookie, so a reload asks for it again and no ambient
// credential exists for another site to ride on.

let token = null;
let me = null; // GET /whoami of the token: { id, name, role }
let operates = null; // a promise: may this token act (operator or admin)? Asked once per sign-in
const listeners = new Set();

export function signedIn() {
  return token !== null;
}

export function signOut(reason) {
  token = null;
  me = null;
  operates = null;
  for (const fn of listeners) fn(reason);
}

// Called with a reason ("signed-out", "rejected") whenever the token is dropped.
export function onSignOut(fn) {
  listeners.add(fn);
}

export class ApiError extends Error {
  constructor(status, body, fallback) {
    super((body && body.message) || fallback);
    this.status = status;
    this.code = body && body.error;
    this.fields = (body && Array.isArray(body.fields) && body.fields) || [];
  }
}

function describeStatus(status) {
  switch (status) {
    case 401: return 'Your admin token was not accepted. Sign in again.';
    // The management API's only 403: the token's role is below the route's. Its answer names
    // the role needed (server/api/admin_api.cpp) and is shown instead; this is for none.
    case 403: return 'Your token\'s role does not allow that.';
    case 404: return 'Not found: it may have been deleted in the meantime.';
    case 409: return 'That conflicts with something that already exists.';
    case 412: return 'Someone saved a change to this receiver after you opened it. Open it again to see it, then edit.';
    case 413: return 'That is too large for tripline to accept.';
    case 503: return 'tripline could not do that just now. Try again in a moment.';
    default: return `tripline answered with an unexpected error (HTTP ${status}).`;
  }
}

async function request(method, path, body, tokenOverride, extraHeaders) {
  const headers = { Accept: 'application/json', ...extraHeaders };
  const auth = tokenOverride ?? token;
  if (auth) headers.Authorization = `Bearer ${auth}`;
  const init = { method, headers, cache: 'no-store', credentials: 'omit' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(`/api/v1${path}`, init);
  } catch {
    throw new ApiError(0, null, `Cannot reach tripline at ${location.host}. Is it running? Check your connection and try again.`);
  }
  if (res.status === 204) return null;
  let data = null;
  const text = await res.text();
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!res.ok) {
    const err = new ApiError(res.status, data, describeStatus(res.status));
    if (res.status === 401 && tokenOverride === undefined && token !== null) signOut('rejected');
    throw err;
  }
  return data;
}

// Checks a token against the API and keeps it (in memory) when it works, with who it is.
export async function signIn(candidate) {
  await request('GET', '/drivers', undefined, candidate);
  me = await request('GET', '/whoami', undefined, candidate);
  token = candidate;
}

// The signed-in token's { id, name, role }: what the UI shows or hides by (docs/security.md).
export function caller() {
  return me;
}

// Whether the signed-in token's role is at least `role` (read-only < operator < admin).
export function can(role) {
  const order = ['read-only', 'operator', 'admin'];
  return me !== null && order.indexOf(me.role) >= order.indexOf(role);
}

// The operations page's calls (ui/operations.js, ui/pause-banner.js, ui/service-picker.js).
export const opsApi = {
  tokens: () => request('GET', '/tokens'),
  createToken: (name, role) => request('POST', '/tokens', { name, role }),
  revokeToken: (id) => request('DELETE', `/tokens/${encodeURIComponent(id)}`),
  workers: () => request('GET', '/workers'),
  pauseWorkers: () => request('POST', '/workers/pause'),
  resumeWorkers: () => request('POST', '/workers/resume'),
  peers: () => request('GET', '/peers'),
  targets: (driver, backend) => request('GET',
    `/drivers/${encodeURIComponent(driver)}/targets?backend=${encodeURIComponent(backend || '')}`),
};

// Whether the signed-in token may act (re-run, cancel, redeliver): operators and admins may,
// read-only tokens may not (docs/security.md "Roles"). Asked of GET /tokens, which needs an
// operator: 403 means read-only. Any other failure leaves the buttons on: the API decides.
export function canOperate() {
  if (me) return Promise.resolve(can('operator')); // known from GET /whoami
  if (!operates) operates = request('GET', '/tokens').then(() => true, (err) => err.status !== 403);
  return operates;
}

export const api = {
  drivers: () => request('GET', '/drivers'),
  receivers: (limit = 500, offset = 0) => request('GET', `/receivers?limit=${limit}&offset=${offset}`),
  receiver: (id) => request('GET', `/receivers/${encodeURIComponent(id)}`),
  // checkPeer false: saved without asking the driver's peer whether the target exists (the
  // form's "Save anyway" while the peer is unreachable; docs/api.md).
  createReceiver: (body, { checkPeer = true } = {}) => request('POST', `/receivers${checkPeer ? '' : '?check_peer=false'}`, body),
  // With the version the form was filled from, so a change saved meanwhile is not undone (412).
  updateReceiver: (id, body, version, { checkPeer = true } = {}) => request('PUT',
    `/receivers/${encodeURIComponent(id)}${checkPeer ? '' : '?check_peer=false'}`, body,
    undefined, version ? { 'If-Match': `"${version}"` } : undefined),
  // Validates an edit without saving it: { valid, url_revoked, description }.
  previewUpdate: (id, body, { checkPeer = true } = {}) => request('PUT',
    `/receivers/${encodeURIComponent(id)}?dry_run=true${checkPeer ? '' : '&check_peer=false'}`, body),
  deleteReceiver: (id) => request('DELETE', `/receivers/${encodeURIComponent(id)}`),
  setEnabled: (id, enabled) => request('POST', `/receivers/${encodeURIComponent(id)}/${enabled ? 'enable' : 'disable'}`),
  rotate: (id) => request('POST', `/receivers/${encodeURIComponent(id)}/rotate`),
  test: (id) => request('POST', `/receivers/${encodeURIComponent(id)}/test`),
  // The rules tester (docs/api.md "Testing rules"): a saved receiver's, or (id null) an unsaved one's.
  testRules: (id, body) => request('POST', id ? `/receivers/${encodeURIComponent(id)}/rules/test` : '/rules/test', body),
  subscriptions: (id) => request('GET', `/receivers/${encodeURIComponent(id)}/notifications`),
  deliveries: (id) => request('GET', `/receivers/${encodeURIComponent(id)}/deliveries?limit=20`),
  redeliver: (id, deliveryId) => request('POST',
    `/receivers/${encodeURIComponent(id)}/deliveries/${encodeURIComponent(deliveryId)}/redeliver`),
  requests: (id, { outcome, limit = 20, before } = {}) => {
    const q = new URLSearchParams({ limit: String(limit) });
    if (outcome) q.set('outcome', outcome);
    if (before) q.set('before', String(before));
    return request('GET', `/receivers/${encodeURIComponent(id)}/requests?${q}`);
  },
  request: (id, requestId) => request('GET',
    `/receivers/${encodeURIComponent(id)}/requests/${encodeURIComponent(requestId)}`),
  redeliverRequest: (id, requestId) => request('POST',
    `/receivers/${encodeURIComponent(id)}/requests/${encodeURIComponent(requestId)}/redeliver`),
  cancelExecution: (id) => request('POST', `/executions/${encodeURIComponent(id)}/cancel`),
  retryExecution: (id) => request('POST', `/executions/${encodeURIComponent(id)}/retry`),
  executions: ({ receiverId, status, limit = 50, before } = {}) => {
    const q = new URLSearchParams({ limit: String(limit) });
    if (receiverId) q.set('receiver_id', String(receiverId));
    if (status) q.set('status', status);
    if (before) q.set('before', String(before));
    return request('GET', `/executions?${q}`);
  },
};
