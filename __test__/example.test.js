'use strict';
// The example ERP (examples/erp-server): `npm run demo` drives it through its tour on memory://
// and on a real redis-server and must exit 0 with every step as expected; `npm start` serves it
// on 127.0.0.1:$PORT and shuts down on SIGTERM.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { spawn } = require('child_process');
const path = require('path');
const { startRedis, freePort, sleep } = require('./helpers/redis');

const ROOT = path.join(__dirname, '..');
const npmCli = process.env.npm_execpath && process.env.npm_execpath.endsWith('.js') ? process.env.npm_execpath : null;

// Runs a command in the repo root → { code, signal, stdout, stderr }; killed after `timeoutMs`.
function run(cmd, args, env, timeoutMs = 60000) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// The load balancer's view of an outage: with Redis killed, liveness and readiness stay 200
// (readiness reports the cache as degraded), a signed-in user is still served (the session and
// permissions come from the database through the loaders), and only the cache's own /health
// says 503. `/` says what the server is.
describe('example ERP: health for load balancers, and the home page', () => {
  it('/health/live and /health/ready stay 200 while Redis is down; requests are served by the fallbacks', async () => {
    const redis = await startRedis();
    const port = await freePort();
    const child = spawn(process.execPath, ['examples/erp-server/server.js'], { cwd: ROOT, env: { ...process.env, PORT: String(port), REDIS_URL: redis.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    const base = `http://127.0.0.1:${port}`;
    const get = async (p, headers = {}) => {
      const r = await fetch(base + p, { headers });
      const text = await r.text();
      return { status: r.status, type: r.headers.get('content-type'), text, json: () => JSON.parse(text) };
    };
    try {
      for (let i = 0; i < 200 && !stdout.includes('listening'); i++) await sleep(50);
      assert.match(stdout, /listening/);
      const home = await get('/');
      assert.equal(home.status, 200);
      assert.match(home.type, /^text\/html/);
      for (const link of ['/health/live', '/health/ready', '/health', '/metrics', '/api/auth/login']) assert.ok(home.text.includes(link), `the home page names ${link}`);
      const ready = await get('/health/ready');
      assert.equal(ready.status, 200);
      assert.equal(ready.json().status, 'ok');
      assert.equal(ready.json().cache.pong, 'PONG');

      const login = await fetch(`${base}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'admin-pass' }) });
      assert.equal(login.status, 200);
      const { token } = await login.json();
      const auth = { authorization: `Bearer ${token}` };
      assert.equal((await get('/api/inventory/items', auth)).status, 200);

      await redis.kill();
      const live = await get('/health/live');
      assert.equal(live.status, 200);
      assert.deepEqual(live.json(), { status: 'ok' });
      const down = await get('/health/ready');
      assert.equal(down.status, 200, down.text);
      assert.equal(down.json().status, 'degraded');
      assert.equal(down.json().cache.enabled, false);
      assert.equal((await get('/health')).status, 503);
      // served by the fallbacks: the session and the permission check come from the database
      const me = await get('/api/me', auth);
      assert.equal(me.status, 200, me.text);
      assert.equal(me.json().user.id, 1);
      assert.equal((await get('/api/inventory/items', auth)).status, 200);
      assert.equal((await get('/api/inventory/items')).status, 401);
    } finally {
      child.kill('SIGTERM');
      await redis.stop();
    }
    const { code, signal } = await Promise.race([exited, sleep(10000).then(() => ({ code: 'timeout' }))]);
    assert.equal(code, 0, `server exit: ${code} ${signal}`);
  });
});

// `npm run demo` (through npm when the test runs under npm, else the script npm would run).
function runDemo(env) {
  const cleanEnv = { REDIS_URL: '', ...env };
  return npmCli ? run(process.execPath, [npmCli, 'run', '--silent', 'demo'], cleanEnv) : run(process.execPath, ['examples/erp-server/demo.js'], cleanEnv);
}

function demoResult(out) {
  const line = out.stdout.split('\n').find((l) => l.startsWith('DEMO RESULT '));
  assert.ok(line, `no DEMO RESULT line in:\n${out.stdout}\n${out.stderr}`);
  return JSON.parse(line.slice('DEMO RESULT '.length));
}

function checkTour(r, out) {
  assert.equal(out.code, 0, `demo exited ${out.code} ${out.signal}:\n${out.stdout}\n${out.stderr}`);
  assert.equal(r.ok, true);
  const status = (name) => {
    const s = r.steps.find((x) => x.name === name);
    assert.ok(s, `no step ${name}`);
    return s.status;
  };
  assert.equal(status('login admin (1st login from this IP)'), 200);
  assert.equal(status('login (6th within the minute)'), 429);
  assert.deepEqual(status('two concurrent approvals of #101'), [200, 409]);
  assert.equal(status('hub opens sales report (no REPORTS)'), 403);
  assert.equal(status('hub opens sales report (granted)'), 200);
  assert.equal(status('hub opens sales report (denied again)'), 403);
  assert.equal(status('the old token after logout'), 401);
  assert.equal(status('health'), 200);
  // The session came from the database once, then from the cache.
  assert.match(r.steps.find((x) => x.name === 'session, first use').note, /source: database/);
  assert.match(r.steps.find((x) => x.name === 'session, second use').note, /source: cache/);
  // Each role change reloaded the hub's permissions from the database (no stale grant/denial).
  assert.ok(r.queries.userPermissions >= 3, JSON.stringify(r.queries));
  // /metrics is Prometheus text with the tour's decisions in it.
  assert.match(r.metrics, /^bisman_cache_ratelimit_decisions_total\{endpoint="\/api\/auth\/login",decision="blocked"\} 1$/m);
  assert.match(r.metrics, /^bisman_cache_ratelimit_decisions_total\{endpoint="\/api\/auth\/login",decision="allowed"\} 5$/m);
  assert.match(r.metrics, /^bisman_cache_lock_acquired_total [23]$/m);
  assert.match(r.metrics, /^bisman_cache_enabled 1$/m);
}

describe('example ERP: npm run demo', () => {
  let redis;
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    await redis.stop();
  });

  it('runs its tour on memory:// and exits 0 by itself', async () => {
    const out = await runDemo({});
    const r = demoResult(out);
    assert.equal(r.backend, 'memory');
    checkTour(r, out);
  });

  it('runs its tour on a real redis-server (REDIS_URL) and leaves only its own prefixed keys', async () => {
    const out = await runDemo({ REDIS_URL: redis.url });
    const r = demoResult(out);
    assert.equal(r.backend, 'redis');
    checkTour(r, out);
    const keys = await redis.client().keys('*');
    assert.ok(keys.length > 0);
    for (const k of keys) assert.match(k, /^erp-demo:/);
  });
});

describe('example ERP: npm start', () => {
  it('serves on 127.0.0.1:$PORT on memory:// without REDIS_URL, and stops on SIGTERM', async () => {
    const port = await freePort();
    const child = spawn(process.execPath, ['examples/erp-server/server.js'], { cwd: ROOT, env: { ...process.env, PORT: String(port), REDIS_URL: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d) => (stdout += d));
    const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
    try {
      for (let i = 0; i < 200 && !stdout.includes('listening'); i++) await sleep(50);
      assert.match(stdout, new RegExp(`listening on http://127\\.0\\.0\\.1:${port} \\(cache: memory://erp\\)`));
      const health = await fetch(`http://127.0.0.1:${port}/health`);
      assert.equal(health.status, 200);
      const h = await health.json();
      assert.equal(h.pong, 'PONG');
      assert.equal(h.enabled, true);
      const login = await fetch(`http://127.0.0.1:${port}/api/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'admin-pass' }) });
      assert.equal(login.status, 200);
      assert.equal(login.headers.get('ratelimit-limit'), '5');
      const m = await fetch(`http://127.0.0.1:${port}/metrics`);
      assert.match(m.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    } finally {
      child.kill('SIGTERM');
    }
    const { code, signal } = await Promise.race([exited, sleep(10000).then(() => ({ code: 'timeout' }))]);
    assert.equal(code, 0, `server exit: ${code} ${signal}`);
    assert.match(stdout, /closed/);
  });
});
