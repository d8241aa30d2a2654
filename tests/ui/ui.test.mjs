// End-to-end test of tripline's web UI: real headless Chromium (Debian's /usr/bin/chromium),
// driven by playwright-core, against a real tripline server and a real isolated Docker swarm.
//
//   tests/ui/run.sh BUILD_DIR          (what ctest runs: npm ci when needed, then node --test)
//   TRIPLINE_BUILD_DIR=build node --test tests/ui/ui.test.mjs
//
// Without Chromium, root or dockerd it skips loudly; with CI=true it fails instead.
// Screenshots of every page and state go to BUILD_DIR/ui-artifacts/*.png.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { copyFileSync, existsSync, readdirSync, rmSync } from 'node:fs';
import {
  missingPrerequisites, Swarm, Tripline, launchBrowser, sourceProxy, tempDir, ensureDir, removeDir,
  waitFor, ARTIFACTS, BUILD_DIR,
} from './support.mjs';

const ADMIN_TOKEN = 'ui-test-admin-token-0123456789';
const CI = process.env.CI === 'true';
const missing = await missingPrerequisites();

if (missing.length) {
  const banner = [
    '',
    '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
    `!! UI end-to-end test ${CI ? 'FAILS (CI=true)' : 'SKIPPED'}: it cannot run on this machine:`,
    ...missing.map((m) => `!!   - ${m}`),
    '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
    '',
  ].join('\n');
  process.stderr.write(`${banner}\n`);
}

const skip = missing.length && !CI ? `missing: ${missing.join('; ')}` : false;

describe('tripline web UI', { skip, concurrency: 1, timeout: 15 * 60 * 1000 }, () => {
  let work;
  let swarm;
  let server;
  let proxy;
  let context;
  let page;
  let base;
  const problems = []; // script errors and CSP violations seen by the browser
  let shot = 0;

  const screenshot = async (name, opts = {}) => {
    shot += 1;
    const file = path.join(ARTIFACTS, `${String(shot).padStart(2, '0')}-${name}.png`);
    await page.screenshot({ path: file, fullPage: true, ...opts });
    return file;
  };
  const h1 = () => page.locator('main h1');
  const expectH1 = async (text) => {
    await page.locator('main h1', { hasText: text }).first().waitFor({ state: 'visible', timeout: 15000 });
  };
  const nav = (name) => page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name, exact: true });
  const post = (url, init = {}) => fetch(url, { method: 'POST', ...init });
  // An open Details stays inside its table: the table does not scroll sideways, and the raw
  // JSON's box ends within the row.
  const assertDetailsInside = async (row) => {
    const geo = await row.evaluate((tr) => {
      const wrap = tr.closest('.table-wrap');
      const pre = tr.querySelector('pre.json').getBoundingClientRect();
      const rowBox = tr.getBoundingClientRect();
      return { scroll: wrap.scrollWidth, client: wrap.clientWidth, preRight: pre.right, rowRight: rowBox.right, page: document.documentElement.scrollWidth, vw: window.innerWidth };
    });
    assert.ok(geo.scroll <= geo.client + 1, `the executions table scrolls sideways: ${JSON.stringify(geo)}`);
    assert.ok(geo.preRight <= geo.rowRight + 1, `Details overflows its row: ${JSON.stringify(geo)}`);
    assert.ok(geo.page <= geo.vw, `the page scrolls sideways: ${JSON.stringify(geo)}`);
  };

  before(async () => {
    if (missing.length) {
      throw new Error(`the UI test cannot run (CI=true makes this a failure):\n  - ${missing.join('\n  - ')}`);
    }
    ensureDir(ARTIFACTS);
    for (const f of readdirSync(ARTIFACTS)) if (f.endsWith('.png')) rmSync(path.join(ARTIFACTS, f));
    work = process.env.UI_TEST_WORKDIR ? ensureDir(process.env.UI_TEST_WORKDIR) : tempDir('tripline-ui-');
    swarm = new Swarm(path.join(work, 'swarm'));
    // If we are killed, run.sh stops the harness in UI_TEST_WORKDIR/swarm; if run directly,
    // Ctrl-C still cleans up.
    const onSignal = (sig) => {
      try { if (server && server.proc) server.proc.kill('SIGKILL'); } catch { /* gone */ }
      swarm.stop();
      process.exit(sig === 'SIGINT' ? 130 : 143);
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);

    const t0 = Date.now();
    swarm.start();
    swarm.createService('web', 1);
    process.stderr.write(`ui test: swarm up in ${Date.now() - t0} ms (${swarm.dockerHost})\n`);

    // The notifications step's subscriber listens on loopback.
    process.env.TRIPLINE_ALLOW_LOCAL_WEBHOOK_TARGETS = 'true';
    server = await new Tripline({
      dataDir: ensureDir(path.join(work, 'data')),
      dockerHost: swarm.dockerHost,
      adminToken: ADMIN_TOKEN,
      logFile: path.join(work, 'tripline.log'),
    }).start();
    base = server.base;
    if (process.env.TRIPLINE_UI_FROM_SOURCE === '1') {
      proxy = await sourceProxy(server.port);
      base = proxy.base;
    }

    context = await launchBrowser(ensureDir(path.join(work, 'chromium-profile')));
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
    page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(15000);
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    page.on('console', (m) => {
      const text = m.text();
      // Expected: the browser logs failed requests we provoke on purpose (401, 422).
      if (m.type() === 'error' && !/Failed to load resource/.test(text)) problems.push(`console: ${text}`);
      if (/Content[ -]Security[ -]Policy|Refused to/i.test(text)) problems.push(`CSP: ${text}`);
    });
  });

  after(async () => {
    if (context) await context.close().catch(() => {});
    if (proxy) await proxy.close().catch(() => {});
    if (server) {
      await server.stop();
      if (existsSync(server.logFile)) copyFileSync(server.logFile, path.join(ARTIFACTS, 'tripline.log'));
    }
    if (swarm) swarm.stop();
    if (work && !process.env.UI_TEST_WORKDIR) removeDir(work);
  });

  let receiverId;
  let triggerUrl;
  // The steps build on each other: after one fails, the rest are skipped, not timed out.
  let broken = null;
  const step = (name, fn) => test(name, async (t) => {
    if (broken) {
      t.skip(`an earlier step failed: ${broken}`);
      return;
    }
    try {
      await fn(t);
    } catch (e) {
      broken = name;
      if (page) await screenshot('FAILED').catch(() => {});
      throw e;
    }
  });

  step('sign-in asks for an admin token and keeps it in memory only', async () => {
    await page.goto(base);
    await expectH1('Sign in to tripline');
    const token = page.getByLabel('Admin token', { exact: true });
    assert.equal(await token.evaluate((el) => el === document.activeElement), true, 'the token field has focus');
    assert.equal(await token.getAttribute('type'), 'password');
    await screenshot('sign-in');

    await token.fill('not-the-right-token-at-all');
    await token.press('Enter');
    await page.getByText('That token was not accepted').waitFor();
    assert.equal(await token.getAttribute('aria-invalid'), 'true');
    await screenshot('sign-in-wrong-token');

    await token.fill(ADMIN_TOKEN);
    await token.press('Enter');
    await expectH1('Receivers');
    await page.getByText('No receivers yet.').waitFor();
    assert.equal(await nav('Receivers').getAttribute('aria-current'), 'page');
    await screenshot('receivers-empty');

    const stored = await page.evaluate(() => ({
      local: localStorage.length, session: sessionStorage.length, cookie: document.cookie,
    }));
    assert.deepEqual(stored, { local: 0, session: 0, cookie: '' }, 'nothing stored in the browser');
    assert.deepEqual(await context.cookies(), []);
  });

  step('create a scale-service receiver through the form built from its JSON Schema', async () => {
    await page.getByRole('link', { name: 'New receiver' }).click();
    await expectH1('New receiver');
    await page.getByRole('radio', { name: /Scale a service/ }).check();
    await page.getByLabel('Service', { exact: true }).waitFor();

    // Client-side checks mirror the schema: empty name, required service, by >= 1.
    await page.getByRole('button', { name: 'Create receiver' }).click();
    await page.locator('[data-path="name"] .field-error', { hasText: 'Give it a name' }).waitFor();
    await page.locator('[data-path="config.service"] .field-error', { hasText: 'required' }).waitFor();
    assert.equal(await page.getByLabel('Name', { exact: true }).evaluate((el) => el === document.activeElement), true, 'focus on the first bad field');

    // The schema's "(set)" / "(up/down)" fields follow the Action select.
    const action = page.getByLabel('Action', { exact: true });
    assert.equal(await page.getByLabel(/^Replicas \(set\)/).isVisible(), false);
    await action.selectOption('set');
    assert.equal(await page.getByLabel(/^Replicas \(set\)/).isVisible(), true);
    assert.equal(await page.getByLabel(/^By how many \(up\/down\)/).isVisible(), false);
    await action.selectOption('up');

    await page.getByLabel('Name', { exact: true }).fill('web-up');
    await page.getByLabel('Service', { exact: true }).fill('web');
    await page.getByLabel(/^By how many \(up\/down\)/).fill('2');
    await page.getByLabel(/^Never below/).fill('7');
    await page.getByLabel('Never above', { exact: true }).fill('5');
    await page.getByRole('button', { name: 'Create receiver' }).click();

    // The server's 422 field error lands next to the field it names, and is tied to it.
    const minError = page.locator('[data-path="config.min"] .field-error');
    await minError.waitFor({ state: 'visible' });
    assert.match(await minError.textContent(), /greater than max/);
    const min = page.getByLabel(/^Never below/);
    assert.equal(await min.getAttribute('aria-invalid'), 'true');
    const describedBy = await min.getAttribute('aria-describedby');
    assert.ok(describedBy.split(' ').includes(await minError.getAttribute('id')), 'error is described-by of the input');
    assert.equal(await min.evaluate((el) => el === document.activeElement), true, 'focus moved to the bad field');
    await page.getByText('tripline did not accept this').waitFor();
    await screenshot('form-validation-error');

    await min.fill('1');
    await page.getByRole('button', { name: 'Create receiver' }).click();
    await expectH1('web-up');
    await page.getByText('Receiver created.').waitFor();
    await page.getByText('Scale up web by 2, between 1 and 5').first().waitFor();
    await screenshot('receiver-created');

    const list = await server.api('GET', '/receivers');
    assert.equal(list.body.items.length, 1);
    receiverId = list.body.items[0].id;
    triggerUrl = list.body.items[0].trigger_url;
    assert.deepEqual(list.body.items[0].config, { action: 'up', backend: 'swarm', by: 2, max: 5, min: 1, service: 'web' });

    assert.equal((await page.locator('[data-testid="trigger-url"] pre').textContent()).trim(), triggerUrl);
    assert.equal((await page.locator('[data-testid="curl"] pre').textContent()).trim(), `curl -X POST '${triggerUrl}'`);
    const yaml = await page.locator('[data-testid="alertmanager"] pre').textContent();
    assert.ok(yaml.includes('webhook_configs:'), yaml);
    assert.ok(yaml.includes(`- url: '${triggerUrl}'`), yaml);
    // Safe by default: this receiver does not read Alertmanager's payload, so a resolved
    // notification would run the action again; the snippet turns it off and says why.
    assert.ok(yaml.includes('send_resolved: false'), yaml);
    assert.ok(!yaml.includes('send_resolved: true'), yaml);
    assert.match(yaml, /# false: this receiver does not read Alertmanager's\n/);
  });

  step('copy the trigger URL, POST it, and watch the execution succeed', async () => {
    const copy = page.getByRole('button', { name: 'Copy trigger URL', exact: true });
    await copy.click();
    await page.getByRole('button', { name: 'Copy trigger URL', exact: true }).filter({ hasText: 'Copied' }).waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    assert.equal(copied, triggerUrl);

    // The curl and YAML snippets copy too.
    await page.getByRole('button', { name: 'Copy curl command' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), `curl -X POST '${triggerUrl}'`);

    const res = await post(copied);
    assert.equal(res.status, 202);
    const { execution_id: execId } = await res.json();

    await nav('Executions').click();
    await expectH1('Executions');
    const row = page.locator(`tr.exec-row[data-id="${execId}"]`);
    await row.waitFor();
    await page.locator(`tr.exec-row[data-id="${execId}"][data-status="succeeded"]`).waitFor({ timeout: 45000 });
    assert.match(await row.textContent(), /replicas 1 → 3/);
    assert.match(await row.textContent(), /web-up/);
    await screenshot('executions-succeeded');
    assert.equal(swarm.replicas('web'), 3);

    await row.getByText('Details').click();
    await row.locator('pre.json').waitFor();
    assert.match(await row.locator('pre.json').textContent(), /"replicas_after": 3/);
    assert.match(await row.locator('td[data-label="Attempts"]').textContent(), /^1 of 8$/, 'attempts out of --max-attempts');
    await assertDetailsInside(row);
    await screenshot('executions-details');

    // Filters: by status (kept in the URL) and back.
    await page.getByLabel('Status', { exact: true }).focus(); // as a person would, before choosing
    await page.getByLabel('Status', { exact: true }).selectOption('failed');
    await page.getByText('No executions match these filters.').waitFor();
    assert.match(page.url(), /status=failed/);
    assert.equal(await page.getByLabel('Status', { exact: true }).evaluate((el) => el === document.activeElement), true, 'focus stays on the filter');
    await page.getByLabel('Status', { exact: true }).selectOption('succeeded');
    await page.locator(`tr.exec-row[data-id="${execId}"]`).waitFor();
    await page.getByLabel('Receiver', { exact: true }).selectOption({ label: 'web-up' });
    await page.locator(`tr.exec-row[data-id="${execId}"]`).waitFor();
    assert.match(page.url(), new RegExp(`receiver=${receiverId}`));
  });

  step('the list shows state, description, driver, last execution and the URL', async () => {
    await nav('Receivers').click();
    await expectH1('Receivers');
    const row = page.locator(`tr[data-id="${receiverId}"]`);
    await row.waitFor();
    const text = await row.textContent();
    for (const want of ['Enabled', 'web-up', 'Scale up web by 2, between 1 and 5', 'scale-service', 'succeeded']) {
      assert.ok(text.includes(want), `row shows ${want}: ${text}`);
    }
    assert.equal(await row.locator('code.url').textContent(), triggerUrl);
    await row.getByRole('button', { name: 'Copy trigger URL of web-up' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), triggerUrl);

    // Where the async clipboard API refuses (e.g. plain HTTP on a LAN address), the fallback copies.
    await page.evaluate(() => navigator.clipboard.writeText('something else'));
    await page.evaluate(() => { navigator.clipboard.writeText = () => Promise.reject(new Error('denied')); });
    await row.getByRole('button', { name: 'Copy trigger URL of web-up' }).click();
    await row.getByRole('button', { name: 'Copy trigger URL of web-up' }).filter({ hasText: 'Copied' }).waitFor();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), triggerUrl, 'copied by the fallback');
    await page.evaluate(() => { delete navigator.clipboard.writeText; });
    await screenshot('receivers-list');
  });

  step('receivers: search, sort, and a keyboard row menu', async () => {
    const other = await server.api('POST', '/receivers', {
      name: 'api-down', driver: 'scale-service', config: { service: 'web', action: 'down', by: 1, min: 1, max: 5 },
    });
    assert.equal(other.status, 201, JSON.stringify(other.body));
    const rows = page.locator('table.table-receivers tbody tr');
    await page.locator(`tr[data-id="${other.body.id}"]`).waitFor({ timeout: 10000 }); // the list polls every 5 s
    const names = async () => rows.evaluateAll((trs) => trs.map((tr) => tr.dataset.name));
    assert.deepEqual(await names(), ['api-down', 'web-up'], 'sorted by name');
    await page.getByLabel('Sort by').selectOption('recent');
    assert.deepEqual(await names(), ['web-up', 'api-down'], 'last execution first');
    assert.match(page.url(), /sort=recent/);
    const search = page.getByLabel('Search receivers');
    await search.fill('api');
    assert.deepEqual(await names(), ['api-down']);
    await search.fill('scale-service web'); // the driver and the target: both match
    assert.deepEqual(await names(), ['web-up', 'api-down']);
    await search.fill('Scale down');
    assert.deepEqual(await names(), ['api-down'], 'the description is searched too');
    await page.getByText('1 of 2 receivers match.').waitFor();
    await search.fill('no-such-thing');
    await page.getByText('No receiver matches “no-such-thing”.').waitFor();
    await screenshot('receivers-search-empty');
    await page.getByRole('button', { name: 'Clear the search' }).click();
    assert.equal(await search.inputValue(), '');
    assert.equal(await search.evaluate((el) => el === document.activeElement), true, 'focus back in the search box');
    assert.deepEqual(await names(), ['web-up', 'api-down']);

    // The row menu: a menu button, opened from the keyboard, closed with Escape.
    const more = page.getByRole('button', { name: 'More actions for api-down' });
    assert.equal(await more.getAttribute('aria-expanded'), 'false');
    await more.focus();
    await page.keyboard.press('Enter');
    assert.equal(await more.getAttribute('aria-expanded'), 'true');
    const menu = page.getByRole('menu');
    await menu.waitFor();
    const focused = () => page.evaluate(() => document.activeElement.textContent);
    assert.equal(await focused(), 'Clone', 'focus on the first item');
    await page.keyboard.press('ArrowDown');
    assert.equal(await focused(), 'Disable');
    await page.keyboard.press('End');
    assert.equal(await focused(), 'Delete');
    await page.keyboard.press('ArrowDown');
    assert.equal(await focused(), 'Clone', 'wraps around');
    await screenshot('receivers-row-menu');
    await page.keyboard.press('Escape');
    await menu.waitFor({ state: 'hidden' });
    assert.equal(await more.getAttribute('aria-expanded'), 'false');
    assert.equal(await more.evaluate((b) => b === document.activeElement), true, 'focus returns to the menu button');
    // Delete through the menu: the dialog's Cancel returns focus to the menu button.
    await more.click();
    await page.getByRole('menuitem', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    assert.equal(await more.evaluate((b) => b === document.activeElement), true, 'focus back on the menu button after the dialog');
    await more.click();
    await page.getByRole('menuitem', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete receiver' }).click();
    await page.locator(`tr[data-id="${other.body.id}"]`).waitFor({ state: 'detached' });
    assert.equal((await server.api('GET', `/receivers/${other.body.id}`)).status, 404);
    await page.getByLabel('Sort by').selectOption('name');
  });

  step('send test: a dry run shows the plan and changes nothing', async () => {
    await page.getByRole('link', { name: 'web-up', exact: true }).click();
    await expectH1('web-up');
    await page.getByRole('button', { name: 'Send test (dry run)' }).click();
    const out = page.locator('.test-result');
    await out.getByText('nothing was changed').waitFor();
    assert.match(await out.textContent(), /replicas 3 → 5/);
    await screenshot('send-test-dry-run');
    assert.equal(swarm.replicas('web'), 3, 'the dry run did not scale');
  });

  step('rotate warns that the old URL stops working; then it answers 401', async () => {
    const rotateBtn = page.getByRole('group', { name: 'Actions for web-up' }).getByRole('button', { name: 'Rotate URL' });
    await rotateBtn.click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.match(await dialog.textContent(), /stops working/);
    assert.equal(await dialog.evaluate((d) => d.contains(document.activeElement)), true, 'focus is inside the dialog');
    await screenshot('rotate-dialog', { fullPage: false });
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    assert.equal(await rotateBtn.evaluate((b) => b === document.activeElement), true, 'focus returns to the button');
    assert.equal((await server.api('GET', `/receivers/${receiverId}`)).body.trigger_url, triggerUrl, 'Escape rotated nothing');

    await rotateBtn.click();
    await page.getByRole('dialog').getByRole('button', { name: 'Rotate URL' }).click();
    const urlBlock = page.locator('[data-testid="trigger-url"] pre');
    await waitFor('the new URL on the page', async () => (await urlBlock.textContent()).trim() !== triggerUrl);
    const newUrl = (await urlBlock.textContent()).trim();
    const old = await post(triggerUrl);
    assert.equal(old.status, 401, 'the old URL is revoked');
    assert.equal((await server.api('GET', `/receivers/${receiverId}`)).body.trigger_url, newUrl);
    triggerUrl = newUrl;
    await screenshot('rotated');
  });

  step('disable asks first, revokes the URL for good; the new URL answers 403 until enabled', async () => {
    const head = page.getByRole('group', { name: 'Actions for web-up' });
    await head.getByRole('button', { name: 'Disable' }).click();
    await page.getByRole('dialog').getByText('stops working for good').waitFor();
    await screenshot('disable-confirm');
    await page.getByRole('dialog').getByRole('button', { name: 'Disable receiver' }).click();
    await page.locator('main h1 .badge', { hasText: 'Disabled' }).waitFor();
    await page.getByText('its old trigger URL is revoked').first().waitFor();
    assert.equal((await post(triggerUrl)).status, 401, 'the URL in use before the disable is revoked');
    const newUrl = (await server.api('GET', `/receivers/${receiverId}`)).body.trigger_url;
    assert.notEqual(newUrl, triggerUrl);
    assert.equal((await post(newUrl)).status, 403);
    await screenshot('disabled');
    await head.getByRole('button', { name: 'Enable' }).click();
    await page.locator('main h1 .badge', { hasText: 'Enabled' }).waitFor();
    assert.equal((await post(triggerUrl)).status, 401, 'enabling does not bring the old URL back');
    triggerUrl = newUrl;
  });

  step('edit keeps the form filled in; clone copies it under a new name', async () => {
    await page.getByRole('group', { name: 'Actions for web-up' }).getByRole('link', { name: 'Edit' }).click();
    await expectH1('Edit web-up');
    assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'web-up');
    assert.equal(await page.getByLabel('Service', { exact: true }).inputValue(), 'web');
    assert.equal(await page.getByLabel(/^By how many \(up\/down\)/).inputValue(), '2');
    await page.getByText('The trigger URL stays the same').waitFor();
    await page.getByLabel(/^By how many \(up\/down\)/).fill('1');
    await screenshot('edit-form');
    // Someone else saves while this form is open: saving it would undo their change, so it is
    // refused in words, and nothing is saved.
    const current = (await server.api('GET', `/receivers/${receiverId}`)).body;
    const theirs = await server.api('PUT', `/receivers/${receiverId}`, {
      name: current.name, config: { ...current.config, max: 6 }, rules: current.rules, auth: current.auth, limits: current.limits,
    });
    assert.equal(theirs.status, 200, JSON.stringify(theirs.body));
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Someone saved a change to this receiver after you opened this form').waitFor();
    await screenshot('edit-conflict');
    const kept = (await server.api('GET', `/receivers/${receiverId}`)).body.config;
    assert.equal(kept.by, 2, 'the stale form saved nothing');
    assert.equal(kept.max, 6);
    // The token lives in memory only (a reload signs out): open the form anew instead.
    await page.getByRole('link', { name: 'Cancel' }).click();
    await page.getByRole('group', { name: 'Actions for web-up' }).getByRole('link', { name: 'Edit' }).click();
    await expectH1('Edit web-up');
    assert.equal(await page.getByLabel('Never above', { exact: true }).inputValue(), '6');
    await page.getByLabel('Never above', { exact: true }).fill('5');
    await page.getByLabel(/^By how many \(up\/down\)/).fill('1');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('The trigger URL is unchanged.').waitFor();
    await page.getByText('Scale up web by 1, between 1 and 5').first().waitFor();
    assert.equal((await page.locator('[data-testid="trigger-url"] pre').textContent()).trim(), triggerUrl,
      'an edit of the bounds keeps the URL');

    // Stale notices go: a later action on this page removes the "Saved" banner and the dry run
    // (both describe the receiver before it), and a page change removes the action's toast.
    await page.getByRole('button', { name: 'Send test (dry run)' }).click();
    await page.locator('.test-result').getByText('nothing was changed').waitFor();
    await page.getByRole('group', { name: 'Actions for web-up' }).getByRole('button', { name: 'Rotate URL' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Rotate URL' }).click();
    await page.locator('.toast', { hasText: 'New trigger URL for web-up' }).waitFor();
    await page.getByText('The trigger URL is unchanged.').waitFor({ state: 'detached' });
    assert.equal((await page.locator('.test-result').textContent()).trim(), '', 'the old dry run is gone');
    assert.doesNotMatch(page.url(), /saved=/, 'a reload does not bring the banner back');
    triggerUrl = (await server.api('GET', `/receivers/${receiverId}`)).body.trigger_url;
    await screenshot('after-rotate-notices-cleared');

    // A new action is a new grant: the form asks first, and "Cancel" saves nothing.
    await page.getByRole('group', { name: 'Actions for web-up' }).getByRole('link', { name: 'Edit' }).click();
    await expectH1('Edit web-up');
    assert.equal(await page.locator('#toasts .toast').count(), 0, 'the rotate toast does not linger over the form');
    await page.getByLabel('Action', { exact: true }).selectOption('down');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('dialog').getByText('The current URL stops working when you save').waitFor();
    await screenshot('edit-revokes-confirm');
    await page.getByRole('dialog').getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await server.api('GET', `/receivers/${receiverId}`)).body.action, 'up');
    await page.getByRole('link', { name: 'Cancel' }).click();

    await page.getByRole('group', { name: 'Actions for web-up' }).getByRole('link', { name: 'Clone' }).click();
    await expectH1('Clone web-up');
    assert.equal(await page.getByLabel('Name', { exact: true }).inputValue(), 'web-up-copy');
    assert.equal(await page.getByRole('radio', { name: /Scale a service/ }).isChecked(), true);
    assert.equal(await page.getByLabel('Never above', { exact: true }).inputValue(), '5');
    await page.getByRole('link', { name: 'Cancel' }).click();
    await expectH1('Receivers');
  });

  step('advanced JSON (rules, auth, limits) survives an edit; a bad rule shows next to its box', async () => {
    const created = await server.api('POST', '/receivers', {
      name: 'am-web', driver: 'scale-service',
      config: { service: 'web', action: 'up', by: 1, max: 5 },
      rules: { preset: 'alertmanager', on_resolved: 'ignore' },
      limits: { cooldown_seconds: 60 },
    });
    if (created.status === 422 && created.body.fields?.some((f) => f.field === 'rules')) {
      return; // a server without rules: nothing to keep
    }
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    await page.goto(`${base}/#/receivers/${id}`);
    await expectH1('am-web');
    assert.match(await page.locator('[data-testid="curl"] pre').textContent(), /"version":"4"/);
    await page.getByText('resolved alerts are ignored').waitFor();
    await page.getByRole('group', { name: 'Actions for am-web' }).getByRole('link', { name: 'Edit' }).click();
    await expectH1('Edit am-web');
    assert.equal(await page.locator('details.advanced').getAttribute('open'), '', 'advanced section open when set');
    // The rules open in the structured editor; their JSON is a toggle away.
    assert.equal(await page.getByLabel('Preset', { exact: true }).inputValue(), 'alertmanager');
    await page.getByRole('button', { name: 'Edit as JSON' }).click();
    assert.deepEqual(JSON.parse(await page.getByLabel(/^Rules/).inputValue()), { preset: 'alertmanager', on_resolved: 'ignore' });

    await page.getByLabel(/^Limits/).fill('{"cooldown_seconds": ');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('[data-path="limits"] .field-error', { hasText: 'not valid JSON' }).waitFor();
    await page.getByLabel(/^Limits/).fill('{"cooldown_seconds": 30}');
    await page.getByLabel(/^Rules/).fill('{"rules": [{"when": {"field": "body:/x", "op": "bogus"}, "then": "run"}]}');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.locator('[data-path="rules"] .field-error').waitFor();
    await screenshot('advanced-rules-error');
    await page.getByLabel(/^Rules/).fill('{"preset": "alertmanager", "on_resolved": "ignore"}');
    await page.getByLabel(/^By how many/).fill('2');
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Saved.').waitFor();
    const after = (await server.api('GET', `/receivers/${id}`)).body;
    assert.equal(after.config.by, 2);
    assert.deepEqual(after.rules, { preset: 'alertmanager', on_resolved: 'ignore' });
    assert.deepEqual(after.limits, { cooldown_seconds: 30 });
    assert.equal((await server.api('DELETE', `/receivers/${id}`)).status, 204);
    await page.goto(`${base}/#/receivers`);
    await expectH1('Receivers');
  });

  step('the curl snippet sends what the rules compare, and it runs', async () => {
    const created = await server.api('POST', '/receivers', {
      name: 'rules-web', driver: 'scale-service',
      config: { service: 'web', action: 'up', by: 1, max: 5 },
      rules: {
        default: 'ignore',
        rules: [
          { name: 'critical only', then: 'ignore', when: { field: 'body:/severity', op: 'not_equals', value: 'critical' } },
          { then: 'run', when: { all: [{ field: 'header:X-Event', value: 'scale' }, { field: 'body:/team', op: 'in', value: ['web', 'api'] }] } },
        ],
      },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const r = created.body;
    await page.goto(`${base}/#/receivers/${r.id}`);
    await expectH1('rules-web');
    const curl = (await page.locator('[data-testid="curl"] pre').textContent()).trim();
    assert.ok(curl.includes("-H 'X-Event: scale'"), curl);
    const body = curl.match(/-d '([^']*)'/);
    assert.ok(body, curl);
    assert.deepEqual(JSON.parse(body[1]), { severity: 'critical', team: 'web' });
    await page.getByText('The curl command sends what this receiver’s rules compare').waitFor();
    // The snippet's request runs; a plain POST is ignored by the rules.
    const plain = await post(r.trigger_url);
    assert.equal(plain.status, 200);
    assert.equal((await plain.json()).ignored, true);
    const res = await post(r.trigger_url, { headers: { 'X-Event': 'scale', 'Content-Type': 'application/json' }, body: body[1] });
    assert.equal(res.status, 202, await res.clone().text());
    const { execution_id: id } = await res.json();
    await waitFor(`execution ${id} finished`, async () => ['succeeded', 'failed'].includes((await server.api('GET', `/executions/${id}`)).body.status));
    await screenshot('curl-with-rules');
    assert.equal((await server.api('DELETE', `/receivers/${r.id}`)).status, 204);
  });

  step('rules: built in the structured editor, saved, tested with a payload that matches and one that does not', async () => {
    const created = await server.api('POST', '/receivers', {
      name: 'rules-ui', driver: 'scale-service', config: { service: 'web', action: 'up', by: 1, max: 5 },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const id = created.body.id;
    await page.goto(`${base}/#/receivers/${id}/edit`);
    await expectH1('Edit rules-ui');
    await page.locator('details.advanced > summary').click();
    await page.getByLabel('When no rule matches').selectOption('ignore');
    await page.getByRole('button', { name: '+ Add a rule' }).click();
    await page.getByLabel('Rule 1 name').fill('critical web');
    await page.getByLabel('Rule 1, condition 1: path').fill('/severity');
    await page.getByLabel('Rule 1, condition 1: value').fill('critical');
    await page.locator('[data-rule="0"]').getByRole('button', { name: '+ condition' }).click();
    await page.getByLabel('Rule 1, condition 2: field').selectOption('header');
    await page.getByLabel('Rule 1, condition 2: name').fill('X-Team');
    await page.getByLabel('Rule 1, condition 2: operator').selectOption('in');
    await page.getByLabel('Rule 1, condition 2: value').fill('web, api');
    await page.getByRole('button', { name: '+ set a value' }).click();
    await page.getByLabel('Rule 1, set 1: setting').selectOption('by');
    await page.getByLabel('Rule 1, set 1: source').selectOption('request');
    await page.getByLabel('Rule 1, set 1: request field').fill('body:/by');
    const expected = {
      default: 'ignore',
      rules: [{
        name: 'critical web',
        when: { all: [{ field: 'body:/severity', op: 'equals', value: 'critical' }, { field: 'header:X-Team', op: 'in', value: ['web', 'api'] }] },
        set: { by: { from_request: 'body:/by' } },
      }],
    };
    await page.locator('.rules-field').scrollIntoViewIfNeeded();
    await screenshot('rules-editor');
    // To JSON and back, twice: nothing is lost either way.
    await page.getByRole('button', { name: 'Edit as JSON' }).click();
    assert.deepEqual(JSON.parse(await page.getByLabel(/^Rules/).inputValue()), expected);
    await screenshot('rules-editor-json');
    await page.getByRole('button', { name: 'Edit in the form' }).click();
    assert.equal(await page.getByLabel('Rule 1, condition 2: value').inputValue(), 'web, api');
    await page.getByRole('button', { name: 'Edit as JSON' }).click();
    assert.deepEqual(JSON.parse(await page.getByLabel(/^Rules/).inputValue()), expected);
    await page.getByRole('button', { name: 'Edit in the form' }).click();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Saved.').waitFor();
    assert.deepEqual((await server.api('GET', `/receivers/${id}`)).body.rules, expected);

    // The receiver page's tester: a payload that matches, with the plan from the real swarm.
    const panel = page.locator('#rules-test');
    await panel.getByLabel('Body', { exact: true }).fill('{"severity": "critical", "by": 3}');
    await panel.locator('summary', { hasText: 'Headers' }).click();
    await panel.getByLabel(/^Headers/).fill('X-Team: web');
    await panel.getByLabel(/Also ask the driver for its plan/).check();
    await panel.getByRole('button', { name: 'Run test' }).click();
    const accepted = panel.locator('.rules-result[data-outcome="accepted"]');
    await accepted.waitFor();
    assert.match(await accepted.locator('.rt-decided').textContent(), /critical web/);
    assert.deepEqual(JSON.parse(await accepted.locator('.rt-set').textContent()), { by: 3 });
    await accepted.locator('.rt-plan pre').waitFor();
    const planned = JSON.parse(await accepted.locator('.rt-plan pre').textContent());
    assert.equal(planned.replicas, Math.min(5, planned.replicas_before + 3), `up by the request's 3, within max 5: ${JSON.stringify(planned)}`);
    await panel.scrollIntoViewIfNeeded();
    await screenshot('rules-tester-match');
    // One that does not: what each condition compared is shown.
    await panel.getByLabel('Body', { exact: true }).fill('{"severity": "warning"}');
    await panel.getByRole('button', { name: 'Run test' }).click();
    const ignored = panel.locator('.rules-result[data-outcome="ignored"]');
    await ignored.waitFor();
    assert.match(await ignored.locator('.rt-decided').textContent(), /the default decided/);
    assert.deepEqual(await ignored.locator('.rt-actual').allTextContents(), ['"warning"']);
    await screenshot('rules-tester-ignored');
    // A request object can be dropped in by a call (a logged delivery, later).
    await page.evaluate(() => document.querySelector('#rules-test .rules-tester').rulesTester.setRequest(
      { headers: { 'X-Team': 'api' }, body: { severity: 'critical', by: 2 } }, { run: true }));
    await panel.locator('.rules-result[data-outcome="accepted"]').waitFor();
    assert.equal(await panel.getByLabel(/^Headers/).inputValue(), 'X-Team: api');
    // The example for the receiver's preset.
    await panel.getByLabel('Example').selectOption('alertmanager');
    await panel.getByRole('button', { name: 'Fill in an example' }).click();
    assert.equal(JSON.parse(await panel.getByLabel('Body', { exact: true }).inputValue()).version, '4');

    // Rules the editor cannot show exactly open as JSON, with why, and are saved untouched.
    const nested = { rules: [{ when: { any: [{ all: [{ field: 'method', value: 'POST' }, { field: 'query:x', op: 'exists' }] }] } }] };
    assert.equal((await server.api('PUT', `/receivers/${id}`, { name: 'rules-ui', config: { service: 'web', action: 'up', by: 1, max: 5 }, rules: nested })).status, 200);
    await page.goto(`${base}/#/receivers/${id}/edit`);
    await expectH1('Edit rules-ui');
    await page.locator('.rules-notice', { hasText: 'nests conditions more than one level deep' }).waitFor();
    assert.deepEqual(JSON.parse(await page.getByLabel(/^Rules/).inputValue()), nested);
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByText('Saved.').waitFor();
    assert.deepEqual((await server.api('GET', `/receivers/${id}`)).body.rules, nested);

    // The same at phone width: no sideways scrolling.
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await page.goto(`${base}/#/receivers/${id}/edit`);
      await expectH1('Edit rules-ui');
      await page.getByRole('button', { name: 'Edit in the form' }).click();
      await page.locator('.rules-notice', { hasText: 'nests' }).waitFor(); // still not representable
      await page.getByLabel(/^Rules/).fill(JSON.stringify(expected));
      await page.getByRole('button', { name: 'Edit in the form' }).click();
      await page.getByLabel('Rule 1 name').waitFor();
      await page.locator('.rules-field').scrollIntoViewIfNeeded();
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth) <= 390, 'the rules editor fits 390 px');
      await screenshot('phone-rules-editor');
      const tester = page.locator('#rules-test');
      await tester.getByLabel('Body', { exact: true }).fill('{"severity": "warning"}');
      await tester.getByRole('button', { name: 'Run test' }).click();
      await tester.locator('.rules-result').waitFor();
      assert.ok(await page.evaluate(() => document.documentElement.scrollWidth) <= 390, 'the tester fits 390 px');
      await tester.scrollIntoViewIfNeeded();
      await screenshot('phone-rules-tester');
    } finally {
      await page.setViewportSize({ width: 1280, height: 860 });
    }
    assert.equal((await server.api('DELETE', `/receivers/${id}`)).status, 204);
  });

  step('a driver with nested objects, a choice (oneOf) and a secret gets a usable form', async (t) => {
    const drivers = (await server.api('GET', '/drivers')).body.items.map((d) => d.name);
    if (!drivers.includes('dns-update')) {
      t.skip('this build has no dns-update driver');
      return;
    }
    await page.goto(`${base}/#/receivers/new`);
    await expectH1('New receiver');
    await page.getByRole('radio', { name: /Update a DNS record/ }).check();
    await page.locator('fieldset.fieldset legend', { hasText: 'Record' }).waitFor();
    await page.getByLabel('Backend', { exact: true }).selectOption('rfc2136');
    const secret = page.getByLabel(/TSIG secret/);
    assert.equal(await secret.getAttribute('type'), 'password');
    assert.equal(await page.getByLabel(/Provider URL/).isVisible(), false, 'externaldns-only field hidden for rfc2136');
    // Required per backend, as the schema's allOf if/then says: no "optional" on a field the
    // server would then call required, and the form itself says so before any round trip.
    const label = (p) => page.locator(`[data-path="config.${p}"] .field-label`).first().textContent();
    for (const p of ['server', 'zone', 'tsig_key_name', 'tsig_secret']) {
      assert.doesNotMatch(await label(p), /optional/, `${p} is required for rfc2136`);
    }
    assert.match(await label('tsig_algorithm'), /optional/, 'the algorithm has a default');
    await page.getByRole('button', { name: 'Create receiver' }).click();
    await page.locator('[data-path="config.server"] .field-error', { hasText: 'This is required' }).waitFor();
    await page.locator('[data-path="config.tsig_secret"] .field-error', { hasText: 'This is required' }).waitFor();
    await page.getByLabel('Backend', { exact: true }).selectOption('externaldns-webhook');
    assert.doesNotMatch(await label('provider_url'), /optional/, 'provider URL is required for externaldns-webhook');
    await page.getByLabel('Backend', { exact: true }).selectOption('rfc2136');
    await page.getByLabel('Action', { exact: true }).selectOption('upsert');
    const value = page.getByLabel(/^Value( optional)?$/);
    assert.doesNotMatch(await label('value'), /optional/, 'an upsert needs its value');
    await value.selectOption({ label: 'A string in the request body' });
    await page.getByLabel(/JSON pointer/).waitFor();
    await screenshot('dns-update-form');

    // "Save anyway": the provider cannot be reached when saving (nothing listens on port 9).
    await page.locator('#r-name').fill('dns-unchecked');
    await page.getByLabel('Backend', { exact: true }).selectOption('externaldns-webhook');
    await page.getByLabel(/^Provider URL/).fill('http://127.0.0.1:9');
    await page.locator('[data-path="config.record.name"] input').fill('api.example.com');
    await page.locator('[data-path="config.record.type"] select').selectOption('A');
    await value.selectOption({ label: 'A fixed value' });
    await page.getByLabel(/^Value: a fixed value/).fill('192.0.2.10');
    await page.getByRole('button', { name: 'Create receiver' }).click();
    await page.locator('[data-path="config.provider_url"] .field-error', { hasText: 'could not be checked' }).waitFor();
    const anyway = page.getByRole('button', { name: 'Save anyway, without the check' });
    await anyway.waitFor();
    assert.equal((await server.api('GET', '/receivers')).body.items.some((r) => r.name === 'dns-unchecked'), false, 'nothing saved yet');
    await screenshot('save-anyway-offered');
    await anyway.click();
    await expectH1('dns-unchecked');
    await page.getByText('Saved without checking the target').waitFor();
    await screenshot('saved-unchecked');
    const saved = (await server.api('GET', '/receivers')).body.items.find((r) => r.name === 'dns-unchecked');
    assert.equal(saved.config.provider_url, 'http://127.0.0.1:9');
    assert.equal((await server.api('DELETE', `/receivers/${saved.id}`)).status, 204);
    await page.goto(`${base}/#/receivers`);
    await expectH1('Receivers');
  });

  step('redeploy: a list field (as JSON), a writeOnly password and selects, with no driver code', async (t) => {
    const drivers = (await server.api('GET', '/drivers')).body.items.map((d) => d.name);
    if (!drivers.includes('redeploy')) {
      t.skip('this build has no redeploy driver');
      return;
    }
    await page.goto(`${base}/#/receivers/new`);
    await expectH1('New receiver');
    await page.getByRole('radio', { name: /Redeploy services onto a pushed image/ }).check();
    await page.getByLabel('Image', { exact: true }).waitFor();
    // Each backend's fields only for it, from the schema alone ("(kubernetes)", "swarm only").
    const backend = page.getByLabel(/^Orchestrator/);
    await backend.selectOption('kubernetes');
    await page.getByLabel(/^Deployments \(kubernetes\)/).waitFor();
    assert.equal(await page.getByLabel(/^Container \(kubernetes\)/).isVisible(), true, 'kubernetes-only field shown for kubernetes');
    assert.equal(await page.getByLabel(/^Services/).isVisible(), false, 'swarm-only field hidden for kubernetes');
    assert.equal(await page.getByLabel(/^Order/).isVisible(), false, 'swarm rollout hidden for kubernetes');
    await backend.selectOption('swarm');
    await page.getByLabel(/^Services/).waitFor();
    assert.equal(await page.getByLabel(/^Container \(kubernetes\)/).isVisible(), false, 'kubernetes-only field hidden for swarm');
    const password = page.getByLabel(/Registry password or token/);
    assert.equal(await password.getAttribute('type'), 'password');
    await page.getByLabel('Name', { exact: true }).fill('web-redeploy');
    await page.getByLabel('Image', { exact: true }).fill('tripline-test/busybox');
    await page.getByLabel(/^Allowed tags/).fill('v[0-9.]+');
    await page.getByLabel(/^Services/).fill('["web"]');
    await page.getByLabel(/^Order/).selectOption('start-first');
    await page.getByLabel(/^Registry username/).fill('deployer');
    await password.fill('registry-password-ui-test');
    await screenshot('redeploy-form');
    await page.getByRole('button', { name: 'Create receiver' }).click();
    await expectH1('web-redeploy');
    await page.getByText('Receiver created.').waitFor();
    await page.getByText(/Redeploy web onto tripline-test\/busybox/).first().waitFor();
    const list = await server.api('GET', '/receivers');
    const created = list.body.items.find((r) => r.name === 'web-redeploy');
    assert.ok(created, 'the redeploy receiver is listed');
    assert.equal(created.config.services[0], 'web');
    assert.equal(created.config.update_order, 'start-first');
    assert.notEqual(created.config.registry_password, 'registry-password-ui-test', 'the secret is never returned');
    assert.equal((await server.api('DELETE', `/receivers/${created.id}`)).status, 204);
    await page.goto(`${base}/#/receivers`);
    await expectH1('Receivers');
  });

  step('works at phone width (390 px) without sideways scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const noOverflow = async (where) => {
      const w = await page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(w <= 390, `${where}: page is ${w} px wide at a 390 px viewport`);
    };
    await page.reload(); // the token was in memory only: a reload asks again
    await expectH1('Sign in to tripline');
    await screenshot('phone-sign-in');
    await page.getByLabel('Admin token', { exact: true }).fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('main h1').waitFor();
    await page.goto(`${base}/#/receivers`);
    await expectH1('Receivers');
    await page.locator(`tr[data-id="${receiverId}"]`).waitFor();
    await noOverflow('receivers');
    await screenshot('phone-receivers');
    await page.getByRole('link', { name: 'web-up', exact: true }).click();
    await expectH1('web-up');
    await page.locator('.exec-row').first().waitFor();
    await noOverflow('receiver');
    await screenshot('phone-receiver');
    await nav('Executions').click();
    await page.locator('.exec-row').first().waitFor();
    await noOverflow('executions');
    await screenshot('phone-executions');
    const firstRow = page.locator('.exec-row').first();
    await firstRow.getByText('Details').click();
    await firstRow.locator('pre.json').waitFor();
    await assertDetailsInside(firstRow);
    await noOverflow('executions with Details open');
    await screenshot('phone-executions-details');
    await page.goto(`${base}/#/receivers/new`);
    await expectH1('New receiver');
    await page.getByRole('radio', { name: /Scale a service/ }).check();
    await noOverflow('form');
    await screenshot('phone-new-receiver');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  step('follows the system dark mode', async () => {
    await page.emulateMedia({ colorScheme: 'dark' });
    await page.goto(`${base}/#/receivers/${receiverId}`);
    await expectH1('web-up');
    await page.locator('.exec-row').first().waitFor();
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    assert.notEqual(bg, 'rgb(246, 247, 249)', 'dark background');
    await screenshot('dark-receiver');
    await page.emulateMedia({ colorScheme: 'light' });
  });

  step('notifications: a delivery shows its attempts, and a failed one can be re-sent', async () => {
    // A real subscriber on loopback: it refuses the first notification (400), accepts the next.
    const got = [];
    const subscriber = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        got.push({ id: req.headers['webhook-id'], body });
        const refuse = got.length === 1;
        res.writeHead(refuse ? 400 : 200, { 'Content-Type': 'text/plain' });
        res.end(refuse ? 'not now thanks' : 'ok');
      });
    });
    await new Promise((resolve) => subscriber.listen(0, '127.0.0.1', resolve));
    try {
      const sub = await server.api('POST', `/receivers/${receiverId}/notifications`, {
        url: `http://127.0.0.1:${subscriber.address().port}/events`,
        secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
        events: ['succeeded', 'failed'],
      });
      assert.equal(sub.status, 201);
      assert.equal(sub.body.secret, '********');
      assert.equal((await post(triggerUrl)).status, 202);
      await page.goto(`${base}/#/receivers/${receiverId}`);
      await expectH1('web-up');
      const failed = page.locator('tr.delivery-row[data-state="failed"]');
      await failed.waitFor({ timeout: 30000 });
      const deliveryId = await failed.getAttribute('data-id');
      await failed.locator('summary').click();
      const attempt = failed.locator('tr.attempt-row');
      await attempt.waitFor();
      assert.match(await attempt.textContent(), /400/);
      assert.match(await attempt.textContent(), /not now thanks/);
      await screenshot('delivery-failed');
      await failed.getByRole('button', { name: `Re-send delivery ${deliveryId}` }).click();
      const delivered = page.locator(`tr.delivery-row[data-id="${deliveryId}"][data-state="delivered"]`);
      await delivered.waitFor({ timeout: 20000 });
      assert.equal(await delivered.locator('tr.attempt-row').count(), 2, 'both attempts are listed');
      assert.equal(got.length, 2);
      assert.equal(got[1].id, got[0].id, 'the re-send carries the same webhook-id');
      await screenshot('delivery-resent');
    } finally {
      subscriber.close();
    }
  });

  step('no-op executions look neutral and their repeats collapse', async () => {
    const run = async () => {
      const res = await post(triggerUrl);
      assert.equal(res.status, 202);
      const { execution_id: id } = await res.json();
      await waitFor(`execution ${id} finished`, async () => {
        const e = (await server.api('GET', `/executions/${id}`)).body;
        return e.status === 'succeeded' || e.status === 'failed';
      });
      return (await server.api('GET', `/executions/${id}`)).body;
    };
    // Up by 1 to the bound (5), then three times more: each of those changes nothing.
    let e = await run();
    for (let i = 0; i < 5 && e.result.changed !== false; i += 1) e = await run();
    assert.equal(e.result.changed, false, JSON.stringify(e));
    const noops = [e, await run(), await run()];
    for (const n of noops) assert.equal(n.result.changed, false);
    await page.goto(`${base}/#/executions?receiver=${receiverId}`);
    await expectH1('Executions');
    const newest = page.locator(`tr.exec-row[data-id="${noops[2].id}"]`);
    await newest.waitFor();
    assert.match(await newest.textContent(), /×3/);
    assert.match(await newest.locator('.outcome').textContent(), /^No change: already at 5 replicas/);
    assert.equal(await newest.locator('.badge').textContent(), 'no change');
    assert.notEqual(await newest.locator('.outcome').evaluate((el) => getComputedStyle(el).fontWeight), '600', 'not bold like a change');
    assert.equal(await page.locator(`tr.exec-row[data-id="${noops[0].id}"]`).count(), 0, 'the older repeats are folded');
    await screenshot('executions-noop-collapsed');
    const more = newest.getByRole('button', { name: 'Show all 3' });
    assert.equal(await more.getAttribute('aria-expanded'), 'false');
    await more.click();
    await page.locator(`tr.exec-row[data-id="${noops[0].id}"]`).waitFor();
    const less = newest.getByRole('button', { name: 'Hide the repeats' });
    assert.equal(await less.getAttribute('aria-expanded'), 'true');
    assert.equal(await less.evaluate((b) => b === document.activeElement), true, 'focus stays on the toggle');
    await screenshot('executions-noop-expanded');
  });

  step('a retrying execution says "attempt N of 8" and when, as a clock time', async () => {
    // A real webhook peer on loopback that answers 500 until released.
    let release = false;
    let calls = 0;
    const peer = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        calls += 1;
        res.writeHead(release ? 200 : 500, { 'Content-Type': 'text/plain' });
        res.end(release ? 'ok' : 'down for now');
      });
    });
    await new Promise((resolve) => peer.listen(0, '127.0.0.1', resolve));
    try {
      const hook = await server.api('POST', '/receivers', {
        name: 'flaky-hook', driver: 'webhook',
        config: { url: `http://127.0.0.1:${peer.address().port}/hook`, secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' },
      });
      assert.equal(hook.status, 201, JSON.stringify(hook.body));
      const res = await post(hook.body.trigger_url);
      assert.equal(res.status, 202);
      const { execution_id: id } = await res.json();
      await page.goto(`${base}/#/executions?receiver=${hook.body.id}`);
      await expectH1('Executions');
      const row = page.locator(`tr.exec-row[data-id="${id}"]`);
      await page.locator(`tr.exec-row[data-id="${id}"][data-status="queued"] .outcome-warn`).waitFor({ timeout: 30000 });
      // Both read at once: the list may redraw between two reads.
      const [text, attemptsCell] = await row.evaluate((tr) => [
        tr.querySelector('.outcome').textContent, tr.querySelector('td[data-label="Attempts"]').textContent]);
      const m = text.match(/^Will retry \(attempt (\d+) of 8\) at (\d{1,2}:\d{2}:\d{2}.*?) \((.+?)\): .*500/);
      assert.ok(m, `outcome: ${text}`);
      assert.equal(attemptsCell, `${Number(m[1]) - 1} of 8`);
      await screenshot('executions-retrying');
      release = true;
      await page.locator(`tr.exec-row[data-id="${id}"][data-status="succeeded"]`).waitFor({ timeout: 45000 });
      assert.match(await row.locator('td[data-label="Attempts"]').textContent(), /^\d of 8$/);
      assert.ok(calls >= 2);
      assert.equal((await server.api('DELETE', `/receivers/${hook.body.id}`)).status, 204);
    } finally {
      peer.close();
    }
  });

  // The operations page (docs/operations.md "The operations page").
  // The request log (docs/requests-log.md): a receiver with a rule and a bearer token, so one
  // request is ignored by the rule, one refused by the credential check, one accepted.
  let gated;
  const gatedBearer = 'gate-bearer-0123456789abcdef0123';
  const noSideways = async (where, width) => {
    const w = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(w <= width, `${where}: page is ${w} px wide at a ${width} px viewport`);
  };
  const whoami = async (token) => {
    const r = await fetch(`${base}/api/v1/whoami`, { headers: { Authorization: `Bearer ${token}` } });
    return { status: r.status, body: r.status === 200 ? await r.json() : null };
  };

  step('operations: create an operator token, see its secret once, copy it, revoke it', async () => {
    await nav('Operations').click();
    await expectH1('Operations');
    assert.equal(await nav('Operations').getAttribute('aria-current'), 'page');
    // The peers' health, from the readiness prober: the database and the swarm's Docker.
    await page.locator('tr[data-peer="database"]', { hasText: 'ok' }).waitFor();
    await page.locator('tr[data-peer="docker"]', { hasText: 'ok' }).waitFor({ timeout: 15000 });
    assert.match(await page.locator('tr[data-peer="docker"]').textContent(), /scale-service/);
    assert.ok((await page.locator('tr[data-peer="docker"]').textContent()).includes(swarm.dockerHost), 'an admin sees the address');

    await page.getByLabel('Name', { exact: true }).fill('night-shift');
    await page.getByLabel('Role', { exact: true }).selectOption('operator');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = page.locator('[data-testid="new-token"] pre');
    await secret.waitFor();
    const token = (await secret.textContent()).trim();
    assert.match(token, /^tl_[A-Za-z0-9_-]{40,}$/);
    assert.match(await page.locator('.token-secret').textContent(), /you will not see it again/);
    const who = await whoami(token); // the token works, as what the form said
    assert.deepEqual([who.body.name, who.body.role], ['night-shift', 'operator']);
    await page.getByRole('button', { name: 'Copy new admin token' }).click();
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
    const row = page.locator('tr[data-token="night-shift"]');
    await row.waitFor();
    assert.match(await row.textContent(), /operator/);
    await screenshot('operations-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    await noSideways('operations', 390);
    await screenshot('operations-390');
    await page.setViewportSize({ width: 1280, height: 860 });

    // Once dismissed, the secret is nowhere on the page, and nothing brings it back.
    await page.getByRole('button', { name: 'I have stored it' }).click();
    assert.equal(await page.locator('[data-testid="new-token"]').count(), 0);
    assert.equal(await page.evaluate((t) => document.documentElement.outerHTML.includes(t), token), false);
    await page.reload();
    await page.getByLabel('Admin token', { exact: true }).fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('main h1').waitFor();
    await page.goto(`${base}/#/operations`);
    await expectH1('Operations');
    await row.waitFor();
    assert.equal(await page.evaluate((t) => document.documentElement.outerHTML.includes(t), token), false);

    // Revoke asks first; Cancel keeps it; then it stops working at once.
    await row.getByRole('button', { name: 'Revoke night-shift' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await whoami(token)).status, 200, 'Cancel revoked nothing');
    await row.getByRole('button', { name: 'Revoke night-shift' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke token' }).click();
    await row.waitFor({ state: 'detached' });
    assert.equal((await whoami(token)).status, 401);
  });

  step('operations: a read-only token sees no token list, no pause and no addresses', async () => {
    const made = await server.api('POST', '/tokens', { name: 'wallboard', role: 'read-only' });
    assert.equal(made.status, 201);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expectH1('Sign in to tripline');
    await page.getByLabel('Admin token', { exact: true }).fill(made.body.token);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('main h1').waitFor();
    await nav('Operations').click();
    await expectH1('Operations');
    await page.locator('tr[data-peer="docker"]').waitFor();
    assert.equal(await page.getByRole('button', { name: /Pause workers|Resume workers/ }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Create token' }).count(), 0);
    assert.equal(await page.locator('table.table-tokens').count(), 0);
    // Were a change tried anyway (a stale page), the message says it is the role, naming the
    // role needed.
    const refused = await page.evaluate(() => import('/api.js').then((m) => m.opsApi.pauseWorkers())
      .then(() => 'allowed', (e) => `${e.status} ${e.message}`));
    assert.match(refused, /^403 .*operator role.*read-only/);
    await page.getByText('Seeing the tokens needs an operator token').waitFor();
    assert.equal(await page.locator('tr[data-peer="docker"]').textContent().then((t) => t.includes(swarm.dockerHost)), false, 'no address for read-only');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expectH1('Sign in to tripline');
    await page.getByLabel('Admin token', { exact: true }).fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.locator('main h1').waitFor();
    assert.equal((await server.api('DELETE', `/tokens/${made.body.id}`)).status, 204);
  });

  step('pause workers: a banner on every screen with the queue count; resume and it is gone', async () => {
    await page.goto(`${base}/#/operations`);
    await expectH1('Operations');
    const banner = page.locator('#pause-banner');
    assert.equal(await banner.isVisible(), false);
    await page.getByRole('button', { name: 'Pause workers' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Pause workers' }).click();
    await banner.getByText('Workers paused').waitFor();
    await page.getByRole('button', { name: 'Resume workers' }).waitFor();

    // Two triggers while paused: accepted and queued.
    const rec = await server.api('POST', '/receivers', {
      name: 'paused-set', driver: 'scale-service', config: { service: 'web', action: 'set', replicas: 1, min: 0, max: 5 },
    });
    assert.equal(rec.status, 201, JSON.stringify(rec.body));
    for (let i = 0; i < 2; i++) assert.equal((await post(rec.body.trigger_url)).status, 202);
    await nav('Receivers').click();
    await expectH1('Receivers');
    await banner.getByText('2 queued').waitFor({ timeout: 15000 });
    const text = await banner.textContent();
    assert.match(text, /Workers paused since .+ by from TRIPLINE_ADMIN_TOKEN; 2 queued/);
    await screenshot('paused-banner-1280', { fullPage: false });
    await page.setViewportSize({ width: 390, height: 844 });
    await noSideways('receivers with the pause banner', 390);
    await screenshot('paused-banner-390', { fullPage: false });
    await page.setViewportSize({ width: 1280, height: 860 });
    // Every screen: the executions list and a receiver's page show it too.
    await nav('Executions').click();
    await expectH1('Executions');
    assert.equal(await banner.isVisible(), true);
    const w = await server.api('GET', '/workers');
    assert.deepEqual([w.body.paused, w.body.queued, w.body.running], [true, 2, 0]);

    await banner.getByRole('button', { name: 'Resume' }).click();
    await banner.waitFor({ state: 'hidden' });
    await waitFor('the queued executions to run', async () => (await server.api('GET', '/workers')).body.queue_depth === 0, { timeoutMs: 45000 });
    assert.equal((await server.api('DELETE', `/receivers/${rec.body.id}`)).status, 204);
  });

  step('the service picker lists the swarm\'s services with their replicas, filtered as you type', async () => {
    swarm.createService('picker-api', 2);
    await page.goto(`${base}/#/receivers/new`);
    await expectH1('New receiver');
    await page.getByRole('radio', { name: /Scale a service/ }).check();
    const service = page.getByRole('combobox', { name: 'Service' });
    await service.click();
    const list = page.getByRole('listbox', { name: 'Services in the swarm' });
    await list.waitFor();
    await list.getByRole('option', { name: 'picker-api — 2 replicas' }).waitFor();
    assert.ok(await list.getByRole('option', { name: /^web — \d+ replicas?$/ }).count() === 1);
    assert.equal(await service.getAttribute('aria-expanded'), 'true');
    // Typed filter, then the keyboard: ArrowDown, Enter.
    await service.pressSequentially('picker');
    assert.deepEqual(await list.getByRole('option').allTextContents(), ['picker-api — 2 replicas']);
    await service.press('ArrowDown');
    assert.equal(await service.getAttribute('aria-activedescendant'), await list.getByRole('option').first().getAttribute('id'));
    await screenshot('service-picker', { fullPage: false });
    await service.press('Enter');
    assert.equal(await service.inputValue(), 'picker-api');
    assert.equal(await list.isVisible(), false);
    await page.getByText('picker-api has 2 replicas now.').waitFor();
    // Escape closes the list and keeps what was typed; a name not listed can still be typed.
    await service.fill('not-listed');
    await service.press('Escape');
    assert.equal(await list.isVisible(), false);
    assert.equal(await service.inputValue(), 'not-listed');
    await page.getByRole('link', { name: 'Cancel' }).click();
    await expectH1('Receivers');
  });

  step('requests: an ignored request shows the rule and the values; a refused one the check', async () => {
    const created = await server.api('POST', '/receivers', {
      name: 'gated', driver: 'scale-service',
      config: { service: 'web', action: 'up', by: 1, max: 5 },
      rules: { rules: [{ name: 'critical only', then: 'ignore', when: { field: 'body:/severity', op: 'not_equals', value: 'critical' } }] },
      auth: { bearer_token: gatedBearer },
    });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    gated = created.body;
    const json = { 'Content-Type': 'application/json' };
    const authed = { ...json, Authorization: `Bearer ${gatedBearer}` };
    assert.equal((await post(gated.trigger_url, { headers: authed, body: '{"severity":"warning","team":"web"}' })).status, 200);
    assert.equal((await post(gated.trigger_url, { headers: json, body: '{"severity":"critical"}' })).status, 401);
    // Those two are written by the log's background writer, the accepted one with its execution:
    // waited for, so that the ids (the list's order) follow the order they were sent in.
    await waitFor('the ignored and refused entries', async () => (await server.api('GET', `/receivers/${gated.id}/requests`)).body.items.length === 2);
    const ok = await post(gated.trigger_url, { headers: authed, body: '{"severity":"critical"}' });
    assert.equal(ok.status, 202);
    gated.executionId = (await ok.json()).execution_id;
    await waitFor(`execution ${gated.executionId} finished`, async () => ['succeeded', 'failed'].includes((await server.api('GET', `/executions/${gated.executionId}`)).body.status));

    await page.setViewportSize({ width: 1280, height: 860 });
    await page.goto(`${base}/#/receivers/${gated.id}`);
    await expectH1('gated');
    const ignored = page.locator('tr.request-row[data-outcome="ignored"]');
    const refused = page.locator('tr.request-row[data-outcome="refused"]');
    const accepted = page.locator('tr.request-row[data-outcome="accepted"]');
    await accepted.waitFor({ timeout: 15000 });
    await ignored.waitFor();
    await refused.waitFor();
    // Newest first: accepted, refused, ignored.
    assert.deepEqual(await page.locator('tr.request-row').evaluateAll((trs) => trs.map((tr) => tr.dataset.outcome)), ['accepted', 'refused', 'ignored']);
    const ignoredText = await ignored.textContent();
    assert.match(ignoredText, /Ignored by rule #1 “critical only”/);
    assert.match(ignoredText, /body:\/severity not_equals "critical": was "warning"/);
    const answer = (row) => row.locator('td[data-label="Answer"]').textContent();
    assert.equal(await answer(ignored), '200');
    const refusedText = await refused.textContent();
    assert.match(refusedText, /Refused by the credential check/);
    assert.equal(await answer(refused), '401');
    assert.equal(await answer(accepted), '202');
    assert.equal(await accepted.locator('.request-reason').textContent(), 'Accepted: an execution was queued');
    assert.match(await ignored.locator('td[data-label="Source"]').textContent(), /127\.0\.0\.1|::1/);
    await page.locator('section[aria-labelledby="sec-requests"]').scrollIntoViewIfNeeded();
    await screenshot('requests-list-1280');
    // The outcome filter asks the API for that outcome only.
    await page.getByLabel('Outcome', { exact: true }).selectOption('refused');
    await waitFor('only refused rows', async () => (await page.locator('tr.request-row').evaluateAll((trs) => trs.map((tr) => tr.dataset.outcome))).join() === 'refused');
    await page.getByLabel('Outcome', { exact: true }).selectOption('');

    // The refused one's page: its check, redacted headers, and why it is not redelivered.
    const refusedId = await refused.getAttribute('data-id');
    await refused.getByRole('link', { name: `Request ${refusedId}` }).click();
    await expectH1(`Request #${refusedId}`);
    assert.match(await page.locator('main p.request-reason').textContent(), /credential check/);
    const redeliver = page.getByRole('button', { name: 'Redeliver' });
    assert.equal(await redeliver.isDisabled(), true);
    await page.getByText('Refused requests are never redelivered').waitFor();

    // The ignored one's page: the rule, the compared values, the headers with the bearer token
    // redacted, the body.
    const ignoredId = (await server.api('GET', `/receivers/${gated.id}/requests?outcome=ignored`)).body.items[0].id;
    await page.goto(`${base}/#/receivers/${gated.id}/requests/${ignoredId}`);
    await expectH1(`Request #${ignoredId}`);
    await page.getByRole('link', { name: '← gated' }).waitFor();
    assert.match(await page.locator('main p.request-reason').textContent(), /rule #1 “critical only”/);
    assert.match(await page.locator('main .compared').textContent(), /was "warning"/);
    const auth = page.locator('tr.header-row', { hasText: /^Authorization/i });
    assert.match(await auth.textContent(), /\[redacted\]/);
    assert.equal((await page.locator('main').textContent()).includes(gatedBearer), false, 'the bearer token is not shown');
    assert.match(await page.locator('pre.request-body').textContent(), /"severity": "warning"/);
    assert.match(await page.locator('.request-answer').textContent(), /HTTP 200/);
    await screenshot('request-detail-1280');

    // At phone width: no sideways scrolling on the list or the page of one.
    await page.setViewportSize({ width: 390, height: 844 });
    await noSideways('request detail', 390);
    await screenshot('request-detail-390');
    await page.goto(`${base}/#/receivers/${gated.id}`);
    await expectH1('gated');
    await page.locator('tr.request-row').first().waitFor();
    await noSideways('requests list', 390);
    await page.locator('section[aria-labelledby="sec-requests"]').scrollIntoViewIfNeeded();
    await screenshot('requests-list-390');
    await page.setViewportSize({ width: 1280, height: 860 });
  });

  step('requests: redeliver creates a new entry marked as a replay, with its execution', async () => {
    const acceptedId = (await server.api('GET', `/receivers/${gated.id}/requests?outcome=accepted`)).body.items[0].id;
    await page.goto(`${base}/#/receivers/${gated.id}/requests/${acceptedId}`);
    await expectH1(`Request #${acceptedId}`);
    await page.getByRole('link', { name: `execution #${gated.executionId}` }).waitFor();
    await page.getByRole('button', { name: 'Redeliver' }).click();
    await page.locator('#toasts .toast', { hasText: /Redelivered as request #\d+/ }).waitFor();
    const replay = (await server.api('GET', `/receivers/${gated.id}/requests?limit=1`)).body.items[0];
    assert.equal(replay.replay_of, acceptedId);
    assert.equal(replay.outcome, 'accepted');
    assert.notEqual(replay.execution_id, gated.executionId);
    await expectH1(`Request #${replay.id}`);
    await page.getByRole('link', { name: `request #${acceptedId}` }).waitFor();
    await page.getByRole('link', { name: `execution #${replay.execution_id}` }).waitFor();
    await screenshot('request-replay');
    await page.goto(`${base}/#/receivers/${gated.id}`);
    await expectH1('gated');
    const row = page.locator(`tr.request-row[data-id="${replay.id}"]`);
    await row.waitFor();
    assert.match(await row.textContent(), new RegExp(`replay of #${acceptedId}`));
    const audit = (await server.api('GET', '/audit?target=request&limit=1')).body.items[0];
    assert.equal(audit.action, 'request.redeliver');
  });

  // "Why didn't it fire?" from a real delivery: a logged request run through the rules tester.
  step('requests: Test rules runs a logged request through the tester; a cut or redacted one says it is not exact', async () => {
    await page.setViewportSize({ width: 1280, height: 860 });
    const entry = (await server.api('GET', `/receivers/${gated.id}/requests?outcome=ignored`)).body.items[0];
    await page.goto(`${base}/#/receivers/${gated.id}`);
    await expectH1('gated');
    const row = page.locator(`tr.request-row[data-id="${entry.id}"]`);
    await row.getByRole('button', { name: `Test rules with request ${entry.id}` }).click();
    const panel = page.locator('#rules-test');
    const result = panel.locator('.rules-result');
    await result.waitFor();
    // What the trigger decided, decided again from the log: rule 1 ignored it, on "warning".
    assert.equal(await result.getAttribute('data-outcome'), 'ignored');
    assert.match(await result.locator('.rt-decided').textContent(), /rule 1 “critical only”/);
    assert.deepEqual(await result.locator('.rt-actual').allTextContents(), ['"warning"']);
    assert.deepEqual(JSON.parse(await panel.getByLabel('Body', { exact: true }).inputValue()), { severity: 'warning', team: 'web' });
    const headers = await panel.getByLabel(/^Headers/).inputValue();
    assert.match(headers, /^content-type: application\/json$/mi);
    assert.match(headers, /^authorization: \[redacted\]$/mi);
    assert.equal(headers.includes(gatedBearer), false);
    assert.equal(await panel.locator('#rt-source').inputValue(), entry.source);
    const note = panel.locator('.rt-note');
    assert.match(await note.textContent(), new RegExp(`Filled from request #${entry.id}`));
    assert.equal(await panel.locator('.rt-inexact').count(), 0, 'an entry kept whole is not called inexact');
    assert.equal(await note.evaluate((el) => el === document.activeElement), true, 'focus moves to the note');
    await screenshot('requests-test-rules-1280');

    // One the log cut (a body over 4096 bytes) and took the trigger token out of (its URL in the
    // body, as GitHub's ping carries it). The trigger read it whole: ignored by the rule.
    const sent = JSON.stringify({ severity: 'warning', hook: gated.trigger_url, pad: 'x'.repeat(5000) });
    const res = await post(gated.trigger_url, { headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${gatedBearer}` }, body: sent });
    assert.equal(res.status, 200);
    let cut;
    await waitFor('the cut entry', async () => {
      cut = (await server.api('GET', `/receivers/${gated.id}/requests?limit=1`)).body.items[0];
      return cut && cut.body_truncated;
    });
    assert.equal(cut.token_redacted, true);
    const kept = (await server.api('GET', `/receivers/${gated.id}/requests/${cut.id}`)).body.body;
    await page.goto(`${base}/#/receivers/${gated.id}/requests/${cut.id}`);
    await expectH1(`Request #${cut.id}`);
    assert.match(await page.locator('main').textContent(), /Not the exact request: the trigger token was taken out/);
    await page.getByRole('link', { name: 'Test rules with this request' }).click();
    await expectH1('gated');
    const inexact = panel.locator('.rt-inexact');
    await inexact.waitFor();
    const says = await inexact.textContent();
    assert.match(says, /Not the exact request/);
    assert.match(says, /trigger token was taken out/);
    assert.match(says, new RegExp(`first \\d+ of its ${cut.body_size} bytes of body`));
    // It still runs, on what the log kept: the token is not in it.
    await panel.locator('.rules-result').waitFor();
    const body = await panel.getByLabel('Body', { exact: true }).inputValue();
    assert.equal(body, kept);
    assert.equal(body.includes(new URL(gated.trigger_url).pathname), false, 'the token is not in the sample');
    assert.match(body, /\[redacted\]/);
    await panel.scrollIntoViewIfNeeded();
    await screenshot('requests-test-rules-inexact-1280');
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await noSideways('the tester filled from a request', 390);
      await inexact.scrollIntoViewIfNeeded();
      await screenshot('requests-test-rules-inexact-390', { fullPage: false });
      await page.locator('tr.request-row .request-test').first().scrollIntoViewIfNeeded();
      await noSideways('requests with Test rules', 390);
      await screenshot('requests-list-test-button-390', { fullPage: false });
    } finally {
      await page.setViewportSize({ width: 1280, height: 860 });
    }
    // Edited, the note says so; an example replaces the sample, and the note goes.
    await panel.getByLabel('Body', { exact: true }).fill('{"severity":"critical"}');
    await panel.locator('.rt-note .rt-edited').waitFor();
    await panel.getByRole('button', { name: 'Fill in an example' }).click();
    assert.equal(await panel.locator('.rt-note').isVisible(), false);
  });

  step('requests: Older pages beyond the newest 20 by the cursor, and says when there are no more', async () => {
    const made = await server.api('POST', '/receivers', {
      name: 'paged', driver: 'scale-service',
      config: { service: 'web', action: 'up', by: 1, max: 5 },
      rules: { default: 'ignore', rules: [] },
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const paged = made.body;
    const json = { 'Content-Type': 'application/json' };
    // 40: two full pages, so the second has a cursor with nothing before it.
    for (let n = 0; n < 40; n += 1) {
      assert.equal((await post(paged.trigger_url, { headers: json, body: JSON.stringify({ n }) })).status, 200);
    }
    const logged = async () => (await server.api('GET', `/receivers/${paged.id}/requests?limit=100`)).body.items.map((e) => e.id);
    await waitFor('40 entries', async () => (await logged()).length === 40);
    const all = await logged();
    const shown = () => page.locator('tr.request-row').evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.id)));
    const same = async (ids) => JSON.stringify(await shown()) === JSON.stringify(ids);
    await page.setViewportSize({ width: 1280, height: 860 });
    await page.goto(`${base}/#/receivers/${paged.id}`);
    await expectH1('paged');
    await waitFor('the newest 20', () => same(all.slice(0, 20)));
    const olderBtn = page.getByRole('button', { name: 'Older', exact: true });
    const newerBtn = page.getByRole('button', { name: 'Newer', exact: true });
    assert.equal(await newerBtn.isVisible(), false, 'no Newer on the first page');
    await olderBtn.click();
    await waitFor('the 20 before them', () => same(all.slice(20, 40)));
    assert.match(await page.locator('.requests-page').textContent(), /Page 2 \(20 requests\)/);
    // A full page: the API still gives a cursor; Older finds nothing and says so, and stays.
    assert.equal(await olderBtn.isDisabled(), false);
    await olderBtn.click();
    await page.locator('.requests-page', { hasText: 'There are no older requests in the log.' }).waitFor();
    assert.equal(await olderBtn.isDisabled(), true);
    assert.equal(await same(all.slice(20, 40)), true);
    // The page shown is polled by its cursor: a new request does not push it along.
    assert.equal((await post(paged.trigger_url, { headers: json, body: '{"n":40}' })).status, 200);
    await waitFor('41 entries', async () => (await logged()).length === 41);
    await page.waitForTimeout(3500); // one poll
    assert.equal(await same(all.slice(20, 40)), true, 'the older page stays put');
    await page.locator('section[aria-labelledby="sec-requests"] .requests-pager').scrollIntoViewIfNeeded();
    await screenshot('requests-older-1280', { fullPage: false });
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await noSideways('an older page of requests', 390);
      await page.locator('section[aria-labelledby="sec-requests"] .requests-pager').scrollIntoViewIfNeeded();
      await screenshot('requests-older-390', { fullPage: false });
    } finally {
      await page.setViewportSize({ width: 1280, height: 860 });
    }
    // Newer goes back to the first page, which has the new one.
    await newerBtn.click();
    const now = await logged();
    await waitFor('the newest 20 again', () => same(now.slice(0, 20)));
    assert.equal(await newerBtn.isVisible(), false);
    assert.equal(await olderBtn.isDisabled(), false);
    assert.equal((await server.api('DELETE', `/receivers/${paged.id}`)).status, 204);
  });

  step('executions: Cancel a queued execution, then Re-run it', async () => {
    assert.equal((await server.api('POST', '/workers/pause')).status, 200);
    try {
      const res = await post(gated.trigger_url, { headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${gatedBearer}` }, body: '{"severity":"critical"}' });
      assert.equal(res.status, 202);
      const { execution_id: id } = await res.json();
      await page.goto(`${base}/#/executions?receiver=${gated.id}`);
      await expectH1('Executions');
      const queued = page.locator(`tr.exec-row[data-id="${id}"][data-status="queued"]`);
      await queued.waitFor();
      await queued.getByRole('button', { name: `Cancel execution ${id}` }).click();
      const failed = page.locator(`tr.exec-row[data-id="${id}"][data-status="failed"]`);
      await failed.waitFor();
      assert.match(await failed.locator('.outcome').textContent(), /cancelled/);
      assert.equal((await server.api('GET', `/executions/${id}`)).body.error, 'cancelled');
      await screenshot('execution-cancelled');
      // Cancelled is failed: it can be run again.
      await failed.getByRole('button', { name: `Re-run execution ${id}` }).click();
      await page.locator('#toasts .toast', { hasText: new RegExp(`Execution ${id} re-run as execution \\d+`) }).waitFor();
      const items = (await server.api('GET', `/executions?receiver_id=${gated.id}&limit=1`)).body.items;
      assert.equal(items[0].status, 'queued');
      assert.notEqual(items[0].id, id);
      // Both acts are in the audit log, newest first.
      const audit = (await server.api('GET', `/audit?target=execution:${id}`)).body.items.map((a) => a.action);
      assert.deepEqual(audit, ['execution.retry', 'execution.cancel']);
    } finally {
      assert.equal((await server.api('POST', '/workers/resume')).status, 200);
    }
  });

  step('a read-only token sees the request log but no Redeliver, Cancel or Re-run', async () => {
    const made = await server.api('POST', '/tokens', { name: 'dashboard', role: 'read-only' });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const signInAs = async (value) => {
      await page.getByRole('button', { name: 'Sign out' }).click();
      await expectH1('Sign in to tripline');
      await page.getByLabel('Admin token', { exact: true }).fill(value);
      await page.getByLabel('Admin token', { exact: true }).press('Enter');
      // Signed in: the page of the route it was on comes back.
      await page.waitForFunction(() => {
        const h = document.querySelector('main h1');
        return h && !/Sign in/.test(h.textContent);
      });
    };
    await signInAs(made.body.token);
    try {
      const entry = (await server.api('GET', `/receivers/${gated.id}/requests?outcome=ignored`)).body.items[0];
      await page.goto(`${base}/#/receivers/${gated.id}/requests/${entry.id}`);
      await expectH1(`Request #${entry.id}`);
      await page.getByText('Redelivering a request needs an operator or admin token.').waitFor();
      assert.equal(await page.getByRole('button', { name: 'Redeliver' }).count(), 0);
      assert.equal(await page.getByRole('link', { name: 'Test rules with this request' }).count(), 0);
      // The rules tester needs an operator: no panel, no "Test rules" on the requests.
      await page.goto(`${base}/#/receivers/${gated.id}`);
      await expectH1('gated');
      await page.locator('tr.request-row').first().waitFor();
      assert.equal(await page.locator('#rules-test').count(), 0);
      assert.equal(await page.locator('button.request-test').count(), 0);
      // Nor does the link from an entry's page bring it back.
      await page.goto(`${base}/#/receivers/${gated.id}?test_request=${entry.id}`);
      await expectH1('gated');
      await page.locator('tr.request-row').first().waitFor();
      assert.equal(await page.locator('#rules-test').count(), 0);
      await page.goto(`${base}/#/executions?receiver=${gated.id}`);
      await expectH1('Executions');
      await page.locator('tr.exec-row[data-status="failed"]').first().waitFor();
      await page.waitForTimeout(500); // the role is known by now: the buttons would be drawn
      assert.equal(await page.locator('button.exec-cancel, button.exec-rerun').count(), 0);
    } finally {
      await signInAs(ADMIN_TOKEN);
    }
    assert.equal((await server.api('DELETE', `/receivers/${gated.id}`)).status, 204);
  });

  step('delete asks first; afterwards the URL answers 401', async () => {
    await page.goto(`${base}/#/receivers`);
    const row = page.locator(`tr[data-id="${receiverId}"]`);
    await row.waitFor();
    await row.getByRole('button', { name: 'More actions for web-up' }).click();
    await page.getByRole('menuitem', { name: 'Delete' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    assert.match(await dialog.textContent(), /cannot be undone/);
    await screenshot('delete-dialog', { fullPage: false });
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    assert.equal((await server.api('GET', `/receivers/${receiverId}`)).status, 200, 'Cancel deleted nothing');
    await row.getByRole('button', { name: 'More actions for web-up' }).click();
    await page.getByRole('menuitem', { name: 'Delete' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Delete receiver' }).click();
    await page.getByText('No receivers yet.').waitFor();
    assert.equal((await server.api('GET', `/receivers/${receiverId}`)).status, 404);
    assert.equal((await post(triggerUrl)).status, 401);
    await screenshot('after-delete');
    // Its executions stay in the history, under its name.
    await nav('Executions').click();
    await expectH1('Executions');
    const cellOf = page.locator('td[data-label="Receiver"]', { hasText: 'web-up' }).first();
    await cellOf.waitFor();
    assert.match(await cellOf.textContent(), /^web-up\s*deleted$/);
    assert.equal(await page.locator('td[data-label="Receiver"]', { hasText: /#\d+/ }).count(), 0, 'no bare ids');
    await screenshot('executions-deleted-receiver');
  });

  step('executions: "Show older", then newer ones arrive: the list keeps every execution, no gap', async () => {
    assert.equal((await server.api('POST', '/workers/pause')).status, 200);
    const rec = await server.api('POST', '/receivers', {
      name: 'older-gap', driver: 'scale-service', config: { service: 'web', action: 'set', replicas: 1, min: 0, max: 5 },
      limits: { rate_per_minute: 100000, burst: 1000, max_queued: 1000 },
    });
    assert.equal(rec.status, 201, JSON.stringify(rec.body));
    const ids = [];
    const trigger = async (n) => {
      for (let i = 0; i < n; i++) {
        const r = await post(rec.body.trigger_url);
        assert.equal(r.status, 202);
        ids.push((await r.json()).execution_id);
      }
    };
    await trigger(60);
    await page.goto(`${base}/#/executions?receiver=${rec.body.id}`);
    await expectH1('Executions');
    const rows = page.locator('table.table-exec tr.exec-row');
    await waitFor('the newest 50', async () => (await rows.count()) === 50);
    await page.getByRole('button', { name: 'Show older' }).click();
    await waitFor('all 60', async () => (await rows.count()) === 60);
    // 20 more push 20 of the first page's rows out of the newest page: the next poll fetches them.
    await trigger(20);
    await waitFor('all 80, newest first', async () => (await rows.count()) === 80, { timeoutMs: 15000 });
    const shown = (await rows.evaluateAll((trs) => trs.map((tr) => Number(tr.dataset.id))));
    assert.deepEqual(shown, [...ids].sort((a, b) => b - a));
    assert.equal((await server.api('POST', '/workers/resume')).status, 200);
    await waitFor('the queued executions to run', async () => (await server.api('GET', '/workers')).body.queue_depth === 0, { timeoutMs: 60000 });
    assert.equal((await server.api('DELETE', `/receivers/${rec.body.id}`)).status, 204);
  });

  step('sign out forgets the token', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await expectH1('Sign in to tripline');
    await page.getByText('Signed out').waitFor();
    await page.goto(`${base}/#/executions`);
    await expectH1('Sign in to tripline');
    await page.reload();
    await expectH1('Sign in to tripline');
    assert.equal(await h1().count(), 1);
  });

  test('no script errors and no Content-Security-Policy violations', () => {
    assert.deepEqual(problems, []);
    process.stderr.write(`ui test: screenshots in ${ARTIFACTS} (build dir ${BUILD_DIR})\n`);
  });
});
