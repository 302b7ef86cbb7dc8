'use strict';
// The direct paths (issue 8): hot operations queued straight from the JS thread on the
// pipelined connection (EVALSHA of a script, or one command), their NOSCRIPT fallback (one
// EVAL with the source) and the outbox after a lost connection.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache } = require('..');
const { startRedis, sleep } = require('./helpers/redis');

delete process.env.REDIS_URL;

describe('direct paths on the pipelined connection', () => {
  let server;
  let cache;
  let client;

  before(async () => {
    server = await startRedis();
    cache = createCache({ url: server.url, nodeId: 'direct', rateLimits: { '/d': { max: 3, windowSec: 60 } } });
    client = server.client();
  });

  after(async () => {
    await cache.shutdown();
    await server.stop();
  });

  it('after SCRIPT FLUSH every scripted hot operation still works (EVAL once, then EVALSHA again)', async () => {
    // load the scripts once, then make Redis forget them
    assert.equal((await cache.rateLimiter.checkLimit('10.0.0.1', '/d')).total, 1);
    await client.script('FLUSH');
    const hit = await cache.rateLimiter.checkLimit('10.0.0.1', '/d');
    assert.deepEqual([hit.total, hit.allowed, hit.remaining], [2, true, 1]);
    const ttl = await client.pttl('rate:10.0.0.1:_d');
    assert.ok(ttl > 0 && ttl <= 60000, `the counter keeps its TTL (${ttl})`);

    await client.script('FLUSH');
    const lock = await cache.distributedLock.acquire('direct', 1, { ttlSec: 5 });
    assert.equal(lock.acquired, true);
    assert.equal(await client.get('lock:direct:1'), lock.owner);
    await client.script('FLUSH');
    assert.equal(await cache.distributedLock.release('direct', 1, 'direct:1:00'), false, 'a stranger cannot release');
    assert.equal(await cache.distributedLock.release('direct', 1, lock.owner), true);
    assert.equal(await client.exists('lock:direct:1'), 0);

    await client.script('FLUSH');
    assert.equal(await cache.sessionCache.setSession('dhash', { user_id: 9, n: 1 }), true);
    assert.deepEqual(JSON.parse(await client.get('session:dhash')), { user_id: 9, n: 1 });
    assert.deepEqual(await client.zrange('session:user:9', 0, -1), ['dhash']); // the index is a sorted set (issue 14 item 13)

    // the EVAL cached the scripts: a second call is one EVALSHA that Redis knows, no EVAL
    const calls = async (cmd) => {
      const m = new RegExp(`cmdstat_${cmd}:calls=(\\d+)`).exec(await client.info('commandstats'));
      return m ? Number(m[1]) : 0;
    };
    const eval0 = await calls('eval');
    assert.equal((await cache.rateLimiter.checkLimit('10.0.0.1', '/d')).total, 3); // NOSCRIPT → EVAL
    assert.equal(await calls('eval'), eval0 + 1);
    const sha1 = await calls('evalsha');
    assert.equal((await cache.rateLimiter.checkLimit('10.0.0.1', '/d')).allowed, false);
    assert.equal(await calls('eval'), eval0 + 1, 'no second EVAL');
    assert.equal(await calls('evalsha'), sha1 + 1);
  });

  it('many concurrent first uses after SCRIPT FLUSH all answer correctly', async () => {
    await client.script('FLUSH');
    const hits = await Promise.all(Array.from({ length: 50 }, () => cache.rateLimiter.checkLimit('10.0.0.2', '/d')));
    assert.deepEqual(
      hits.map((h) => h.total).sort((a, b) => a - b),
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    assert.equal(hits.filter((h) => h.allowed).length, 3);
  });

  it('the commands one tick starts leave in one write, and each reply reaches its caller', async () => {
    const native = cache.ctx.bridge.native;
    await cache.sessionCache.setSession('tick-0', { user_id: 0 });
    await cache.sessionCache.setSession('tick-1', { user_id: 1 });
    const [w0, c0] = native.transportCounts();
    // 1,000 reads and 200 limiter hits, all started in the same tick
    const reads = Array.from({ length: 1000 }, (_, i) => cache.sessionCache.getSession(`tick-${i % 3}`));
    const hits = Array.from({ length: 200 }, () => cache.rateLimiter.checkLimit('10.0.0.3', '/tick'));
    const got = await Promise.all(reads);
    const totals = (await Promise.all(hits)).map((h) => h.total);
    const [w1, c1] = native.transportCounts();
    // the 200 hits leave as one call of the hit script per 64 (rate_batch.test.js)
    assert.equal(c1 - c0, 1000 + Math.ceil(200 / 64), 'every command was sent once');
    assert.equal(w1 - w0, 1, `one write carried them all (${w1 - w0} writes)`);
    got.forEach((s, i) => assert.deepEqual(s, i % 3 === 2 ? null : { user_id: i % 3 }));
    assert.deepEqual(totals, Array.from({ length: 200 }, (_, i) => i + 1), 'limiter hits counted in the order started');
  });

  it('operations started by separate callbacks of one turn of the event loop leave in one write', async () => {
    const native = cache.ctx.bridge.native;
    await cache.sessionCache.setSession('turn-1', { user_id: 1 });
    const [w0, c0] = native.transportCounts();
    // 50 callbacks queued for the same check phase run one after another in it, each a
    // callback of its own (as 50 HTTP requests read in one poll phase are)
    const started = [];
    await new Promise((resolve) => {
      for (let i = 0; i < 50; i++) {
        setImmediate(() => {
          started.push(cache.sessionCache.getSession('turn-1'));
          // each callback works a little, as a request handler does: time enough for the
          // I/O thread to send a command at once, if it were woken for it
          const until = performance.now() + 0.3;
          while (performance.now() < until);
          if (started.length === 50) resolve();
        });
      }
    });
    const got = await Promise.all(started);
    const [w1, c1] = native.transportCounts();
    assert.equal(c1 - c0, 50);
    assert.equal(w1 - w0, 1, `one write for the turn (${w1 - w0} writes)`);
    got.forEach((s) => assert.deepEqual(s, { user_id: 1 }));
  });

  it('publish answers the number of receivers', async () => {
    const other = createCache({ url: server.url, nodeId: 'other' });
    try {
      assert.equal(await other.pubsub.subscribe(), true);
      const got = new Promise((resolve) => other.pubsub.onMessage('sessions:invalidate', resolve));
      const n = await cache.pubsub.publishSessionInvalidation({ sessionId: 'x' });
      assert.ok(n >= 1, `receivers: ${n}`);
      assert.equal((await got).sessionId, 'x');
    } finally {
      await other.shutdown();
    }
  });
});

describe('the outbox after a lost connection', () => {
  it('commands failed while Redis was down are never sent later (no reply lands on the wrong caller)', async () => {
    const s = await startRedis();
    const c = createCache({ url: s.url, commandTimeoutMs: 300 });
    try {
      assert.equal(await c.sessionCache.setSession('old', { user_id: 1 }), true);
      await s.kill();
      // these fail while Redis is down; their bytes must not stay queued
      for (let i = 0; i < 5; i++) assert.equal(await c.sessionCache.getSession('old'), null);
      await s.start();
      let ok = false;
      const t0 = Date.now();
      while (Date.now() - t0 < 5000 && !ok) {
        ok = (await c.sessionCache.setSession('new', { user_id: 2 })) === true;
        if (!ok) await sleep(50);
      }
      assert.equal(ok, true);
      assert.deepEqual(await c.sessionCache.getSession('new'), { user_id: 2 });
      assert.equal(await c.sessionCache.getSession('old'), null, 'the restarted Redis is empty');
      const hit = await c.rateLimiter.checkLimit('10.9.9.9', '/x');
      assert.equal(hit.total, 1);
    } finally {
      await c.shutdown();
      await s.stop();
    }
  });
});
