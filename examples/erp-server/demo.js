'use strict';
// `npm run demo`: starts the example ERP on a free loopback port, drives it through a scripted
// tour, prints what happened and exits (code 0 when every step answered as expected, else 1).
// Back end: REDIS_URL if set (under a fresh key prefix, so runs never share counters), else
// the embedded memory:// store.
const crypto = require('crypto');
const { createApp } = require('./app');

const url = process.env.REDIS_URL || `memory://demo-${crypto.randomBytes(4).toString('hex')}`;
const keyPrefix = `erp-demo:${process.pid}-${crypto.randomBytes(4).toString('hex')}:`;
const { app, db, cache, backend } = createApp({ url, keyPrefix, approvalWorkMs: 500 });

const steps = [];
let base;

async function call(method, path, { token, body } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(10000) });
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // /metrics is text
  }
  return { status: res.status, headers: res.headers, json, text };
}

// One step of the tour: runs the request, checks the expected status, prints one line.
async function step(name, expect, method, path, opts, describe = () => '') {
  const r = await call(method, path, opts);
  const ok = Array.isArray(expect) ? expect.includes(r.status) : r.status === expect;
  const note = describe(r);
  steps.push({ name, method, path, status: r.status, expected: expect, ok, note });
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name.padEnd(44)} ${method} ${path} → ${r.status}${note ? `  ${note}` : ''}`);
  return r;
}

async function tour() {
  const login = (username, password) => ({ body: { username, password } });
  console.log(`\nexample ERP on ${base} (cache: ${backend}, key prefix ${keyPrefix})\n`);

  await step('health', 200, 'GET', '/health', {}, (r) => `pong=${r.json.pong} ${r.json.ms} ms`);
  const admin = (await step('login admin (1st login from this IP)', 200, 'POST', '/api/auth/login', login('admin', 'admin-pass'), (r) => `role ${r.json.user.role}`)).json.token;
  const hub = (await step('login hub (2nd)', 200, 'POST', '/api/auth/login', login('hub', 'hub-pass'), (r) => `role ${r.json.user.role}`)).json.token;

  await step('session, first use', 200, 'GET', '/api/me', { token: hub }, (r) => `source: ${r.json.sessionSource}`);
  await step('session, second use', 200, 'GET', '/api/me', { token: hub }, (r) => `source: ${r.json.sessionSource}`);
  await step('no token', 401, 'GET', '/api/me', {});
  await step('hub lists inventory (module INVENTORY)', 200, 'GET', '/api/inventory/items', { token: hub }, (r) => `${r.json.items.length} items`);
  await step('hub edits an item (page action denied)', 403, 'PUT', '/api/inventory/items/1', { token: hub, body: { qty: 1 } });
  await step('admin edits an item (SUPER_ADMIN)', 200, 'PUT', '/api/inventory/items/1', { token: admin, body: { qty: 1100 } }, (r) => `qty ${r.json.item.qty}`);

  for (const n of ['3rd', '4th', '5th']) {
    await step(`login with a wrong password (${n})`, 401, 'POST', '/api/auth/login', login('hub', 'wrong'), (r) => `RateLimit-Remaining ${r.headers.get('ratelimit-remaining')}`);
  }
  await step('login (6th within the minute)', 429, 'POST', '/api/auth/login', login('hub', 'hub-pass'), (r) => `Retry-After ${r.headers.get('retry-after')} s, ${JSON.stringify(r.json)}`);

  // Two approvals of the same document at once: one runs under the lock, the other is refused.
  const both = await Promise.all([call('POST', '/api/approvals/101/approve', { token: hub }), call('POST', '/api/approvals/101/approve', { token: admin })]);
  const statuses = both.map((r) => r.status).sort();
  const granted = both.find((r) => r.status === 200);
  const refused = both.find((r) => r.status === 409);
  const okLock = statuses[0] === 200 && statuses[1] === 409;
  steps.push({ name: 'two concurrent approvals of #101', method: 'POST', path: '/api/approvals/101/approve', status: statuses, expected: [200, 409], ok: okLock });
  console.log(
    `${okLock ? 'ok  ' : 'FAIL'} ${'two concurrent approvals of #101'.padEnd(44)} POST /api/approvals/101/approve ×2 → ${statuses.join(', ')}`
    + (granted && refused ? `  fence ${granted.json.fence}; other: ${refused.json.error}` : ''),
  );
  await step('lock is free again', 200, 'POST', '/api/approvals/102/approve', { token: hub }, (r) => `fence ${r.json.fence}`);

  await step('hub opens sales report (no REPORTS)', 403, 'GET', '/api/reports/sales', { token: hub });
  await step('admin grants REPORTS to HUB_INCHARGE', 200, 'PUT', '/api/roles/2/permissions', { token: admin, body: { modules: ['INVENTORY', 'APPROVALS', 'REPORTS'], pages: { 'inventory-items': ['view'] } } }, (r) => `${r.json.usersInvalidated} user snapshot(s) invalidated`);
  await step('hub opens sales report (granted)', 200, 'GET', '/api/reports/sales', { token: hub });
  await step('admin revokes REPORTS', 200, 'PUT', '/api/roles/2/permissions', { token: admin, body: { modules: ['INVENTORY', 'APPROVALS'], pages: { 'inventory-items': ['view'] } } });
  await step('hub opens sales report (denied again)', 403, 'GET', '/api/reports/sales', { token: hub });
  await step('hub logs out', 200, 'POST', '/api/auth/logout', { token: hub });
  await step('the old token after logout', 401, 'GET', '/api/me', { token: hub });

  const m = await step('metrics', 200, 'GET', '/metrics', {}, (r) => `${r.text.split('\n').filter((l) => l && !l.startsWith('#')).length} samples`);
  const show = m.text.split('\n').filter((l) => /^bisman_cache_(hits_total|fallbacks_total)\{service="(session|permission)"\}|^bisman_cache_ratelimit_decisions_total\{endpoint="\/api\/auth\/login"|^bisman_cache_lock_(acquired|busy)_total|^bisman_cache_pubsub_messages_total|^bisman_cache_enabled/.test(l));
  for (const l of show) console.log(`       ${l}`);
  return m.text;
}

async function main() {
  const server = await new Promise((resolve, reject) => {
    const s = app.listen(0, '127.0.0.1', () => resolve(s));
    s.on('error', reject);
  });
  base = `http://127.0.0.1:${server.address().port}`;
  let metricsText = '';
  let failure = null;
  try {
    metricsText = await tour();
  } catch (err) {
    failure = err;
    console.error(`\ndemo stopped: ${err.stack || err}`);
  }
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await cache.shutdown();
  const ok = failure === null && steps.every((s) => s.ok);
  console.log(`\n${steps.filter((s) => s.ok).length}/${steps.length} steps as expected; database queries: ${JSON.stringify(db.queries)}`);
  console.log(`DEMO RESULT ${JSON.stringify({ ok, backend: url.startsWith('memory://') ? 'memory' : 'redis', steps, queries: db.queries, metrics: metricsText })}`);
  process.exitCode = ok ? 0 : 1;
}

main();
