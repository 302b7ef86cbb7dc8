'use strict';
// Where the Express chain's CPU goes: one app (ours|ioredisAuto|ioredis|none) under autocannon
// (100 connections) for `secs`, then req/s and the CPU of every thread of the app, of this
// process (autocannon) and of redis-server, in ticks per second (100 = one core busy).
//
//   node benchmark/express_cpu.js <ours|ioredisAuto|ioredis|none> [secs=6]
//
// Linux only; bounded by time (2 s of warm-up, then `secs`). APP_NODE_FLAGS="--perf-basic-prof"
// passes flags to the app process (for `perf record -p`).

const { startRedis } = require('../__test__/helpers/redis');
const { cpu, perSecond } = require('./lib/cpu');
const { IMPLS, seedApp, startApp, cannon } = require('./lib/express');

const [impl = 'ours', secs = '6'] = process.argv.slice(2);

async function main() {
  if (!IMPLS.includes(impl) || !(Number(secs) > 0 && Number(secs) <= 120)) {
    throw new Error(`usage: node benchmark/express_cpu.js <${IMPLS.join('|')}> [secs, 1–120]`);
  }
  const server = await startRedis();
  try {
    await seedApp(server.url);
    const app = await startApp(impl, server.url, { nodeFlags: process.env.APP_NODE_FLAGS ? process.env.APP_NODE_FLAGS.split(' ') : [] });
    try {
      await cannon(app.port, 2);
      const pids = { app: app.pid, autocannon: process.pid, redis: server.proc.pid };
      const before = Object.fromEntries(Object.entries(pids).map(([k, p]) => [k, cpu(p)]));
      const r = await cannon(app.port, Number(secs));
      const out = Object.entries(pids).map(([k, p]) => `${k} ${JSON.stringify(perSecond(before[k], cpu(p), Number(secs)))}`);
      console.log(`${impl}: ${Math.round(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, non-2xx ${r.non2xx}; CPU in ticks/s: ${out.join('; ')}`);
    } finally {
      await app.stop();
    }
  } finally {
    await server.stop();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
