'use strict';
// checkLimit throughput: @bisman/cache against a plain-JS ioredis implementation of the same
// call (the same Lua script, auto-pipelined), on the same redis-server, in the same run.
//
//   node benchmark/rate_limit.js [seconds per round = 3] [calls in flight = 256]
//
// Each round keeps `inFlight` calls outstanding for the given time and reports calls/s; the
// rounds alternate so machine noise hits both sides alike.

const fs = require('fs');
const path = require('path');
const Redis = require('ioredis');
const { createCache } = require('..');
const { startRedis } = require('../__test__/helpers/redis');

const seconds = Number(process.argv[2] || 3);
const inFlight = Number(process.argv[3] || 256);
const IPS = Array.from({ length: 1000 }, (_, i) => `10.0.${i >> 8}.${i & 255}`);
const ENDPOINT = '/api/search';

// The plain-JS baseline: what an ioredis rate limiter doing it right (one script) costs.
function ioredisLimiter(url) {
  const client = new Redis(url, { enableAutoPipelining: true, maxRetriesPerRequest: 1 });
  client.defineCommand('rateHit', {
    numberOfKeys: 2,
    lua: fs.readFileSync(path.join(__dirname, '..', 'src', 'store', 'scripts', 'rate_hit.lua'), 'utf8'),
  });
  return {
    async checkLimit(ip, endpoint) {
      const key = `rate:${ip}:${endpoint.replace(/\//g, '_')}`;
      const [total, left] = await client.rateHit(key, `rate-ip:${ip}`, 60000, endpoint, 100);
      return { allowed: total <= 100, remaining: Math.max(0, 100 - total), resetIn: Math.ceil(left / 1000), total, limit: 100 };
    },
    close: () => client.disconnect(),
  };
}

async function round(limiter) {
  const deadline = Date.now() + seconds * 1000;
  let done = 0;
  let i = 0;
  async function worker() {
    while (Date.now() < deadline) {
      const r = await limiter.checkLimit(IPS[i++ % IPS.length], ENDPOINT);
      if (typeof r.allowed !== 'boolean') throw new Error('bad result');
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
  const caches = [createCache({ url: server.url }), createCache({ url: 'memory://bench' })];
  const [native, memory] = caches.map((c) => c.rateLimiter);
  const plain = ioredisLimiter(server.url);
  const results = { '@bisman/cache (redis)': [], 'ioredis 5 + autopipelining (same script)': [], '@bisman/cache (memory://)': [] };
  await round(native); // warm-up
  await round(plain);
  for (let r = 0; r < 3; r++) {
    results['@bisman/cache (redis)'].push(await round(native));
    results['ioredis 5 + autopipelining (same script)'].push(await round(plain));
    results['@bisman/cache (memory://)'].push(await round(memory));
  }
  console.log(`checkLimit, ${inFlight} in flight, ${seconds} s per round, 3 rounds (node ${process.version})`);
  for (const [name, xs] of Object.entries(results)) {
    const sorted = [...xs].sort((a, b) => a - b);
    console.log(`${name.padEnd(44)} median ${Math.round(sorted[1]).toLocaleString('en')} calls/s  (rounds: ${xs.map((x) => Math.round(x)).join(', ')})`);
  }
  plain.close();
  for (const c of caches) await c.shutdown();
  await server.stop();
  process.exit(0);
})();
