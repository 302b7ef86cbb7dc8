'use strict';
// Limiter hits started in one tick of the event loop: on a Redis server the pipeline sends
// them as one call of the hit script per 64 hits (one EVALSHA instead of one per hit: the
// script's fixed cost in Redis, ~2/3 of a hit's, is paid once). These tests pin that the
// answers are exactly those of hits sent one by one: counted in the order started, each IP's
// index written with its limit and window, a hit Redis refuses failing alone, a batch after
// SCRIPT FLUSH re-sent as EVAL, and the hits of one tick sent as ceil(n / 64) script calls.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { createCache } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { commandStats } = require('./helpers/faults');
const { startRedis } = require('./helpers/redis');

delete process.env.REDIS_URL;

const freshIp = () => `10.${Array.from(crypto.randomBytes(3), (b) => String(b)).join('.')}`;

for (const [name, make] of BACKENDS) {
  describe(`limiter hits of one tick on ${name}`, () => {
    let backend;
    let cache;
    let rl;

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url, rateLimits: { '/b': { max: 100, windowSec: 60 }, '/c': { max: 2, windowSec: 30 } } });
      rl = cache.rateLimiter;
    });
    after(async () => {
      await cache.shutdown();
      await backend.close();
    });

    it('count as hits sent one by one: in the order started, every IP indexed, each with its own window and limit', async () => {
      const hot = freshIp();
      const many = Array.from({ length: 70 }, freshIp);
      // started in one tick: 150 hits on one IP, one hit on each of 70 others
      const first = Array.from({ length: 150 }, () => rl.checkLimit(hot, '/b'));
      const spread = many.map((ip) => rl.checkLimit(ip, '/b'));
      // every hit counted once: totals 1..150, the first 100 allowed (on one server they are
      // also answered in the order started; Sentinel's path runs each hit as its own task)
      const firstR = (await Promise.all(first)).sort((a, b) => a.total - b.total);
      assert.deepEqual(firstR.map((r) => r.total), Array.from({ length: 150 }, (_, i) => i + 1));
      assert.deepEqual(firstR.map((r) => r.allowed), Array.from({ length: 150 }, (_, i) => i < 100));
      assert.ok(firstR.every((r) => r.limit === 100 && r.resetIn > 50 && r.resetIn <= 60));
      assert.deepEqual((await Promise.all(spread)).map((r) => [r.total, r.allowed]), many.map(() => [1, true]));

      // after a reset, one tick: 10 hits on the reset counter and 3 on another endpoint of the
      // IP, alternating (the reset also drops the block-cache entry the 50 refusals made)
      await rl.resetLimit(hot, '/b');
      const again = [];
      const other = [];
      for (let i = 0; i < 10; i++) {
        again.push(rl.checkLimit(hot, '/b'));
        if (i < 3) other.push(rl.checkLimit(hot, '/c'));
      }
      const byTotal = (rs) => rs.sort((a, b) => a.total - b.total);
      assert.deepEqual(byTotal(await Promise.all(again)).map((r) => r.total), Array.from({ length: 10 }, (_, i) => i + 1));
      assert.deepEqual(byTotal(await Promise.all(other)).map((r) => [r.total, r.allowed, r.limit]), [[1, true, 2], [2, true, 2], [3, false, 2]]);

      // each IP's index names its counter with the endpoint's limit (getIpStatus reads it)
      const status = await rl.getIpStatus(hot);
      assert.deepEqual(Object.keys(status).sort(), ['/b', '/c']);
      assert.deepEqual([status['/b'].current, status['/b'].limit, status['/c'].current, status['/c'].limit], [10, 100, 3, 2]);
      for (const ip of [many[0], many[33], many[69]]) {
        const s = await rl.getIpStatus(ip);
        assert.deepEqual([s['/b'].current, s['/b'].limit], [1, 100]);
        assert.ok(s['/b'].resetIn > 50 && s['/b'].resetIn <= 60);
      }
      // and every counter has its window's TTL
      const ttl = await backend.pttl(`rate:${many[50]}:_b`);
      assert.ok(ttl > 50_000 && ttl <= 60_000, `PTTL ${ttl}`);
      console.log(`limiter hits of one tick (${name}): 233 hits answered as sent one by one`);
    });
  });
}

describe('limiter hits of one tick on one redis-server', () => {
  let server;
  let cache;
  let rl;
  let client;

  before(async () => {
    server = await startRedis();
    client = server.client();
    cache = createCache({ url: server.url, rateLimits: { '/b': { max: 1000, windowSec: 60 } } });
    rl = cache.rateLimiter;
    await rl.checkLimit(freshIp(), '/b'); // the script is loaded and the connection up
  });
  after(async () => {
    client.disconnect();
    await cache.shutdown();
    await server.stop();
  });

  it('leave as one script call per 64 hits (one EVALSHA per hit before), answered in the order started', async () => {
    const before = await commandStats(server);
    const ips = Array.from({ length: 200 }, freshIp);
    const hot = freshIp();
    const hotHits = [];
    const pending = ips.map((ip, i) => {
      if (i % 2 === 0) hotHits.push(rl.checkLimit(hot, '/b'));
      return rl.checkLimit(ip, '/b');
    });
    assert.deepEqual((await Promise.all(hotHits)).map((h) => h.total), Array.from({ length: 100 }, (_, i) => i + 1));
    const hits = await Promise.all(pending);
    const delta = await commandStats(server);
    assert.ok(hits.every((h) => h.total === 1 && h.allowed));
    const calls = (delta.evalsha || 0) - (before.evalsha || 0);
    const incrs = (delta.incr || 0) - (before.incr || 0);
    console.log(`limiter hits of one tick: 300 hits → ${calls} EVALSHA, ${incrs} INCR`);
    assert.equal(incrs, 300, 'every hit counted once');
    assert.equal(calls, Math.ceil(300 / 64));
  });

  it('a hit whose counter Redis refuses fails alone (fail-open, counted); the others of its batch count', async () => {
    const ips = Array.from({ length: 20 }, freshIp);
    await client.set(`rate:${ips[7]}:_b`, 'not a number', 'EX', 60);
    const fallbacks = cache.stats().rateLimit.fallbacks;
    const hits = await Promise.all(ips.map((ip) => rl.checkLimit(ip, '/b')));
    assert.equal(cache.stats().rateLimit.fallbacks, fallbacks + 1, 'one hit failed');
    assert.equal(hits[7].allowed, true, 'the failed hit fails open');
    assert.deepEqual(
      hits.filter((_, i) => i !== 7).map((h) => h.total),
      ips.slice(1).map(() => 1),
    );
    assert.equal(await client.get(`rate:${ips[7]}:_b`), 'not a number', 'nothing written to it');
    for (const ip of [ips[6], ips[8]]) assert.equal(await client.get(`rate:${ip}:_b`), '1');
  });

  it('a batch Redis no longer knows the script of is sent once more as EVAL, every hit answered once', async () => {
    const ips = Array.from({ length: 100 }, freshIp);
    await client.script('FLUSH');
    const before = await commandStats(server);
    const hits = await Promise.all(ips.map((ip) => rl.checkLimit(ip, '/b')));
    const delta = await commandStats(server);
    assert.ok(hits.every((h) => h.total === 1 && h.allowed));
    assert.equal((delta.incr || 0) - (before.incr || 0), 100, 'every hit counted once');
    assert.equal((delta.eval || 0) - (before.eval || 0), 2, 'each of the 2 batches re-sent as EVAL once');
  });
});
