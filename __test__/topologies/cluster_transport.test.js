'use strict';
// The Redis Cluster transport on our own pipelined connections (one per primary): a slot moved
// to another primary (MOVED), a slot being migrated (ASK), the hot paths carried by the
// pipelines (their counters), and a hung primary (SIGSTOP) under which every call settles
// within commandTimeoutMs. Real 3-primary/3-replica cluster. Part of `npm run test:topologies`.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { createCache } = require('../..');
const { sleep } = require('../helpers/redis');
const { startCluster, ask } = require('../helpers/topologies');

const uid = () => crypto.randomBytes(8).toString('hex');
const TIMEOUT = 400;

// Moves every key of `slot` from primary `from` to primary `to` and gives `to` the slot; with
// `finish` false the slot is left half-migrated (MIGRATING on `from`, IMPORTING on `to`).
async function migrate(cluster, slot, from, to, keys, { finish = true } = {}) {
  const fromId = await ask(from, 'CLUSTER', 'MYID');
  const toId = await ask(to, 'CLUSTER', 'MYID');
  await ask(to, 'CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId);
  await ask(from, 'CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', toId);
  if (keys.length > 0) await ask(from, 'MIGRATE', '127.0.0.1', String(to), '', '0', '5000', 'KEYS', ...keys);
  if (finish) await finishMigration(cluster, slot, to);
}

// Gives `slot` to primary `to` on every primary.
async function finishMigration(cluster, slot, to) {
  const toId = await ask(to, 'CLUSTER', 'MYID');
  await ask(to, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', toId);
  for (const p of await cluster.primaries()) {
    if (p !== to) await ask(p, 'CLUSTER', 'SETSLOT', String(slot), 'NODE', toId);
  }
}

const timed = async (op) => {
  const t0 = performance.now();
  try {
    await op();
    return { ms: performance.now() - t0, ok: true };
  } catch (err) {
    return { ms: performance.now() - t0, ok: false, code: err.code };
  }
};

describe('Redis Cluster transport (pipelines per primary)', () => {
  let cluster;
  let cache;
  let url;
  before(async () => {
    cluster = await startCluster({ nodeTimeoutMs: 5000 });
    url = `redis+cluster://${cluster.urls.map((u) => u.slice('redis://'.length)).join(',')}`;
    cache = createCache({ url, commandTimeoutMs: TIMEOUT, connectTimeoutMs: 1000 });
  });
  after(async () => {
    await cache.shutdown();
    await cluster.stop();
  });

  it('a slot moved to another primary: the next calls follow MOVED, update the map and succeed', async () => {
    const h = uid();
    assert.equal(await cache.sessionCache.setSession(h, { user_id: 1 }), true);
    assert.deepEqual(await cache.sessionCache.getSession(h), { user_id: 1 });
    const key = `session:${h}`;
    const slot = await ask((await cluster.primaries())[0], 'CLUSTER', 'KEYSLOT', key);
    const from = await cluster.primaryOf(key);
    const to = (await cluster.primaries()).find((p) => p !== from);
    await migrate(cluster, slot, from, to, [key]);
    assert.equal(await cluster.primaryOf(key), to);
    const native = cache.ctx.bridge.native;
    const [moved0] = native.clusterCounts();
    // a read, a write and a read again of the moved slot
    assert.deepEqual(await cache.sessionCache.getSession(h), { user_id: 1 });
    assert.equal(await cache.sessionCache.setSession(h, { user_id: 2 }), true);
    assert.deepEqual(await cache.sessionCache.getSession(h), { user_id: 2 });
    const [moved1] = native.clusterCounts();
    console.log(`# MOVED followed: ${moved1 - moved0} (slot ${slot}: ${from} → ${to})`);
    assert.ok(moved1 - moved0 >= 1, 'MOVED was answered and followed');
    assert.ok(moved1 - moved0 <= 2, 'the map learnt the move (not one MOVED per call)');
    assert.equal(await ask(to, 'GET', key), JSON.stringify({ user_id: 2 }));
  });

  it('a slot being migrated: a key already moved is read and written through ASK', async () => {
    const h = uid();
    assert.equal(await cache.sessionCache.setSession(h, { user_id: 3 }), true);
    const key = `session:${h}`;
    const slot = await ask((await cluster.primaries())[0], 'CLUSTER', 'KEYSLOT', key);
    const from = await cluster.primaryOf(key);
    const to = (await cluster.primaries()).find((p) => p !== from);
    await migrate(cluster, slot, from, to, [key], { finish: false });
    try {
      const native = cache.ctx.bridge.native;
      const [, asked0] = native.clusterCounts();
      assert.deepEqual(await cache.sessionCache.getSession(h), { user_id: 3 });
      assert.equal(await cache.sessionCache.setSession(h, { user_id: 4 }), true);
      assert.deepEqual(await cache.sessionCache.getSession(h), { user_id: 4 });
      const [, asked1] = native.clusterCounts();
      console.log(`# ASK followed: ${asked1 - asked0} (slot ${slot} migrating ${from} → ${to})`);
      assert.ok(asked1 - asked0 >= 3, 'each call on the migrated key was asked to the importing node');
    } finally {
      await finishMigration(cluster, slot, to);
    }
    // (the nodes answer ASK or MOVED to a plain GET while the slot is migrating)
    assert.equal(await ask(to, 'GET', key), JSON.stringify({ user_id: 4 }), 'written on the importing node');
    assert.deepEqual(await cache.sessionCache.getSession(h), { user_id: 4 });
  });

  it('session reads and checkLimit run on the pipelines: every command counted, a few writes per tick', async () => {
    const native = cache.ctx.bridge.native;
    assert.equal(native.pipelined(), true);
    const ids = Array.from({ length: 30 }, uid);
    for (const h of ids) await cache.sessionCache.setSession(h, { user_id: 5 });
    await cache.sessionCache.getSession(ids[0]);
    const [w0, c0] = native.transportCounts();
    const reads = Array.from({ length: 300 }, (_, i) => cache.sessionCache.getSession(ids[i % ids.length]));
    const hits = Array.from({ length: 100 }, (_, i) => cache.rateLimiter.checkLimit(`10.9.${i >> 8}.${i & 255}`, '/cluster'));
    const got = await Promise.all(reads);
    const answers = await Promise.all(hits);
    const [w1, c1] = native.transportCounts();
    console.log(`# 300 session reads + 100 checkLimit: ${c1 - c0} commands in ${w1 - w0} writes`);
    got.forEach((s) => assert.deepEqual(s, { user_id: 5 }));
    answers.forEach((a) => assert.equal(a.total, 1));
    // a read is one GET, a checkLimit two scripts (index entry, counter)
    assert.ok(c1 - c0 >= 500, `${c1 - c0} commands`);
    // the reads leave in one write per primary; each counter script is sent by the I/O task
    // that received its index entry's reply
    assert.ok(w1 - w0 <= 3 + 100 + 10, `${w1 - w0} writes`);
  });

  it('after SCRIPT FLUSH on every primary, the scripted calls still work (EVAL or SCRIPT LOAD on each node)', async () => {
    const h = uid();
    await cache.sessionCache.setSession(h, { user_id: 9 });
    await cache.rateLimiter.checkLimit('10.7.0.1', '/noscript');
    for (const p of await cluster.primaries()) await ask(p, 'SCRIPT', 'FLUSH');
    // a fresh session and IP, and a lock: keys spread over the primaries
    const hits = await Promise.all(Array.from({ length: 30 }, (_, i) => cache.rateLimiter.checkLimit(`10.7.1.${i}`, '/noscript')));
    hits.forEach((r) => assert.equal(r.total, 1));
    const locks = await Promise.all(Array.from({ length: 10 }, () => cache.distributedLock.acquire('noscript', uid(), { ttlSec: 5 })));
    locks.forEach((l) => assert.equal(l.acquired, true));
    assert.equal(await cache.sessionCache.setSession(uid(), { user_id: 9 }), true);
    assert.equal(await cache.sessionCache.invalidateSession(h), true);
  });

  it('a hung primary (SIGSTOP): every call settles within commandTimeoutMs + margin; all well after SIGCONT', async () => {
    const hung = cluster.node((await cluster.primaries())[1]);
    const ids = Array.from({ length: 60 }, uid);
    for (const h of ids) await cache.sessionCache.setSession(h, { user_id: 6 });
    hung.pause();
    let results;
    try {
      const t0 = performance.now();
      const calls = [
        ...ids.map((h) => timed(() => cache.sessionCache.getSession(h))),
        ...ids.map((_, i) => timed(() => cache.rateLimiter.checkLimit(`10.8.0.${i}`, '/hung'))),
        ...ids.slice(0, 20).map((h) => timed(() => cache.distributedLock.acquire('hung', h, { ttlSec: 5 }))),
      ];
      const startMs = performance.now() - t0;
      results = await Promise.race([
        Promise.all(calls),
        sleep(10000).then(() => { throw new Error('calls did not settle within 10 s'); }),
      ]);
      const worst = Math.max(...results.map((r) => r.ms));
      const failed = results.filter((r) => !r.ok).length;
      console.log(`# hung primary: ${results.length} calls settled, worst ${worst.toFixed(0)} ms (commandTimeoutMs ${TIMEOUT}, start ${startMs.toFixed(0)} ms), ${failed} rejected`);
      assert.ok(worst <= TIMEOUT + 600 + startMs, `worst call took ${worst.toFixed(0)} ms`);
      assert.ok(results.some((r) => r.ok), 'the calls on the other primaries succeeded');
    } finally {
      hung.resume();
    }
    // after SIGCONT (and the breaker's cool-down) the hung primary's keys are served again
    const t1 = Date.now();
    let back = false;
    while (!back && Date.now() - t1 < 15000) {
      const all = await Promise.all(ids.map((h) => cache.sessionCache.getSession(h).catch(() => null)));
      back = all.every((s) => s !== null && s.user_id === 6);
      if (!back) await sleep(100);
    }
    assert.ok(back, 'every session read again after SIGCONT');
  });
});
