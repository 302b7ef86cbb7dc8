'use strict';
/* global document -- the functions given to page.waitForFunction run in the browser */
// The operator's page in a real browser: Debian's Chromium driven by playwright-core, against
// the example ERP (examples/erp-server) on a real redis-server. An admin signs in through the
// example's form, sees hub's session appear, revokes it (hub's token is then refused), looks up
// an address blocked on the login limit, resets it from the page and sees the block clear.
// The page must run under its CSP without a console error. Screenshots go to test-artifacts/.
// `npm run test:browser`; needs /usr/bin/chromium (CHROMIUM_PATH overrides).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');
const { createCache, hashToken } = require('../..');
const { startRedis, freePort, sleep } = require('../helpers/redis');

const ROOT = path.join(__dirname, '..', '..');
const ARTIFACTS = path.join(ROOT, 'test-artifacts');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const STEP_MS = 10000; // each wait in the browser
const KEY_PREFIX = 'erp:'; // the example's default

describe('operator page in Chromium, on the example ERP and a real redis-server', { timeout: 120000 }, () => {
  let redis;
  let server;
  let serverExited;
  let output = '';
  let base;
  let browser;
  let cache; // the test's own client of the same Redis, as another app node would be

  before(async () => {
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get install -y chromium (as root)`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    redis = await startRedis();
    const port = await freePort();
    base = `http://127.0.0.1:${port}`;
    server = spawn(process.execPath, ['examples/erp-server/server.js'], {
      cwd: ROOT,
      env: { ...process.env, PORT: String(port), REDIS_URL: redis.url, KEY_PREFIX },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    server.stdout.on('data', (d) => (output += d));
    server.stderr.on('data', (d) => (output += d));
    serverExited = new Promise((resolve) => server.on('close', resolve));
    for (let i = 0; i < 200 && !output.includes('listening'); i++) await sleep(50);
    assert.match(output, /listening/, output);
    cache = createCache({ url: redis.url, keyPrefix: KEY_PREFIX });
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'], timeout: 30000 });
  });

  after(async () => {
    if (browser) await browser.close().catch(() => {});
    if (cache) await cache.shutdown();
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      const t = setTimeout(() => server.kill('SIGKILL'), 5000);
      await serverExited;
      clearTimeout(t);
    }
    if (redis) await redis.stop();
  });

  it("signs in, revokes hub's session (its token is then refused), resets a blocked address", async () => {
    // hub signs in (through the API, like the ERP's front end) and is served.
    const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'hub', password: 'hub-pass' }) });
    assert.equal(login.status, 200);
    const { token: hubToken, user: hub } = await login.json();
    const me = (token) => fetch(`${base}/api/me`, { headers: { authorization: `Bearer ${token}` } }).then((r) => r.status);
    assert.equal(await me(hubToken), 200);
    const hubHash = hashToken(hubToken);

    const context = await browser.newContext();
    const page = await context.newPage();
    page.setDefaultTimeout(STEP_MS);
    const problems = [];
    // Chromium's own request for /favicon.ico (the example has none) is not the page's.
    const isFavicon = (url) => new URL(url).pathname === '/favicon.ico';
    page.on('console', (m) => {
      if (m.type() === 'error' && !isFavicon(m.location().url || base)) problems.push(`console: ${m.text()} (${m.location().url})`);
    });
    page.on('response', (r) => {
      if (r.status() >= 400 && !isFavicon(r.url())) problems.push(`HTTP ${r.status()} ${r.url()}`);
    });
    page.on('pageerror', (err) => problems.push(`page: ${err.message}`));
    const shot = (name) => page.screenshot({ path: path.join(ARTIFACTS, `admin-${name}.png`), fullPage: true });
    try {
      // Without a session the browser is sent to the example's sign-in form.
      await page.goto(`${base}/admin`);
      assert.match(page.url(), /\/admin\/login$/);
      await page.fill('input[name=username]', 'admin');
      await page.fill('input[name=password]', 'admin-pass');
      await Promise.all([page.waitForURL(`${base}/admin`), page.click('button[type=submit]')]);
      const cookies = await context.cookies();
      const cookie = cookies.find((c) => c.name === 'erp_admin');
      assert.ok(cookie && cookie.httpOnly && cookie.sameSite === 'Strict' && cookie.path === '/admin', JSON.stringify(cookies));

      // Live figures from the event stream.
      await page.waitForFunction(() => document.getElementById('circuit').textContent === 'closed');
      await page.waitForFunction(() => /^PONG in /.test(document.getElementById('ping').textContent));
      await page.waitForFunction(() => document.querySelectorAll('#rates tbody tr').length === 5);
      // Rates need two ticks: the page keeps updating.
      await page.waitForFunction(() => /^\d+\.\d$/.test(document.querySelector('#rates tr[data-service="session"] td:nth-child(2)').textContent));
      assert.match(await page.textContent('#live'), /^live/);
      await shot('1-live');

      // hub's session appears; revoke it.
      await page.fill('#sessions-form input[name=userId]', String(hub.id));
      await page.click('#sessions-form button');
      const row = page.locator(`#sessions-table tr[data-token-hash="${hubHash}"]`);
      await row.waitFor();
      await shot('2-sessions');
      await row.locator('button.revoke').click();
      await page.waitForFunction(() => document.getElementById('message').textContent === 'session revoked');
      await row.waitFor({ state: 'detached' });
      await shot('3-revoked');
      assert.equal(await me(hubToken), 401, "hub's old token is refused");
      assert.equal(await cache.sessionCache.getSession(hubHash), null);

      // An address over the login limit. The example leaves Express's `trust proxy` off (req.ip
      // is the socket address), so the block is made the way another app node would count it:
      // checkLimit on the same Redis for a documentation address.
      const ip = '203.0.113.77';
      let last;
      for (let i = 0; i < 10; i++) {
        last = await cache.rateLimiter.checkLimit(ip, '/api/auth/login');
        if (!last.allowed) break;
      }
      assert.equal(last.allowed, false, 'the address is blocked');
      await page.fill('#limits-form input[name=ip]', ip);
      await page.click('#limits-form button');
      const limitRow = page.locator('#limits-table tr[data-endpoint="/api/auth/login"]');
      await limitRow.waitFor();
      assert.equal(await limitRow.locator('td.bad').textContent(), String(last.total), 'shown as over its limit');
      await shot('4-blocked');
      await limitRow.locator('button.reset').click();
      await page.waitForFunction(() => /^no counters for /.test(document.getElementById('limits-status')?.textContent || ''));
      await shot('5-reset');
      assert.deepEqual(await cache.rateLimiter.getIpStatus(ip), {}, 'the counter is gone from Redis');

      // A lock held by another node, looked up from the page.
      const lock = await cache.distributedLock.acquire('approval', 101, { ttlSec: 30 });
      assert.equal(lock.acquired, true);
      await page.fill('#locks-form input[name=resource]', 'approval');
      await page.fill('#locks-form input[name=id]', '101');
      await page.click('#locks-form button');
      await page.waitForFunction((owner) => (document.getElementById('lock-status')?.textContent || '').startsWith(`held by ${owner}`), lock.owner);
      await cache.distributedLock.release('approval', 101, lock.owner);

      assert.deepEqual(problems, [], 'no console error, no CSP violation');
      console.log(`# screenshots in ${path.relative(ROOT, ARTIFACTS)}/admin-*.png`);
    } catch (err) {
      await shot('failure').catch(() => {});
      throw err;
    } finally {
      await context.close();
    }
  });
});
