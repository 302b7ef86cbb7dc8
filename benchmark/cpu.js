'use strict';
// Where the CPU goes: one implementation, one operation, N calls in flight for a few seconds on
// a fresh redis-server, then ops/s and the CPU of every thread of this process and of
// redis-server (from /proc, in ticks per second: 100 = one core busy), and the garbage a call
// leaves: young-generation collections (V8 scavenges) per 100,000 calls; the young generation
// has a fixed size, so the count grows with the bytes a call allocates.
//
//   node benchmark/cpu.js <ours|base|baseNo> <sessionHit|setSession|checkLimit|lock> [secs=6] [inFlight=256] [tcp|tls]
//
// `tls`: the measured client connects over TLS (a CA made by the run, as `npm run bench:tls`).
// base = the ioredis baseline with autopipelining, baseNo = without. Linux only. Every loop is
// bounded by time (1 s of warm-up, then `secs`).

const { PerformanceObserver, constants } = require('perf_hooks');
const { createCache, hashToken } = require('..');
const { createBaseline } = require('./baseline');
const { startBenchRedis } = require('./lib/redis');
const { cpu, perSecond } = require('./lib/cpu');

const [impl = 'ours', what = 'sessionHit', secs = '6', inFlight = '256', link = 'tcp'] = process.argv.slice(2);
const N = Number(inFlight);
const TOKENS = 1000;
const rateLimits = { '/bench/search': { max: 1e9, windowSec: 60 } };
const OPS = ['sessionHit', 'setSession', 'checkLimit', 'lock'];
const sessionData = (i) => ({ user_id: i, user: { id: i, name: `user ${i}`, role: 'CLERK' }, tenant: 'acme', roles: ['CLERK'] });

async function main() {
  if (!['ours', 'base', 'baseNo'].includes(impl) || !OPS.includes(what) || !['tcp', 'tls'].includes(link)) {
    throw new Error(`usage: node benchmark/cpu.js <ours|base|baseNo> <${OPS.join('|')}> [secs] [inFlight] [tcp|tls]`);
  }
  const server = await startBenchRedis({ tls: link === 'tls' });
  const url = link === 'tls' ? server.tlsUrl : server.url;
  const tls = link === 'tls' ? { ca: server.ca } : undefined;
  const c = impl === 'ours' ? createCache({ url, tls, rateLimits }) : createBaseline(url, { autoPipelining: impl === 'base', rateLimits, ...(tls ? { tls } : {}) });
  if (c.ready) await c.ready();
  const tokens = Array.from({ length: TOKENS }, (_, i) => `bench-token-${i}-${'x'.repeat(40)}`);
  // Seeded by the implementation measured, in its own key layout: the baseline indexes a
  // user's sessions in a plain set, ours in a sorted set, so a baseline `setSession` over our
  // seed failed every call (WRONGTYPE) and was measured doing less work.
  for (let i = 0; i < TOKENS; i++) {
    if ((await c.sessionCache.setSession(hashToken(tokens[i]), sessionData(i))) !== true) throw new Error('seed failed');
  }
  const hashes = tokens.map(hashToken);
  const data = tokens.map((t, i) => sessionData(i));
  const ops = {
    sessionHit: (i) => c.sessionCache.getSessionWithFallback(tokens[i % TOKENS]),
    setSession: (i) => c.sessionCache.setSession(hashes[i % TOKENS], data[i % TOKENS]),
    checkLimit: (i) => c.rateLimiter.checkLimit(`10.0.${(i >> 8) & 3}.${i & 255}`, '/bench/search'),
    lock: async (i) => {
      const id = i % 100000;
      const l = await c.distributedLock.acquire('bench', id, { ttlSec: 30 });
      if (!l.acquired) throw new Error('lock not acquired');
      await c.distributedLock.release('bench', id, l.owner);
    },
  };
  const op = ops[what];
  let next = 0;
  let done = 0;
  const lanes = async (ms) => {
    const until = Date.now() + ms;
    const lane = async () => {
      while (Date.now() < until) {
        for (let k = 0; k < 16; k++) {
          await op(next++);
          done++;
        }
      }
    };
    await Promise.all(Array.from({ length: N }, lane));
  };
  await lanes(1000); // warm-up
  let scavenges = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
  });
  observer.observe({ entryTypes: ['gc'] });
  const redisPid = server.pid;
  const a = cpu(process.pid);
  const ra = cpu(redisPid);
  const t0 = process.hrtime.bigint();
  done = 0;
  await lanes(Number(secs) * 1000);
  const dt = Number(process.hrtime.bigint() - t0) / 1e9;
  const b = cpu(process.pid);
  const rb = cpu(redisPid);
  await new Promise((r) => setTimeout(r, 100)); // the observer is told asynchronously
  observer.disconnect();
  console.log(
    `${impl} ${what} over ${link}, ${N} in flight: ${Math.round(done / dt / 1000)}k ops/s; CPU in ticks/s (100 = one core): node ${JSON.stringify(perSecond(a, b, dt))}, redis-server ${JSON.stringify(perSecond(ra, rb, dt))}; ${((scavenges / done) * 1e5).toFixed(1)} young-generation collections per 100,000 calls`,
  );
  if (c.shutdown) await c.shutdown();
  else c.close();
  await server.stop();
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
