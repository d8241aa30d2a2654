// docs/openapi.yaml against itself, against the OpenAPI 3.1 schema and against a real tripline
// server (a temp SQLite file, loopback port 0-style free port, a real HTTP peer for webhooks and
// notifications). Run by tests/openapi/run.sh (ctest "openapi").
//
// What it proves:
// - the spec is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator, which is also shown to
//   reject a broken copy, so it is not vacuous);
// - every example in the spec validates against its schema (ajv, JSON Schema 2020-12, the
//   dialect of OpenAPI 3.1);
// - every operation is called with its example and answers a status the spec lists, with a body
//   (and the headers the spec requires) that validates against that status's schema; every
//   operation answers a 2xx at least once;
// - every route the server has is in the spec. The routes are not a table in the server but
//   code (server/api/*.cpp dispatches on path segments), so two sources of truth are read:
//   the server itself, which names the methods of each path in its 405 answer's Allow header
//   (asked with PATCH on every spec path, and compared with the spec's methods), and the route
//   code, whose every literal path segment (`seg[2] == "notifications"`, `verb != "rotate"`...)
//   must be a segment of a spec path. A path one segment deeper than any spec path answers 404.
//   A printed route list would be a third hand-written copy, as easy to forget as the spec.
// - the route table with its roles (server/api/routes.cpp, what the server authorizes by) and
//   the spec's /api/v1 operations with their x-tripline-role are the same set, both ways;
// - a read-only and an operator token are refused (403, the Forbidden answer) every operation
//   whose x-tripline-role is above theirs.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdtempSync, rmSync, readFileSync, readdirSync, openSync, closeSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Validator } from '@seriousme/openapi-schema-validator';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

const SOURCE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BUILD_DIR = path.resolve(process.env.TRIPLINE_BUILD_DIR || path.join(SOURCE_DIR, 'build'));
const TRIPLINE = path.join(BUILD_DIR, 'tripline');
const SPEC_FILE = path.join(SOURCE_DIR, 'docs/openapi.yaml');
const ADMIN = 'tl_openapi-test-admin-token-0123456789abcdef';
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options'];

const spec = YAML.parse(readFileSync(SPEC_FILE, 'utf8'));

// --- schemas -----------------------------------------------------------------------------------
// The spec's component schemas become one ajv schema ("c"); every "#/components/schemas/X" in the
// spec is rewritten to "c#/$defs/X" so any schema of the spec compiles on its own.
const ajv = new Ajv2020({ allErrors: true, strict: true, strictTypes: false });
addFormats(ajv);
ajv.addKeyword('example'); // OpenAPI's own annotation keyword
function rewriteRefs(node) {
  if (Array.isArray(node)) return node.map(rewriteRefs);
  if (node && typeof node === 'object') {
    const out = {};
    for (const [k, v] of Object.entries(node)) {
      out[k] = k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', 'c#/$defs/') : rewriteRefs(v);
    }
    return out;
  }
  return node;
}
const resolved = rewriteRefs(spec);
ajv.addSchema({ $id: 'c', $defs: resolved.components.schemas });
const compiled = new Map();
function validatorFor(schema) {
  if (!compiled.has(schema)) compiled.set(schema, ajv.compile(schema));
  return compiled.get(schema);
}
function check(schema, value, what) {
  const v = validatorFor(schema);
  assert.ok(v(value), `${what} does not validate: ${ajv.errorsText(v.errors)}\n${JSON.stringify(value).slice(0, 2000)}`);
}
// Follows a "#/components/..." reference of the (rewritten) spec, for responses and parameters.
function deref(node) {
  while (node && node.$ref && node.$ref.startsWith('#/components/')) {
    node = node.$ref.slice(2).split('/').reduce((n, k) => n[k], resolved);
  }
  return node;
}

// --- the server and its peer -------------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function waitFor(what, fn, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    const v = await fn().catch((e) => { last = e; return null; });
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(100);
  }
}

let work, proc, exited, base, sink, sinkBase;
const received = []; // what the peer was sent: [{path, headers, body}]
let peerRefuses = false; // the webhook peer answers 400 (a final failure) while set

before(async () => {
  work = mkdtempSync(path.join(os.tmpdir(), 'tripline-openapi-'));
  sink = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      // A stand-in for the Docker Engine API, enough for the target picker and the prober.
      if (req.url.startsWith('/v1.41/')) {
        const services = [{ ID: 's1', Version: { Index: 1 }, Spec: { Name: 'web', Mode: { Replicated: { Replicas: 3 } } } }];
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(req.url === '/v1.41/services' ? JSON.stringify(services) : 'OK');
        return;
      }
      received.push({ path: req.url, headers: req.headers, body });
      const refuse = peerRefuses && req.url === '/hook';
      res.writeHead(refuse ? 400 : 200, { 'content-type': 'text/plain' });
      res.end(refuse ? 'no' : 'ok');
    });
  });
  await new Promise((r) => sink.listen(0, '127.0.0.1', r));
  sinkBase = `http://127.0.0.1:${sink.address().port}`;

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const log = openSync(path.join(work, 'tripline.log'), 'a');
  // The webhook driver and the notifications must reach the peer on loopback; so does
  // scale-service, whose Docker the peer stands in for (the target picker's list).
  proc = spawn(TRIPLINE, ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', path.join(work, 'data'),
    '--docker-host', sinkBase, '--allow-local-webhook-targets', 'true', '--workers', '2'], {
    env: { ...process.env, TRIPLINE_ADMIN_TOKEN: ADMIN },
    stdio: ['ignore', log, log],
  });
  closeSync(log);
  exited = new Promise((resolve) => proc.on('exit', resolve));
  await waitFor('tripline to answer /healthz', async () => {
    if (proc.exitCode !== null) throw new Error(`tripline exited ${proc.exitCode}: ${readFileSync(path.join(work, 'tripline.log'), 'utf8')}`);
    return (await fetch(`${base}/healthz`)).ok;
  });
});

after(async () => {
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
  if (sink) await new Promise((r) => sink.close(r));
  if (work) rmSync(work, { recursive: true, force: true });
});

// --- calling the server as the spec says --------------------------------------------------------

// The spec path template a concrete path matches ("/_webhooks/trigger" before "/_webhooks/{token}").
function templateOf(p) {
  const parts = p.split('/');
  const matches = Object.keys(spec.paths).filter((t) => {
    const tp = t.split('/');
    return tp.length === parts.length && tp.every((s, i) => s.startsWith('{') || s === parts[i]);
  });
  matches.sort((a, b) => (a.match(/\{/g) || []).length - (b.match(/\{/g) || []).length);
  return matches[0];
}

const answered2xx = new Set(); // operationIds that answered a 2xx
const exampleOf = (t, method) => {
  const op = spec.paths[t][method];
  return op.requestBody?.content?.['application/json']?.example;
};

// Calls the server and checks the answer against the spec: a listed status, the headers the
// spec requires, a body valid against that status's schema. Returns {status, headers, body}.
async function call(method, p, { body, headers = {}, admin = true, raw } = {}) {
  const url = new URL(p, base);
  const t = templateOf(url.pathname);
  assert.ok(t, `${url.pathname} is not a path of the spec`);
  const op = spec.paths[t][method.toLowerCase()];
  assert.ok(op, `${method} ${t} is not an operation of the spec`);
  const h = { ...headers };
  if (admin) h.Authorization = `Bearer ${ADMIN}`;
  let payload = raw;
  if (body !== undefined) {
    h['Content-Type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  const r = await fetch(url, { method, headers: h, body: payload });
  const text = await r.text();
  const what = `${method} ${p} -> ${r.status}`;
  const resolvedOp = resolved.paths[t][method.toLowerCase()];
  const resp = deref(resolvedOp.responses[String(r.status)]);
  assert.ok(resp, `${what}: the spec does not list ${r.status} for ${method} ${t}: ${text.slice(0, 500)}`);
  for (const [name, hdr] of Object.entries(resp.headers || {})) {
    const value = r.headers.get(name);
    if (hdr.required) assert.ok(value !== null, `${what}: no ${name} header`);
    if (value !== null && hdr.schema) check(hdr.schema, value, `${what}: header ${name}`);
  }
  let parsed = null;
  if (resp.content) {
    const [type, media] = Object.entries(resp.content)[0];
    assert.ok((r.headers.get('content-type') || '').startsWith(type), `${what}: Content-Type ${r.headers.get('content-type')}, spec says ${type}`);
    parsed = type === 'application/json' ? JSON.parse(text) : text;
    if (media.schema) check(media.schema, parsed, `${what}: body`);
  } else {
    assert.equal(text, '', `${what}: the spec lists no body, the server sent one`);
  }
  if (r.status >= 200 && r.status < 300) answered2xx.add(op.operationId);
  return { status: r.status, headers: r.headers, body: parsed };
}

// --- the tests ---------------------------------------------------------------------------------

test('the spec is valid OpenAPI 3.1, and the validator rejects a broken copy', async () => {
  const v = new Validator();
  const r = await v.validate(structuredClone(spec));
  assert.equal(v.version, '3.1');
  assert.ok(r.valid, JSON.stringify(r.errors, null, 1));
  const broken = structuredClone(spec);
  broken.paths['/healthz'].get.responses = { ok: { description: 'not a status code' } };
  assert.equal((await new Validator().validate(broken)).valid, false);
});

test('every example validates against its schema', () => {
  let checked = 0;
  const walk = (node, where) => {
    if (Array.isArray(node)) return node.forEach((n, i) => walk(n, `${where}/${i}`));
    if (!node || typeof node !== 'object') return;
    // A media type or a parameter: its example against its schema.
    if ('schema' in node && 'example' in node) {
      check(node.schema, node.example, `the example at ${where}`);
      checked++;
    }
    for (const [k, v] of Object.entries(node)) walk(v, `${where}/${k}`);
  };
  walk(resolved.paths, '#/paths');
  walk(resolved.components.responses, '#/components/responses');
  walk(resolved.components.parameters, '#/components/parameters');
  // A schema's own example, for every schema that has one (components and nested).
  const schemas = (node, where) => {
    if (Array.isArray(node)) return node.forEach((n, i) => schemas(n, `${where}/${i}`));
    if (!node || typeof node !== 'object') return;
    if ('example' in node && !('schema' in node) && where.includes('/schemas/')) {
      const { example, ...schema } = node;
      check(schema, example, `the example of ${where}`);
      checked++;
    }
    for (const [k, v] of Object.entries(node)) if (k !== 'example') schemas(v, `${where}/${k}`);
  };
  schemas(resolved.components.schemas, '#/components/schemas');
  // Every operation's request body and every component schema has one.
  for (const [t, item] of Object.entries(spec.paths)) {
    for (const m of METHODS) {
      const content = item[m]?.requestBody?.content;
      if (content) assert.ok(Object.values(content).every((c) => 'example' in c), `${m} ${t} has a body without an example`);
    }
  }
  for (const [name, s] of Object.entries(spec.components.schemas)) assert.ok('example' in s || name === 'ExecutionStatus' || name === 'NotificationEvent', `schema ${name} has no example`);
  assert.ok(checked >= 40, `only ${checked} examples checked`);
  // The checks can fail: a wrong example is refused.
  assert.throws(() => check(resolved.components.schemas.Error, { error: 'x' }, 'a broken example'));
});

test('every operation answers as the spec says, called with its example', async () => {
  // Health, metrics, the UI's entry.
  assert.deepEqual((await call('GET', '/healthz', { admin: false })).body, { status: 'ok' });
  const anonymous = await call('GET', '/readyz', { admin: false });
  assert.equal(anonymous.body.checks, undefined, 'readiness details are for admins only');
  const ready = await call('GET', '/readyz');
  assert.equal(ready.body.checks.database, 'ok');
  const metrics = await call('GET', '/metrics', { admin: false });
  assert.match(metrics.body, /tripline_http_requests_total\{route="health",code="200"\} \d+/);
  await call('GET', '/', { admin: false });
  assert.equal((await call('GET', '/openapi.yaml', { admin: false })).body, readFileSync(SPEC_FILE, 'utf8'), 'the served spec is not docs/openapi.yaml');

  // Drivers: the webhook driver's schema is what the receiver below is written against.
  const drivers = (await call('GET', '/api/v1/drivers')).body.items;
  const webhook = drivers.find((d) => d.name === 'webhook');
  assert.ok(webhook, 'no webhook driver');

  // Who am I, the peers' health, and the scale-service picker over the stand-in Docker.
  const me = (await call('GET', '/api/v1/whoami')).body;
  assert.equal(me.role, 'admin');
  assert.ok((await call('GET', '/api/v1/peers')).body.items.some((p) => p.peer === 'database'));
  const targets = (await call('GET', '/api/v1/drivers/scale-service/targets?backend=swarm&limit=200')).body;
  assert.deepEqual(targets.items, [{ name: 'web', config: { backend: 'swarm', service: 'web' }, replicas: 3 }]);
  assert.equal((await call('GET', '/api/v1/drivers/webhook/targets')).status, 404);

  // Admin tokens.
  const created = await call('POST', '/api/v1/tokens', { body: exampleOf('/api/v1/tokens', 'post') });
  assert.equal(created.status, 201);
  assert.equal(created.body.role, 'operator');
  const tokens = (await call('GET', '/api/v1/tokens')).body.items;
  assert.deepEqual(tokens.map((t) => t.name).sort(), ['ci', 'from TRIPLINE_ADMIN_TOKEN']);
  const demoted = await call('PUT', `/api/v1/tokens/${created.body.id}`, { body: exampleOf('/api/v1/tokens/{id}', 'put') });
  assert.equal(demoted.body.role, 'read-only');
  // A token below an operation's role: 403, as the spec says.
  const refusedRole = await call('POST', '/api/v1/workers/pause', { admin: false, headers: { Authorization: `Bearer ${created.body.token}` } });
  assert.deepEqual([refusedRole.status, refusedRole.body.error], [403, 'forbidden']);
  assert.equal((await call('DELETE', `/api/v1/tokens/${created.body.id}`)).status, 204);

  // Receivers: the spec's example, pointed at the peer here. The driver's own schema agrees.
  const createBody = structuredClone(exampleOf('/api/v1/receivers', 'post'));
  createBody.config.url = `${sinkBase}/hook`;
  assert.ok(ajv.compile(rewriteRefs(webhook.config_schema))(createBody.config), 'the example config breaks the driver\'s schema');
  const rec = (await call('POST', '/api/v1/receivers', { body: createBody })).body;
  assert.equal(rec.auth.bearer_token, '********');
  const id = rec.id;
  const list = (await call('GET', '/api/v1/receivers?limit=50&offset=0')).body;
  assert.equal(list.total, 1);
  assert.equal((await call('GET', `/api/v1/receivers/${id}`)).body.trigger_url, rec.trigger_url);
  const updateBody = structuredClone(exampleOf('/api/v1/receivers/{id}', 'put'));
  updateBody.config.url = `${sinkBase}/hook`;
  const dry = (await call('PUT', `/api/v1/receivers/${id}?dry_run=true`, { body: updateBody })).body;
  assert.deepEqual([dry.dry_run, dry.valid, dry.url_revoked], [true, true, false]);
  const updated = (await call('PUT', `/api/v1/receivers/${id}`, { body: updateBody })).body;
  assert.equal(updated.url_revoked, false);
  assert.equal(updated.limits.rate_per_minute, 120);
  assert.equal((await call('POST', `/api/v1/receivers/${id}/test`)).body.dry_run, true);
  // The rules tester: the saved receiver with the example's unsaved rules, and an unsaved one.
  const tested = (await call('POST', `/api/v1/receivers/${id}/rules/test`, { body: exampleOf('/api/v1/receivers/{id}/rules/test', 'post') })).body;
  assert.deepEqual([tested.outcome, tested.matched?.name], ["accepted", "main only"], JSON.stringify(tested));
  const unsaved = structuredClone(exampleOf('/api/v1/rules/test', 'post'));
  unsaved.config.url = `${sinkBase}/hook`;
  const testedUnsaved = (await call('POST', '/api/v1/rules/test', { body: unsaved })).body;
  assert.deepEqual([testedUnsaved.outcome, testedUnsaved.plan?.ok], ['accepted', true], JSON.stringify(testedUnsaved));

  // Notifications: subscribed before the triggers, so their executions are notified.
  const subBody = structuredClone(exampleOf('/api/v1/receivers/{id}/notifications', 'post'));
  subBody.url = `${sinkBase}/events`;
  const sub = (await call('POST', `/api/v1/receivers/${id}/notifications`, { body: subBody })).body;
  assert.equal((await call('GET', `/api/v1/receivers/${id}/notifications`)).body.items.length, 1);
  await call('GET', `/api/v1/receivers/${id}/notifications/${sub.id}`);
  const subPut = exampleOf('/api/v1/receivers/{id}/notifications/{sid}', 'put');
  assert.deepEqual((await call('PUT', `/api/v1/receivers/${id}/notifications/${sub.id}`, { body: subPut })).body.events, subPut.events);

  // Triggers: the token in the URL (with the receiver's bearer credential), then in the header.
  const token = new URL(rec.trigger_url).pathname.split('/').pop();
  const triggerBody = exampleOf('/_webhooks/{token}', 'post');
  const bearer = { Authorization: `Bearer ${createBody.auth.bearer_token}` };
  const key = spec.components.parameters.IdempotencyKey.example;
  const refused = await call('POST', `/_webhooks/${token}`, { admin: false, body: triggerBody });
  assert.equal(refused.status, 401);
  const first = await call('POST', `/_webhooks/${token}`, { admin: false, body: triggerBody, headers: { ...bearer, 'Idempotency-Key': key } });
  assert.equal(first.status, 202);
  const again = await call('POST', `/_webhooks/${token}`, { admin: false, body: triggerBody, headers: { ...bearer, 'Idempotency-Key': key } });
  assert.deepEqual([again.status, again.body.execution_id, again.body.replayed], [202, first.body.execution_id, true]);
  const viaHeader = await call('POST', '/_webhooks/trigger', { admin: false, body: triggerBody, headers: { ...bearer, 'X-Tripline-Token': token } });
  assert.equal(viaHeader.status, 202);
  assert.notEqual(viaHeader.body.execution_id, first.body.execution_id);
  assert.equal((await call('POST', '/_webhooks/not-a-token', { admin: false })).status, 401);

  // Executions: both run against the peer and succeed.
  for (const e of [first.body.execution_id, viaHeader.body.execution_id]) {
    const done = await waitFor(`execution ${e} to finish`, async () => {
      const x = (await call('GET', `/api/v1/executions/${e}`)).body;
      return x.finished_at ? x : null;
    });
    assert.equal(done.status, 'succeeded', JSON.stringify(done));
  }
  const page = (await call('GET', `/api/v1/executions?receiver_id=${id}&status=succeeded&limit=50`)).body;
  assert.equal(page.items.length, 2);
  assert.ok(received.filter((r) => r.path === '/hook').length >= 2, 'the webhook peer was not called');

  // Deliveries: the "succeeded" notifications, delivered to the peer.
  // The subscription now has every event: running and succeeded for each execution.
  const delivered = await waitFor('the two "succeeded" notifications delivered', async () => {
    const d = (await call('GET', `/api/v1/receivers/${id}/deliveries?state=delivered&limit=50`)).body;
    const succeeded = d.items.filter((x) => x.event === 'succeeded');
    return succeeded.length === 2 ? succeeded : null;
  });
  assert.ok(received.filter((r) => r.path === '/events').length >= 2, 'the subscriber was not called');
  const did = delivered[0].id;
  const one = (await call('GET', `/api/v1/receivers/${id}/deliveries/${did}`)).body;
  assert.equal(one.event, 'succeeded');
  assert.equal(typeof one.payload, 'object', 'the body sent is shown');
  assert.equal(one.attempt_log.at(-1).status, 200);
  const again202 = await call('POST', `/api/v1/receivers/${id}/deliveries/${did}/redeliver`);
  assert.equal(again202.status, 202);
  assert.equal(again202.body.state, 'pending');

  // Retry: an execution the peer refused (400: failed for good), run again once the peer takes it.
  peerRefuses = true;
  const doomed = await call('POST', '/_webhooks/trigger', { admin: false, body: triggerBody, headers: { ...bearer, 'X-Tripline-Token': token } });
  const failed = await waitFor(`execution ${doomed.body.execution_id} to fail`, async () => {
    const x = (await call('GET', `/api/v1/executions/${doomed.body.execution_id}`)).body;
    return x.finished_at ? x : null;
  });
  assert.equal(failed.status, 'failed', JSON.stringify(failed));
  peerRefuses = false;
  const retried = await call('POST', `/api/v1/executions/${failed.id}/retry`);
  assert.deepEqual([retried.status, retried.body.retry_of], [202, failed.id]);
  const rerun = await waitFor(`retry ${retried.body.execution_id} to finish`, async () => {
    const x = (await call('GET', `/api/v1/executions/${retried.body.execution_id}`)).body;
    return x.finished_at ? x : null;
  });
  assert.equal(rerun.status, 'succeeded', JSON.stringify(rerun));
  assert.equal((await call('POST', `/api/v1/executions/${first.body.execution_id}/retry`)).status, 409, 'only a failed execution is retried');

  // The request log (docs/requests-log.md): the triggers above, each with what came of it.
  const logged = (await waitFor('the refused trigger in the request log', async () => {
    const l = (await call('GET', `/api/v1/receivers/${id}/requests?limit=50`)).body;
    return l.items.some((x) => x.outcome === 'refused') ? l : null;
  })).items;
  assert.ok(logged.some((x) => x.outcome === 'refused' && x.detail.check === 'credential'), JSON.stringify(logged));
  const firstEntry = logged.find((x) => x.outcome === 'accepted' && x.execution_id === first.body.execution_id && !x.detail.duplicate);
  assert.ok(firstEntry, 'the first trigger is logged with its execution');
  const entry = (await call('GET', `/api/v1/receivers/${id}/requests/${firstEntry.id}`)).body;
  assert.ok(entry.headers.some(([n, v]) => n.toLowerCase() === 'authorization' && v === '[redacted]'), JSON.stringify(entry.headers));
  const replay = await call('POST', `/api/v1/receivers/${id}/requests/${firstEntry.id}/redeliver`);
  assert.deepEqual([replay.status, replay.body.replay_of, replay.body.outcome], [202, firstEntry.id, 'accepted']);
  assert.notEqual(replay.body.execution_id, first.body.execution_id);
  const caused = (await call('GET', `/api/v1/executions/${replay.body.execution_id}`)).body;
  assert.equal(caused.request_id, replay.body.id);

  // Cancel: a queued execution (the workers paused) never runs; a finished one answers 409.
  await call('POST', '/api/v1/workers/pause');
  const held = await call('POST', '/_webhooks/trigger', { admin: false, body: triggerBody, headers: { ...bearer, 'X-Tripline-Token': token } });
  const cancelled = await call('POST', `/api/v1/executions/${held.body.execution_id}/cancel`);
  assert.deepEqual([cancelled.status, cancelled.body.status, cancelled.body.error], [200, 'failed', 'cancelled']);
  assert.equal((await call('POST', `/api/v1/executions/${first.body.execution_id}/cancel`)).status, 409);
  await call('POST', '/api/v1/workers/resume');
  // The audit log: what was changed above, newest first.
  const audit = (await call('GET', '/api/v1/audit?limit=500')).body;
  const actions = audit.items.map((i) => i.action);
  for (const a of ['token.create', 'token.role', 'token.revoke', 'receiver.create', 'receiver.update', 'subscription.create', 'execution.retry', 'execution.cancel', 'request.redeliver', 'delivery.redeliver']) {
    assert.ok(actions.includes(a), `no ${a} in the audit log: ${actions}`);
  }
  assert.equal((await call('GET', `/api/v1/audit?target=receiver:${id}&limit=1`)).body.items[0].target.id, id);
  assert.equal((await call('GET', '/api/v1/audit?target=nonsense')).status, 400);

  // Workers.
  assert.equal((await call('POST', '/api/v1/workers/pause')).body.paused, true);
  assert.equal((await call('GET', '/api/v1/workers')).body.paused, true);
  assert.equal((await call('POST', '/api/v1/workers/resume')).body.paused, false);

  // The methods each path allows, from the server (405 + Allow), while every resource exists.
  const concrete = {
    '/_webhooks/{token}': `/_webhooks/${token}`,
    '/api/v1/receivers/{id}': `/api/v1/receivers/${id}`,
    '/api/v1/receivers/{id}/notifications/{sid}': `/api/v1/receivers/${id}/notifications/${sub.id}`,
    '/api/v1/receivers/{id}/deliveries/{did}': `/api/v1/receivers/${id}/deliveries/${did}`,
    '/api/v1/receivers/{id}/deliveries/{did}/redeliver': `/api/v1/receivers/${id}/deliveries/${did}/redeliver`,
    '/api/v1/executions/{id}': `/api/v1/executions/${first.body.execution_id}`,
    '/api/v1/executions/{id}/retry': `/api/v1/executions/${failed.id}/retry`,
    '/api/v1/executions/{id}/cancel': `/api/v1/executions/${held.body.execution_id}/cancel`,
    '/api/v1/receivers/{id}/requests/{rid}': `/api/v1/receivers/${id}/requests/${firstEntry.id}`,
    '/api/v1/receivers/{id}/requests/{rid}/redeliver': `/api/v1/receivers/${id}/requests/${firstEntry.id}/redeliver`,
    '/api/v1/tokens/{id}': '/api/v1/tokens/1',
    '/api/v1/audit': '/api/v1/audit',
  };
  const fill = (t) => concrete[t] ?? t.replaceAll('{id}', String(id));
  for (const [t, item] of Object.entries(spec.paths)) {
    const p = fill(t);
    const listed = METHODS.filter((m) => item[m]).map((m) => m.toUpperCase()).sort();
    const r = await fetch(new URL(p, base), { method: 'PATCH', headers: { Authorization: `Bearer ${ADMIN}` } });
    if (t === '/' || t === '/openapi.yaml') {
      // The UI's files are served for GET and HEAD only; anything else is no route at all.
      assert.equal(r.status, 404, `PATCH ${p}`);
      continue;
    }
    assert.equal(r.status, 405, `PATCH ${p} (${t}) answered ${r.status}: ${await r.text()}`);
    const allow = (r.headers.get('allow') || '').split(',').map((s) => s.trim()).sort();
    assert.deepEqual(allow, listed, `${t}: the server allows ${allow}, the spec lists ${listed}`);
    // No route deeper than a spec path (unless the spec has it).
    const deeper = `${p}/zzz`;
    if (!templateOf(`${new URL(deeper, base).pathname}`)) {
      const d = await fetch(new URL(deeper, base), { headers: { Authorization: `Bearer ${ADMIN}` } });
      assert.equal(d.status, 404, `GET ${deeper}`);
    }
  }

  // Errors: the one shape, the right code.
  const noAuth = await call('GET', '/api/v1/receivers', { admin: false });
  assert.equal(noAuth.status, 401);
  const invalid = await call('POST', '/api/v1/receivers', { body: { name: '', driver: 'webhook', config: {} } });
  assert.equal(invalid.status, 422);
  assert.ok(invalid.body.fields.some((f) => f.field === 'name'));
  const malformed = await call('POST', '/api/v1/receivers', { raw: '{"name":', headers: { 'Content-Type': 'application/json' } });
  assert.deepEqual([malformed.status, malformed.body.error], [400, 'malformed_json']);
  const notJson = await call('POST', '/api/v1/tokens', { raw: 'name=x', headers: { 'Content-Type': 'text/plain' } });
  assert.deepEqual([notJson.status, notJson.body.error], [415, 'unsupported_media_type']);
  assert.equal((await call('GET', '/api/v1/receivers?limit=0')).status, 400);
  assert.equal((await call('GET', '/api/v1/receivers/999999')).status, 404);
  assert.equal((await call('DELETE', '/api/v1/tokens/1')).status, 409, 'the last admin token');

  // Disable, enable, rotate, then delete what was made.
  const disabled = (await call('POST', `/api/v1/receivers/${id}/disable`)).body;
  assert.deepEqual([disabled.enabled, disabled.url_revoked], [false, true]);
  assert.equal((await call('POST', `/_webhooks/${token}`, { admin: false, body: triggerBody, headers: bearer })).status, 401);
  const enabled = (await call('POST', `/api/v1/receivers/${id}/enable`)).body;
  assert.equal(enabled.enabled, true);
  const rotated = (await call('POST', `/api/v1/receivers/${id}/rotate`)).body;
  assert.deepEqual([rotated.url_revoked, rotated.generation > enabled.generation], [true, true]);
  assert.equal((await call('DELETE', `/api/v1/receivers/${id}/notifications/${sub.id}`)).status, 204);
  assert.equal((await call('DELETE', `/api/v1/receivers/${id}`)).status, 204);

  // Every operation of the spec answered a 2xx at least once.
  const all = Object.values(spec.paths).flatMap((item) => METHODS.filter((m) => item[m]).map((m) => item[m].operationId));
  assert.deepEqual(all.filter((o) => !answered2xx.has(o)), []);
});

test('every literal path segment of the route code is a segment of a spec path', () => {
  const dir = path.join(SOURCE_DIR, 'server/api');
  const segments = new Set(Object.keys(spec.paths).flatMap((t) => t.split('/')));
  const found = [];
  for (const f of readdirSync(dir).filter((f) => f.endsWith('.cpp'))) {
    const code = readFileSync(path.join(dir, f), 'utf8');
    // The dispatch compares path segments held in these variables (app.cpp, admin_api.cpp,
    // receivers_api.cpp, notifications_api.cpp); kHooks is the trigger prefix.
    for (const m of code.matchAll(/\b(?:seg|rest|segments)\[\d\] [!=]= "([^"]*)"|\b(?:verb|token) [!=]= "([^"]*)"|kHooks = "\/([^"/]*)\/"/g)) {
      found.push({ file: f, segment: m[1] ?? m[2] ?? m[3] });
    }
  }
  assert.ok(found.length >= 20, `only ${found.length} route literals found: has the route code changed shape?`);
  const missing = found.filter((x) => !segments.has(x.segment));
  assert.deepEqual(missing, [], 'route segments in server/api/ that no spec path has');
});

test('the route table (server/api/routes.cpp) and the spec name the same operations with the same roles', () => {
  const code = readFileSync(path.join(SOURCE_DIR, 'server/api/routes.cpp'), 'utf8');
  const names = { ReadOnly: 'read-only', Operator: 'operator', Admin: 'admin' };
  const table = [...code.matchAll(/\{"(GET|POST|PUT|DELETE)", "(\/api\/v1\/[^"]*)", (nullptr|"[^"]*"), k(ReadOnly|Operator|Admin)\}/g)]
    .map((m) => ({ method: m[1].toLowerCase(), path: m[2], query: m[3] === 'nullptr' ? null : m[3].slice(1, -1), role: names[m[4]] }));
  assert.ok(table.length >= 30, `only ${table.length} rows read from routes.cpp: has its shape changed?`);
  const fromTable = table.map((r) => `${r.method} ${r.path}${r.query ? `?${r.query}` : ''} ${r.role}`).sort();
  const fromSpec = [];
  for (const [t, item] of Object.entries(spec.paths)) {
    if (!t.startsWith('/api/v1')) continue;
    for (const m of METHODS.filter((x) => item[x])) {
      const op = item[m];
      assert.ok(op['x-tripline-role'], `${m} ${t} has no x-tripline-role`);
      fromSpec.push(`${m} ${t} ${op['x-tripline-role']}`);
      if (op['x-tripline-role-dry-run']) fromSpec.push(`${m} ${t}?dry_run=true ${op['x-tripline-role-dry-run']}`);
      assert.ok(op.responses['403'], `${m} ${t} does not list 403`);
    }
  }
  assert.deepEqual(fromSpec.sort(), fromTable);
});

test('a token below an operation\'s role is refused every such operation', async () => {
  const roles = ['read-only', 'operator', 'admin'];
  for (const role of ['read-only', 'operator']) {
    const made = await fetch(new URL('/api/v1/tokens', base), { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ name: `t-${role}`, role }) });
    assert.equal(made.status, 201);
    const { token } = await made.json();
    let refused = 0;
    for (const [t, item] of Object.entries(spec.paths)) {
      if (!t.startsWith('/api/v1')) continue;
      for (const m of METHODS.filter((x) => item[x])) {
        const needed = item[m]['x-tripline-role'];
        if (roles.indexOf(role) >= roles.indexOf(needed)) continue;
        const p = t.replaceAll(/\{[a-z]+\}/g, '1');
        const body = m === 'get' || m === 'delete' ? undefined : {};
        const r = await call(m.toUpperCase(), p, { admin: false, body, headers: { Authorization: `Bearer ${token}` } });
        assert.equal(r.status, 403, `${role}: ${m} ${p}`);
        assert.equal(r.body.error, 'forbidden');
        assert.ok(r.body.message.includes(`the ${needed} role`), r.body.message);
        refused++;
      }
    }
    assert.ok(refused > 0);
  }
});
