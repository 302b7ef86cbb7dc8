'use strict';
// express-rate-limit v8 stores compared on one fresh redis-server: this package's
// `@bisman/cache/express-rate-limit` against `rate-limit-redis` on ioredis. Each row calls
// store.increment(key) directly (no HTTP: the store is what differs), `--in-flight` at a time
// over `--keys` client keys, `--runs` times alternating the two stores; medians are printed.
// Bounded: each run stops after `--calls` increments or MAX_RUN_MS, whichever comes first.
//
//   node benchmark/erl_store.js [--calls=20000] [--runs=3] [--in-flight=64] [--keys=1000]

const { performance } = require('perf_hooks');
const Redis = require('ioredis');
const { RedisStore } = require('rate-limit-redis');
const { createCache } = require('..');
const { RateLimitStore } = require('../express-rate-limit');
const { startRedis } = require('./lib/redis.js');

const MAX_RUN_MS = 15_000;
const arg = (name, dflt) => {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? Number(a.slice(name.length + 3)) : dflt;
};
const CALLS = arg('calls', 20000);
const RUNS = arg('runs', 3);
const IN_FLIGHT = arg('in-flight', 64);
const KEYS = arg('keys', 1000);

// `calls` increments, IN_FLIGHT at a time → ops per second (or what got done in MAX_RUN_MS).
async function run(store) {
  let sent = 0;
  let done = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (sent < CALLS && performance.now() - t0 < MAX_RUN_MS) {
      const key = `client-${sent++ % KEYS}`;
      await store.increment(key);
      done++;
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return done / ((performance.now() - t0) / 1000);
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function main() {
  const server = await startRedis();
  const ioredis = new Redis(server.url);
  const cache = createCache({ url: server.url });
  const ours = new RateLimitStore({ cache, prefix: 'bench' });
  const theirs = new RedisStore({ sendCommand: (...args) => ioredis.call(...args), prefix: 'rl-bench:' });
  const options = { windowMs: 60_000, limit: 1_000_000 };
  ours.init(options);
  theirs.init(options);
  const rows = { '@bisman/cache': [], 'rate-limit-redis + ioredis': [] };
  try {
    for (let r = 0; r < RUNS; r++) {
      rows['@bisman/cache'].push(await run(ours));
      rows['rate-limit-redis + ioredis'].push(await run(theirs));
    }
  } finally {
    ioredis.disconnect();
    await cache.shutdown();
    await server.stop();
  }
  console.log(`express-rate-limit store.increment, ${CALLS} calls × ${RUNS} runs, ${IN_FLIGHT} in flight, ${KEYS} keys (median ops/s):`);
  for (const [name, xs] of Object.entries(rows)) console.log(`  ${name.padEnd(28)} ${Math.round(median(xs)).toLocaleString('en-US')} ops/s  (runs: ${xs.map(Math.round).join(', ')})`);
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
