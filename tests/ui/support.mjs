// Support for the UI end-to-end test: prerequisites, the isolated dockerd (via
// tests/support/dockerd-harness.sh), a real tripline server, and Chromium through playwright-core.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, readFileSync, statSync, mkdirSync, openSync, closeSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const SOURCE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BUILD_DIR = path.resolve(process.env.TRIPLINE_BUILD_DIR || path.join(SOURCE_DIR, 'build'));
export const TRIPLINE = process.env.TRIPLINE_BIN || path.join(BUILD_DIR, 'tripline');
export const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
export const DOCKER = '/usr/bin/docker';
export const HARNESS = path.join(SOURCE_DIR, 'tests/support/dockerd-harness.sh');
export const ARTIFACTS = path.join(BUILD_DIR, 'ui-artifacts');

// What is missing for this test to run, as sentences (empty when everything is there).
export async function missingPrerequisites() {
  const missing = [];
  if (!existsSync(CHROMIUM)) missing.push(`Chromium is not installed at ${CHROMIUM} (apt-get install chromium, or scripts/install-deps.sh test)`);
  if (typeof process.getuid === 'function' && process.getuid() !== 0) missing.push('not root: the isolated dockerd needs root');
  for (const bin of ['/usr/sbin/dockerd', '/usr/bin/containerd', DOCKER]) {
    if (!existsSync(bin)) missing.push(`${bin} is missing (scripts/install-deps.sh test installs docker.io)`);
  }
  if (!existsSync(TRIPLINE)) missing.push(`no tripline binary at ${TRIPLINE} (build it first)`);
  try {
    await import('playwright-core');
  } catch {
    missing.push('playwright-core is not installed (tests/ui/run.sh runs npm ci)');
  }
  return missing;
}

export function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

// Polls fn until it returns a truthy value; throws with `what` after `timeoutMs`.
export async function waitFor(what, fn, { timeoutMs = 30000, intervalMs = 200 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    await sleep(intervalMs);
  }
}

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 120000, ...opts });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr || r.stdout}`);
  return r.stdout;
}

// --- the isolated swarm ----------------------------------------------------------------------

export class Swarm {
  constructor(dir) {
    this.dir = dir;
    this.dockerHost = null;
  }

  start() {
    const out = run(HARNESS, ['start', this.dir], { timeout: 180000, stdio: ['ignore', 'pipe', 'pipe'] });
    const m = /DOCKER_HOST=(\S+)/.exec(out);
    if (!m) throw new Error(`dockerd-harness.sh printed no DOCKER_HOST: ${out}`);
    this.dockerHost = m[1];
    return this;
  }

  docker(...args) {
    return run(DOCKER, ['-H', this.dockerHost, ...args]).trim();
  }

  createService(name, replicas = 1) {
    this.docker('service', 'create', '--detach', '--name', name, '--replicas', String(replicas), '--no-resolve-image',
      '--stop-grace-period', '1s', 'tripline-test/busybox:latest', 'sleep', '3600');
  }

  replicas(name) {
    return Number(this.docker('service', 'inspect', name, '--format', '{{.Spec.Mode.Replicated.Replicas}}'));
  }

  stop() {
    spawnSync(HARNESS, ['stop', this.dir], { stdio: 'inherit', timeout: 120000 });
  }
}

// --- the tripline server ---------------------------------------------------------------------

export class Tripline {
  constructor({ dataDir, dockerHost, adminToken, logFile }) {
    Object.assign(this, { dataDir, dockerHost, adminToken, logFile });
    this.proc = null;
  }

  async start() {
    this.port = await freePort();
    this.base = `http://127.0.0.1:${this.port}`;
    const fd = openSync(this.logFile, 'a');
    this.proc = spawn(TRIPLINE, ['serve', '--listen', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir,
      '--docker-host', this.dockerHost, '--workers', '2'], {
      env: { ...process.env, TRIPLINE_ADMIN_TOKEN: this.adminToken },
      stdio: ['ignore', fd, fd],
    });
    closeSync(fd);
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    await waitFor('tripline to answer /healthz', async () => {
      if (this.proc.exitCode !== null) throw new Error(`tripline exited (${this.proc.exitCode}); see ${this.logFile}`);
      const r = await fetch(`${this.base}/healthz`);
      return r.ok;
    }, { timeoutMs: 20000 });
    return this;
  }

  async api(method, p, body) {
    const r = await fetch(`${this.base}/api/v1${p}`, {
      method,
      headers: { Authorization: `Bearer ${this.adminToken}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return { status: r.status, body: text ? JSON.parse(text) : null };
  }

  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    const t = setTimeout(() => this.proc.kill('SIGKILL'), 5000);
    await this.exited;
    clearTimeout(t);
  }
}

// --- optional: serve ui/ from the source tree in front of a running server --------------------
// With TRIPLINE_UI_FROM_SOURCE=1 the browser loads ui/ straight from disk (same headers, CSP
// included, copied from the server's own answer for /) and everything else goes to the server.
// For working on the UI without re-linking the binary; the default tests the embedded files.

const TYPES = { '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.svg': 'image/svg+xml' };

export async function sourceProxy(upstreamPort) {
  const uiDir = path.join(SOURCE_DIR, 'ui');
  const sample = await fetch(`http://127.0.0.1:${upstreamPort}/`);
  const keep = ['content-security-policy', 'x-content-type-options', 'referrer-policy', 'x-frame-options', 'cache-control'];
  const headers = Object.fromEntries(keep.filter((k) => sample.headers.get(k)).map((k) => [k, sample.headers.get(k)]));
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const rel = url.pathname === '/' ? 'index.html' : url.pathname.slice(1);
    const file = path.join(uiDir, rel);
    if (req.method === 'GET' && file.startsWith(uiDir) && existsSync(file) && statSync(file).isFile()) {
      res.writeHead(200, { ...headers, 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
      res.end(readFileSync(file));
      return;
    }
    const up = httpRequest({ host: '127.0.0.1', port: upstreamPort, path: req.url, method: req.method, headers: req.headers }, (ur) => {
      res.writeHead(ur.statusCode, ur.headers);
      ur.pipe(res);
    });
    up.on('error', () => { res.writeHead(502); res.end(); });
    req.pipe(up);
  });
  const port = await freePort();
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return { base: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

// --- Chromium --------------------------------------------------------------------------------

export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic'];

export async function launchBrowser(userDataDir) {
  const { chromium } = await import('playwright-core');
  return chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 860 },
    deviceScaleFactor: 1,
    colorScheme: 'light',
    reducedMotion: 'reduce',
    timeout: 60000,
  });
}

export function tempDir(prefix) {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function ensureDir(d) {
  mkdirSync(d, { recursive: true });
  return d;
}

export function removeDir(d) {
  if (d) rmSync(d, { recursive: true, force: true });
}
