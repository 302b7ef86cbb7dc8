'use strict';
// metrics(): Prometheus text built from stats() and the services' counters, on both back ends;
// collectMetrics() gives the same numbers as data; the output parses as exposition format 0.0.4.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { createCache, metricsContentType, hashToken } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { sleep } = require('./helpers/redis');

const uid = () => crypto.randomBytes(6).toString('hex');

// Exposition-format parser (enough to check every line): → Map('name{labels}' → value).
function parse(text) {
  assert.ok(text.endsWith('\n'), 'ends with a newline');
  const samples = new Map();
  const typed = new Set();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# (HELP|TYPE) (bisman_cache_[a-z_]+) (.+)$/.exec(line);
    if (m) {
      if (m[1] === 'TYPE') {
        assert.match(m[3], /^(counter|gauge|summary|histogram)$/);
        typed.add(m[2]);
      }
      continue;
    }
    m = /^(bisman_cache_[a-z_]+)(\{(?:[a-z_]+="(?:[^"\\\n]|\\.)*",?)*\})? (-?\d+(?:\.\d+)?(?:e[+-]?\d+)?)$/.exec(line);
    assert.ok(m, `not an exposition line: ${JSON.stringify(line)}`);
    assert.ok(typed.has(m[1].replace(/_(sum|count|bucket)$/, '')) || typed.has(m[1]), `sample before its TYPE: ${line}`);
    samples.set(m[1] + (m[2] || ''), Number(m[3]));
  }
  return samples;
}

for (const [name, make] of BACKENDS) {
  describe(`metrics() on ${name}`, () => {
    let backend;
    let cache;
    let db;
    before(async () => {
      backend = await make();
      db = new Map();
      cache = createCache({
        url: backend.url,
        keyPrefix: `m${uid()}:`,
        loaders: { session: async (token) => db.get(token) || null, userPermissions: async () => ({ modules: ['A'] }) },
        rateLimits: { '/api/auth/login': { max: 2, windowSec: 60 } },
      });
    });
    after(async () => {
      await cache.shutdown();
      await backend.close();
    });

    it('counts hits, misses and database fallbacks by service', async () => {
      db.set('tok', { user_id: 1, expires_at: new Date(Date.now() + 60000).toISOString() });
      assert.equal((await cache.getSessionWithFallback('tok')).source, 'database');
      assert.equal((await cache.getSessionWithFallback('tok')).source, 'cache');
      assert.equal(await cache.getSessionWithFallback('nope'), null);
      await cache.permissionCache.hasModulePermission(9, 'A');
      const m = parse(cache.metrics());
      const s = cache.stats();
      assert.equal(m.get('bisman_cache_hits_total{service="session"}'), s.session.hits);
      assert.equal(m.get('bisman_cache_misses_total{service="session"}'), s.session.misses);
      assert.equal(m.get('bisman_cache_fallbacks_total{service="session"}'), 1);
      assert.equal(m.get('bisman_cache_loader_calls_total{service="session"}'), 2);
      assert.equal(m.get('bisman_cache_fallbacks_total{service="permission"}'), 1);
      assert.equal(m.get('bisman_cache_hits_total{service="session"}'), 1);
      assert.equal(m.get('bisman_cache_enabled'), 1);
    });

    it('counts rate-limit decisions per endpoint', async () => {
      const ip = `10.9.${Math.floor(Math.random() * 250)}.1`;
      for (let i = 0; i < 3; i++) await cache.rateLimiter.checkLimit(ip, '/api/auth/login');
      await cache.rateLimiter.checkLimit(ip, '/api/x"quoted"\\');
      const m = parse(cache.metrics());
      assert.equal(m.get('bisman_cache_ratelimit_decisions_total{endpoint="/api/auth/login",decision="allowed"}'), 2);
      assert.equal(m.get('bisman_cache_ratelimit_decisions_total{endpoint="/api/auth/login",decision="blocked"}'), 1);
      assert.equal(m.get('bisman_cache_ratelimit_decisions_total{endpoint="/api/x\\"quoted\\"\\\\",decision="allowed"}'), 1);
    });

    it('counts lock grants, busy answers, waits and lost locks', async () => {
      const res = `r${uid()}`;
      const held = await cache.distributedLock.acquire(res, 1, { ttlSec: 0.3 });
      assert.equal(held.acquired, true);
      // waits for the holder's TTL to run out: each retry is a wait
      const next = await cache.distributedLock.acquire(res, 1, { retries: 100, retryDelayMs: 20 });
      assert.equal(next.acquired, true);
      await cache.distributedLock.release(res, 1, next.owner);
      // a lock lost under withLock (someone else's TTL takeover after we lost it)
      const out = await cache.distributedLock.withLock(res, 2, async ({ signal, owner }) => {
        await cache.distributedLock.release(res, 2, owner); // the lock disappears under fn
        for (let i = 0; i < 100 && !signal.aborted; i++) await sleep(20);
        return signal.aborted;
      }, { ttlSec: 0.15 });
      assert.equal(out.result, true);
      const m = parse(cache.metrics());
      const s = cache.stats();
      assert.equal(m.get('bisman_cache_lock_acquired_total'), 3);
      assert.ok(m.get('bisman_cache_lock_busy_total') >= 1);
      assert.ok(m.get('bisman_cache_lock_waits_total') >= 1);
      assert.equal(m.get('bisman_cache_lock_waits_total'), s.lock.waits);
      assert.equal(m.get('bisman_cache_lock_lost_total'), 1);
    });

    it('counts pub/sub messages and their lag', async () => {
      const seen = [];
      cache.pubsub.onMessage('cache:invalidate', (d) => seen.push(d));
      assert.equal(await cache.pubsub.subscribe(), true);
      await cache.pubsub.publishCacheInvalidation({ keys: ['a'] });
      for (let i = 0; i < 200 && seen.length === 0; i++) await sleep(10);
      assert.equal(seen.length, 1);
      const m = parse(cache.metrics());
      assert.equal(m.get('bisman_cache_pubsub_messages_total'), 1);
      assert.equal(m.get('bisman_cache_pubsub_lag_milliseconds_count'), 1);
      assert.ok(m.get('bisman_cache_pubsub_lag_milliseconds_sum') >= 0);
      assert.equal(m.get('bisman_cache_pubsub_subscribed'), 1);
    });

    it('counts loader fills refused by a revocation, and the pub/sub refusals and losses, as stats() does', async () => {
      const slow = createCache({
        url: backend.url,
        keyPrefix: `m${uid()}:`,
        loaders: { session: async () => (await sleep(60), { user_id: 3, expires_at: new Date(Date.now() + 60000).toISOString() }) },
      });
      try {
        const load = slow.getSessionWithFallback('revoked-mid-load');
        await sleep(20);
        await slow.invalidateSession(hashToken('revoked-mid-load'));
        assert.equal((await load).source, 'database', 'the request that began before the logout gets its answer');
        assert.equal(await slow.sessionCache.getSession(hashToken('revoked-mid-load')), null, 'not cached');
        const m = parse(slow.metrics());
        const s = slow.stats();
        assert.equal(m.get('bisman_cache_stale_fills_total{service="session"}'), 1);
        assert.equal(m.get('bisman_cache_stale_fills_total{service="permission"}'), s.permission.staleFills);
        assert.equal(m.get('bisman_cache_corrupt_values_total{service="session"}'), s.session.corrupt);
        assert.equal(m.get('bisman_cache_pubsub_rejected_total{reason="unsigned"}'), s.pubsub.rejected.unsigned);
        assert.equal(m.get('bisman_cache_pubsub_lost_messages_total{kind="gap"}'), s.pubsub.gaps);
        assert.equal(m.get('bisman_cache_near_cache_drops_total'), s.pubsub.nearDrops);
      } finally {
        await slow.shutdown();
      }
    });

    it('collectMetrics() gives the same samples as data', () => {
      const text = parse(cache.metrics());
      const families = cache.collectMetrics();
      let n = 0;
      for (const f of families) {
        assert.match(f.name, /^bisman_cache_/);
        for (const [suffix, labels, value] of f.samples) {
          assert.deepEqual(Object.keys(labels), suffix === '_bucket' ? [...f.labelNames, 'le'] : f.labelNames, f.name);
          const l = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`).join(',');
          assert.equal(text.get(`${f.name}${suffix}${l ? `{${l}}` : ''}`), value);
          n++;
        }
      }
      assert.equal(n, text.size);
    });
  });
}

describe('metrics() without a back end', () => {
  it('reports the circuit open (enabled 0) and load fallbacks', async () => {
    const cache = createCache({ url: undefined, loaders: { session: async () => ({ user_id: 1 }) } });
    try {
      assert.equal((await cache.getSessionWithFallback('t')).source, 'database');
      const m = parse(cache.metrics());
      assert.equal(m.get('bisman_cache_enabled'), 0);
      assert.equal(m.get('bisman_cache_fallbacks_total{service="session"}'), 1);
      assert.equal(metricsContentType, 'text/plain; version=0.0.4; charset=utf-8');
    } finally {
      await cache.shutdown();
    }
  });
});

describe('metrics in prom-client (examples/prom-client.js, the README recipe)', () => {
  it("registers every family in a prom-client registry with the cache's live values", async () => {
    const client = require('prom-client');
    const { registerCacheMetrics } = require('../examples/prom-client');
    const cache = createCache({ url: `memory://p${uid()}` });
    try {
      const registry = new client.Registry();
      registerCacheMetrics(client, cache, registry);
      await cache.rateLimiter.checkLimit('1.2.3.4', '/api/auth/login');
      const lock = await cache.distributedLock.acquire('task', 1);
      assert.equal(lock.acquired, true);
      const text = await registry.metrics();
      const ours = parse(cache.metrics());
      const theirs = parse(text);
      assert.equal(theirs.get('bisman_cache_ratelimit_decisions_total{endpoint="/api/auth/login",decision="allowed"}'), 1);
      assert.equal(theirs.get('bisman_cache_lock_acquired_total'), 1);
      for (const [k, v] of ours) assert.equal(theirs.get(k), v, k);
      assert.match(text, /^# TYPE bisman_cache_hits_total counter$/m);
      // a later scrape sees later values
      await cache.rateLimiter.checkLimit('1.2.3.4', '/api/auth/login');
      assert.equal(parse(await registry.metrics()).get('bisman_cache_ratelimit_decisions_total{endpoint="/api/auth/login",decision="allowed"}'), 2);
    } finally {
      await cache.shutdown();
    }
  });
});
