'use strict';
// Where the Express chain's CPU goes: one app (ours|ioredisAuto|ioredis|none) under autocannon
// (100 connections) for `secs`, then req/s and the CPU of every thread of the app, of this
// process (autocannon) and of redis-server, in ticks per second (100 = one core busy).
//
//   node benchmark/express_cpu.js <ours|ioredisAuto|ioredis|none> [secs=6]
//
// Linux only; bounded by time (2 s of warm-up, then `secs`). APP_NODE_FLAGS="--perf-basic-prof"
// passes flags to the app process (for `perf record -p`).

const { spawn } = require('child_process');
const path = require('path');
const autocannon = require('autocannon');
const { createCache, hashToken } = require('..');
const { startRedis } = require('../__test__/helpers/redis');
const { cpu, perSecond } = require('./lib/cpu');

const [impl = 'ours', secs = '6'] = process.argv.slice(2);
const TOKEN = `bench-token-7-${'x'.repeat(40)}`;

const IMPLS = ['ours', 'ioredisAuto', 'ioredis', 'none'];

async function main() {
  if (!IMPLS.includes(impl) || !(Number(secs) > 0 && Number(secs) <= 120)) {
    throw new Error(`usage: node benchmark/express_cpu.js <${IMPLS.join('|')}> [secs, 1–120]`);
  }
  const server = await startRedis();
  const seed = createCache({ url: server.url });
  await seed.sessionCache.setSession(hashToken(TOKEN), { user_id: 7, user: { id: 7, name: 'user 7', role: 'CLERK' }, tenant: 'acme', roles: ['CLERK'] });
  await seed.permissionCache.setUserPermissions(7, { role: 'CLERK', modules: ['INVENTORY', 'SALES'], pages: { dashboard: ['*'] } });
  await seed.shutdown();
  const child = spawn(process.execPath, [...(process.env.APP_NODE_FLAGS ? process.env.APP_NODE_FLAGS.split(' ') : []), path.join(__dirname, 'lib', 'express_app.js'), impl, server.url], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const m = /listening (\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`the app exited (${code})`)));
  });
  const run = (duration) => autocannon({ url: `http://127.0.0.1:${port}/api/inventory/items`, connections: 100, duration, headers: { authorization: `Bearer ${TOKEN}` } });
  await run(2);
  const pids = { app: child.pid, autocannon: process.pid, redis: server.proc.pid };
  const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpu(p)]));
  const r = await run(Number(secs));
  const out = Object.entries(pids).map(([k, p]) => `${k} ${JSON.stringify(perSecond(before[k], cpu(p), Number(secs)))}`);
  console.log(`${impl}: ${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}; CPU in ticks/s: ${out.join('; ')}`);
  child.kill('SIGTERM');
  await new Promise((res) => child.once('exit', res));
  await server.stop();
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
