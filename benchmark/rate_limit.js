'use strict';
// checkLimit throughput: @bisman/cache against a plain-JS ioredis implementation of the same
// call (the same Lua script, auto-pipelined), on the same redis-server, in the same run; and
// the blocked path: clients already over their limit, answered by the in-process block cache.
//
//   node benchmark/rate_limit.js [seconds per round = 3] [calls in flight = 256] [rounds = 5]
//
// Each round keeps `inFlight` calls outstanding for the given time and reports calls/s; the
// rounds alternate so machine noise hits every series alike; the median round is reported.

const fs = require('fs');
const path = require('path');
const Redis = require('ioredis');
const { createCache } = require('..');
const { startRedis } = require('../__test__/helpers/redis');

const seconds = Number(process.argv[2] || 3);
const inFlight = Number(process.argv[3] || 256);
const rounds = Number(process.argv[4] || 5);
const IPS = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
const ENDPOINT = '/api/search';
// Clients over their limit for the whole run (5 per hour).
const BLOCKED = '/bench/blocked';
// High enough that the checkLimit series always goes to the store (never to the block cache).
const SEARCH_MAX = 1e9;
const rateLimits = { [ENDPOINT]: { max: SEARCH_MAX, windowSec: 60 }, [BLOCKED]: { max: 5, windowSec: 3600 } };

// The plain-JS baseline: what an ioredis rate limiter doing it right (one script) costs.
function ioredisLimiter(url) {
  const client = new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  client.defineCommand('rateHit', {
    numberOfKeys: 2,
    lua: fs.readFileSync(path.join(__dirname, 'baseline', 'rate_hit.lua'), 'utf8'),
  });
  return {
    async checkLimit(ip, endpoint) {
      const key = `rate:${ip}:${endpoint.replace(/\//g, '_')}`;
      const { max, windowSec } = rateLimits[endpoint]; // the limits the caches below use
      const [total, left] = await client.rateHit(key, `rate-ip:${ip}`, windowSec * 1000, endpoint, max);
      return { allowed: total <= max, remaining: Math.max(0, max - total), resetIn: Math.ceil(left / 1000), total, limit: max };
    },
    close: () => client.disconnect(),
  };
}

async function round(limiter, endpoint = ENDPOINT, expectBlocked = false) {
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  let i = 0;
  async function worker() {
    while (Date.now() < deadline) {
      const r = await limiter.checkLimit(IPS[i++ % IPS.length], endpoint);
      if (r.allowed === expectBlocked) throw new Error('bad result');
      done++;
    }
  }
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: inFlight }, worker));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return done / s;
}

(async () => {
  const server = await startRedis();
  const caches = [createCache({ url: server.url, rateLimits }), createCache({ url: 'memory://bench', rateLimits })];
  const [native, memory] = caches.map((c) => c.rateLimiter);
  const plain = ioredisLimiter(server.url);
  // Every client over its limit on BLOCKED: from then on the block cache answers.
  for (const ip of IPS) for (let k = 0; k < 6; k++) await native.checkLimit(ip, BLOCKED);
  const series = {
    'checkLimit  @bisman/cache (redis)': () => round(native),
    'checkLimit  ioredis 5 + autopipelining (same script)': () => round(plain),
    'checkLimit  @bisman/cache (memory://)': () => round(memory),
    'blocked     @bisman/cache (redis, block cache)': () => round(native, BLOCKED, true),
    'blocked     ioredis 5 + autopipelining (same script)': () => round(plain, BLOCKED, true),
  };
  const results = Object.fromEntries(Object.keys(series).map((k) => [k, []]));
  await round(native); // warm-up
  await round(plain);
  for (let r = 0; r < rounds; r++) {
    for (const [name, run] of Object.entries(series)) results[name].push(await run());
  }
  const redisCalls = caches[0].stats().rateLimit.blockCacheHits;
  console.log(`rateLimiter, ${inFlight} calls in flight, ${seconds} s per round, median of ${rounds} rounds (node ${process.version}, ${require('os').cpus().length} cores)`);
  for (const [name, xs] of Object.entries(results)) {
    const sorted = [...xs].sort((a, b) => a - b);
    console.log(`${name.padEnd(56)} median ${Math.round(sorted[Math.floor(sorted.length / 2)]).toLocaleString('en')} calls/s  (rounds: ${xs.map((x) => Math.round(x)).join(', ')})`);
  }
  console.log(`(blocked calls answered by the block cache, no Redis command: ${redisCalls.toLocaleString('en')})`);
  plain.close();
  for (const c of caches) await c.shutdown();
  await server.stop();
  process.exit(0);
})();
