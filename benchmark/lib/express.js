'use strict';
// The Express app of the benchmarks (benchmark/lib/express_app.js) in its own process, and
// autocannon against it: shared by `npm run bench` (benchmark/suite.js) and
// benchmark/express_cpu.js.

const path = require('path');
const { spawn } = require('child_process');
const autocannon = require('autocannon');
const { createCache, hashToken } = require('../..');

const IMPLS = ['ours', 'ioredisAuto', 'ioredis', 'none'];
const TOKEN = `bench-token-7-${'x'.repeat(40)}`;

// The data the chain reads (snapshots live 5 minutes: write them afresh before every round).
async function seedApp(url) {
  const c = createCache({ url });
  try {
    await c.sessionCache.setSession(hashToken(TOKEN), { user_id: 7, user: { id: 7, name: 'user 7', role: 'CLERK' }, tenant: 'acme', roles: ['CLERK'] });
    await c.permissionCache.setUserPermissions(7, { role: 'CLERK', modules: ['INVENTORY', 'REPORTS', 'SALES', 'PURCHASING', 'M0'], pages: { 'inventory-items': ['view', 'edit'], dashboard: ['*'], reports: ['view'] } });
  } finally {
    await c.shutdown();
  }
}

// → { port, pid, stop() } once the app prints `listening <port>` (15 s at most).
// `nodeFlags`: flags for the app's node process (e.g. --perf-basic-prof).
function startApp(impl, url, { nodeFlags = [] } = {}) {
  if (!IMPLS.includes(impl)) throw new Error(`unknown app ${impl} (${IMPLS.join('|')})`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeFlags, path.join(__dirname, 'express_app.js'), impl, url], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the ${impl} app did not start within 15 s`));
    }, 15000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({
          port: Number(m[1]),
          pid: child.pid,
          stop: () => new Promise((r) => (child.exitCode !== null || child.signalCode !== null ? r() : (child.once('exit', r), child.kill('SIGTERM')))),
        });
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the ${impl} app exited (${code})`));
    });
  });
}

// autocannon, 100 connections, `secs` seconds → the raw autocannon result.
function cannon(port, secs) {
  return autocannon({
    url: `http://127.0.0.1:${port}/api/inventory/items`,
    connections: 100,
    duration: secs,
    headers: { authorization: `Bearer ${TOKEN}` },
  });
}

module.exports = { IMPLS, TOKEN, seedApp, startApp, cannon };
