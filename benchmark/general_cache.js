#!/usr/bin/env node
'use strict';
// The general cache's read path against the ioredis baseline, on one fresh redis-server:
//   ioredis     GET + JSON.parse (auto-pipelining on)
//   wrap        cache.wrap of a cached key (one GET, decode)
//   wrap near   cache.wrap with `near: true` (answered from process memory)
// Each row runs `--ms` per round with `--in-flight` calls outstanding; rounds alternate between
// the rows so machine noise hits all alike; the median of `--rounds` rounds is printed.
//
//   node benchmark/general_cache.js [--rounds 3] [--ms 500] [--in-flight 64]

const { performance } = require('perf_hooks');
const Redis = require('ioredis');
const { createCache } = require('..');
const { startBenchRedis } = require('./lib/redis');

const argv = process.argv.slice(2);
const arg = (name, dflt) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const ROUNDS = Math.min(arg('rounds', 3), 20);
const ROUND_MS = Math.min(arg('ms', 500), 10_000);
const IN_FLIGHT = Math.min(arg('in-flight', 64), 1024);
const MAX_CALLS = 5_000_000; // per round, whatever the speed

const VALUE = { id: 42, name: 'dashboard', rows: Array.from({ length: 20 }, (_, i) => ({ i, v: `row-${i}` })) };

// Calls `fn` with IN_FLIGHT outstanding for ROUND_MS (at most MAX_CALLS) → ops/s.
async function measure(fn) {
  const end = performance.now() + ROUND_MS;
  let done = 0;
  let started = 0;
  const worker = async () => {
    while (performance.now() < end && started < MAX_CALLS) {
      started++;
      await fn();
      done++;
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return (done * 1000) / (performance.now() - t0);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const server = await startBenchRedis();
  const io = new Redis(server.port, '127.0.0.1', { enableAutoPipelining: true, lazyConnect: false });
  const cache = createCache({ url: server.url });
  try {
    await cache.pubsub.subscribe(); // the near cache is trusted only while subscribed
    await io.set('baseline:k', JSON.stringify(VALUE), 'EX', 600);
    const loader = async () => VALUE;
    const opts = { ttlSec: 600 };
    const nearOpts = { ttlSec: 600, near: { ttlMs: 600_000 } };
    await cache.wrap('bench:k', loader, opts);
    await cache.wrap('bench:near', loader, nearOpts);
    const warmCalls = cache.stats().cache.loaderCalls;
    const rows = [
      ['ioredis GET+JSON.parse', async () => JSON.parse(await io.get('baseline:k'))],
      ['wrap (hit)', () => cache.wrap('bench:k', loader, opts)],
      ['wrap near (hit)', () => cache.wrap('bench:near', loader, nearOpts)],
    ];
    const results = new Map(rows.map(([name]) => [name, []]));
    for (let r = 0; r < ROUNDS; r++) {
      for (const [name, fn] of rows) results.get(name).push(await measure(fn));
    }
    const base = median(results.get(rows[0][0]));
    console.log(`general cache read path, ${IN_FLIGHT} in flight, median of ${ROUNDS} × ${ROUND_MS} ms`);
    for (const [name] of rows) {
      const m = median(results.get(name));
      console.log(`${name.padEnd(24)} ${Math.round(m).toString().padStart(10)} ops/s   ×${(m / base).toFixed(2)}`);
    }
    const extra = cache.stats().cache.loaderCalls - warmCalls;
    if (extra !== 0) throw new Error(`the loader ran ${extra} more times: not a hit benchmark`);
  } finally {
    io.disconnect();
    await cache.shutdown();
    await server.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
