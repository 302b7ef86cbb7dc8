#!/usr/bin/env node
'use strict';
// hasModulePermission ops/s at 256 calls in flight, median of 5 runs:
//   - @bisman/cache with the near cache (subscribed, so the near cache is trusted)
//   - @bisman/cache without it (nearCacheTtlMs: 0): every check reads Redis
//   - the old layer's way, plain ioredis: GET perm:user:{id} + JSON.parse + check
//     (default client, and with enableAutoPipelining as a stronger baseline)
// Same redis-server (started here on a free loopback port), same run, same 1,000 users.
//
//   node benchmark/permissions.js [--runs 5] [--ms 1500] [--inflight 256] [--users 1000]

const os = require('os');
const Redis = require('ioredis');
const { createCache } = require('..');
let startRedis;
try {
  ({ startRedis } = require('./lib/redis'));
} catch {
  ({ startRedis } = require('../__test__/helpers/redis'));
}

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : dflt;
};
const RUNS = arg('runs', 5);
const MS = arg('ms', 1500);
const INFLIGHT = arg('inflight', 256);
const USERS = arg('users', 1000);

const snapshot = (i) => ({
  role: i % 50 === 0 ? 'SUPER_ADMIN' : 'CLERK',
  modules: ['INVENTORY', 'REPORTS', 'SALES', 'PURCHASING', `M${i % 7}`],
  pages: { 'inventory-items': ['view', 'edit'], dashboard: ['*'], reports: ['view'] },
});

// The old JS layer's check, on ioredis.
function ioredisCheck(client) {
  const SUPER = ['SUPER_ADMIN'];
  return async (userId, module) => {
    const json = await client.get(`perm:user:${userId}`);
    if (json === null) return false;
    const s = JSON.parse(json);
    if (SUPER.includes(s.role)) return true;
    return Array.isArray(s.modules) && (s.modules.includes('*') || s.modules.includes(module));
  };
}

// `check(userId, module)` with INFLIGHT loops in parallel for MS → ops/s.
async function measure(check) {
  let ops = 0;
  let next = 0;
  const until = Date.now() + MS;
  const started = process.hrtime.bigint();
  const lane = async () => {
    while (Date.now() < until) {
      for (let k = 0; k < 64; k++) {
        next = next + 1 === USERS ? 0 : next + 1;
        await check(next, 'SALES');
        ops++;
      }
    }
  };
  await Promise.all(Array.from({ length: INFLIGHT }, lane));
  const secs = Number(process.hrtime.bigint() - started) / 1e9;
  return ops / secs;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (n) => `${Math.round(n / 1000)}k`;

(async () => {
  const server = await startRedis();
  const near = createCache({ url: server.url });
  const far = createCache({ url: server.url, nearCacheTtlMs: 0 });
  const io = new Redis({ port: server.port, host: '127.0.0.1' });
  const ioAuto = new Redis({ port: server.port, host: '127.0.0.1', enableAutoPipelining: true });
  try {
    if (!(await near.pubsub.subscribe())) throw new Error('the near-cache instance did not subscribe');
    await far.pubsub.subscribe();
    for (let i = 0; i < USERS; i++) await near.permissionCache.setUserPermissions(i, snapshot(i));
    const cases = [
      ['@bisman/cache, near cache on', (u, m) => near.permissionCache.hasModulePermission(u, m)],
      ['@bisman/cache, near cache off', (u, m) => far.permissionCache.hasModulePermission(u, m)],
      ['ioredis GET + JSON.parse + check', ioredisCheck(io)],
      ['ioredis (autoPipelining) GET + JSON.parse + check', ioredisCheck(ioAuto)],
    ];
    // Sanity: every implementation gives the same answers.
    for (let i = 0; i < 60; i++) {
      const answers = await Promise.all(cases.map(([, f]) => f(i, i % 2 ? 'SALES' : 'PAYROLL')));
      if (new Set(answers).size !== 1) throw new Error(`implementations disagree for user ${i}: ${answers}`);
    }
    const results = new Map(cases.map(([name]) => [name, []]));
    for (let r = 0; r < RUNS; r++) {
      // Interleaved, so drift on a shared machine hits every case alike.
      for (const [name, f] of cases) {
        await measure(f); // warm-up pass for this run is cheap: MS is short
        results.get(name).push(await measure(f));
      }
    }
    const cpu = os.cpus();
    console.log(`hasModulePermission, ${INFLIGHT} in flight, ${USERS} users, median of ${RUNS} runs of ${MS} ms`);
    console.log(`machine: ${cpu.length} × ${cpu[0] && cpu[0].model}, Node ${process.version}, ${server.version || 'redis-server'} on loopback`);
    const base = median(results.get('ioredis GET + JSON.parse + check'));
    const off = median(results.get('@bisman/cache, near cache off'));
    const out = {};
    for (const [name, xs] of results) {
      const m = median(xs);
      out[name] = Math.round(m);
      console.log(`  ${name.padEnd(52)} ${fmt(m).padStart(7)} ops/s   (runs: ${xs.map(fmt).join(' ')})  ×${(m / base).toFixed(2)} vs ioredis`);
    }
    const on = median(results.get('@bisman/cache, near cache on'));
    console.log(`near-cache speed-up: ×${(on / off).toFixed(2)} over near cache off, ×${(on / base).toFixed(2)} over plain ioredis`);
    console.log(`near cache: ${JSON.stringify(near.permissionCache.nearCacheStats())}`);
    console.log(JSON.stringify({ benchmark: 'permissions', inflight: INFLIGHT, runs: RUNS, ms: MS, opsPerSec: out }));
  } finally {
    io.disconnect();
    ioAuto.disconnect();
    await near.shutdown();
    await far.shutdown();
    await server.stop();
  }
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
