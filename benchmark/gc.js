'use strict';
// Garbage per call: young-generation collections (V8 scavenges, counted by a PerformanceObserver)
// per 100,000 calls of one operation, 16 in flight, on a fresh redis-server. The young
// generation has a fixed size, so the count grows with the bytes a call allocates.
//
//   node benchmark/gc.js <ours|base|baseNo> <sessionHit|checkLimit> [calls=300000]
//
// base = the ioredis baseline with autopipelining, baseNo = without. Bounded by count (a
// warm-up of 50,000 calls, then `calls`, at most 2,000,000).

const { PerformanceObserver, constants } = require('perf_hooks');
const { createCache, hashToken } = require('..');
const { createBaseline } = require('./baseline');
const { startBenchRedis } = require('./lib/redis');

const [impl = 'ours', what = 'sessionHit', calls = '300000'] = process.argv.slice(2);
const N = Number(calls);
const sessionData = (i) => ({ user_id: i, user: { id: i, name: `user ${i}`, role: 'CLERK' }, tenant: 'acme', roles: ['CLERK'] });

async function main() {
  if (!['ours', 'base', 'baseNo'].includes(impl) || !['sessionHit', 'checkLimit'].includes(what) || !(N > 0 && N <= 2_000_000)) {
    throw new Error('usage: node benchmark/gc.js <ours|base|baseNo> <sessionHit|checkLimit> [calls, at most 2000000]');
  }
  let scavenges = 0;
  const observer = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (e.detail.kind === constants.NODE_PERFORMANCE_GC_MINOR) scavenges++;
  });
  observer.observe({ entryTypes: ['gc'] });
  const server = await startBenchRedis({});
  const rateLimits = { '/bench/search': { max: 1e9, windowSec: 60 } };
  const c = impl === 'ours' ? createCache({ url: server.url, rateLimits }) : createBaseline(server.url, { autoPipelining: impl === 'base', rateLimits });
  if (c.ready) await c.ready();
  const tokens = Array.from({ length: 1000 }, (_, i) => `bench-token-${i}-${'x'.repeat(40)}`);
  for (let i = 0; i < tokens.length; i++) {
    if ((await c.sessionCache.setSession(hashToken(tokens[i]), sessionData(i))) !== true) throw new Error('seed failed');
  }
  const op = what === 'sessionHit' ? (i) => c.sessionCache.getSessionWithFallback(tokens[i % tokens.length]) : (i) => c.rateLimiter.checkLimit(`10.0.${(i >> 8) & 3}.${i & 255}`, '/bench/search');
  const run = async (n) => {
    let next = 0;
    await Promise.all(Array.from({ length: 16 }, async () => {
      while (next < n) await op(next++);
    }));
  };
  await run(50_000);
  await new Promise((r) => setTimeout(r, 100));
  scavenges = 0;
  await run(N);
  await new Promise((r) => setTimeout(r, 100)); // the observer is told asynchronously
  console.log(`${impl} ${what}: ${((scavenges / N) * 1e5).toFixed(1)} young-generation collections per 100,000 calls`);
  observer.disconnect();
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
