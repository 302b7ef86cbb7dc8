'use strict';
// Failover on real topologies: a Redis Cluster primary killed (its replica promoted), and a
// Sentinel failover (SENTINEL FAILOVER). Operations and subscriptions must resume within 5 s
// of the promotion; a lock held through the failover is not granted twice while its holder
// lives (or the test reports it). Part of `npm run test:topologies`.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { createCache } = require('../..');
const { sleep } = require('../helpers/redis');
const { clusterBackend, sentinelBackend } = require('../helpers/backends');

const uid = () => crypto.randomBytes(8).toString('hex');
const RESUME_BOUND_MS = 5000;

// Polls `op` every 25 ms until it succeeds → ms waited (bounded).
async function resumeAfter(op, boundMs = 15000) {
  const t0 = Date.now();
  let last;
  while (Date.now() - t0 < boundMs) {
    try {
      if (await op()) return Date.now() - t0;
    } catch (err) {
      last = err;
    }
    await sleep(25);
  }
  throw new Error(`did not resume within ${boundMs} ms${last ? `: ${last.message}` : ''}`);
}

// A session write then read of a fresh key: the whole path works again.
const roundTrip = (cache) => async () => {
  const h = uid();
  if (!(await cache.sessionCache.setSession(h, { user_id: 1 }))) return false;
  const got = await cache.sessionCache.getSession(h);
  return got !== null && got.user_id === 1;
};

// Holds a lock through `during()` with withLock (watchdog; a TTL longer than the outage, so
// that it cannot simply expire); once it is held, a contender tries to acquire it every 20 ms
// → { secondGrants, holderLost }. An error of `during` is rethrown.
async function lockThrough(holder, contender, id, during) {
  let secondGrants = 0;
  let holderLost = false;
  let stop = false;
  let contend = Promise.resolve();
  await holder.distributedLock.withLock('failover', id, async ({ signal }) => {
    signal.addEventListener('abort', () => { holderLost = true; });
    contend = (async () => {
      while (!stop) {
        try {
          const r = await contender.distributedLock.acquire('failover', id, { ttlSec: 2 });
          if (r.acquired) {
            if (!holderLost) secondGrants++;
            await contender.distributedLock.release('failover', id, r.owner).catch(() => {});
          }
        } catch {}
        await sleep(20);
      }
    })();
    try {
      await during();
      await sleep(500); // the contender keeps trying on the new primary
    } finally {
      stop = true;
      await contend;
    }
  }, { ttlSec: 15 });
  return { secondGrants, holderLost };
}

describe('Redis Cluster: a primary killed', () => {
  let backend;
  let cache;
  let other;
  before(async () => {
    backend = await clusterBackend({ nodeTimeoutMs: 1000 });
    cache = createCache({ url: backend.url, commandTimeoutMs: 500, connectTimeoutMs: 1000 });
    other = createCache({ url: backend.url, commandTimeoutMs: 500, connectTimeoutMs: 1000 });
  });
  after(async () => {
    await cache.shutdown();
    await other.shutdown();
    await backend.close();
  });

  it('the CROSSSLOT count that every cluster suite checks at its end does count such errors', async () => {
    const { ask } = require('../helpers/topologies');
    const before = await backend.cluster.errorCount('CROSSSLOT');
    const [port] = await backend.cluster.primaries();
    await assert.rejects(ask(port, 'MSET', 'a', '1', 'b', '2'), /CROSSSLOT/);
    backend.deliberateCrossslot++;
    assert.equal(await backend.cluster.errorCount('CROSSSLOT'), before + 1);
  });

  it('operations on the dead primary\'s slots resume within 5 s of the promotion; subscriptions keep delivering; a held lock is not granted twice', async () => {
    assert.equal(await cache.pubsub.subscribe(), true);
    assert.ok(await roundTrip(cache)());
    // we kill the primary where the subscribers and publishers meet (the slot of the first
    // channel), so the subscriber must move; a session key and a lock key live there too
    const victim = await backend.cluster.primaryOf('permissions:invalidate');
    let h = null;
    for (let i = 0; i < 200 && h === null; i++) {
      const id = uid();
      if ((await backend.cluster.primaryOf(`session:${id}`)) === victim) h = id;
    }
    assert.ok(h !== null, 'found a session key on the victim primary');
    await cache.sessionCache.setSession(h, { user_id: 7 });
    const resubscribesBefore = cache.pubsub.status().resubscribes;
    // a lock whose key (and fence key, same slot) lives on that primary too
    let lockId = null;
    for (let i = 0; i < 200 && lockId === null; i++) {
      const id = uid();
      if ((await backend.cluster.primaryOf(`lock:failover:${id}`)) === victim) lockId = id;
    }
    assert.ok(lockId !== null, 'found a lock key on the victim primary');
    let promotedAfterMs = 0;
    let resumedMs = 0;
    const locks = await lockThrough(cache, other, lockId, async () => {
      const killed = await backend.cluster.killPrimary(victim);
      promotedAfterMs = killed.promotedAfterMs;
      // a write and a read on the killed primary's slots (sessions written before may be lost:
      // asynchronous replication)
      resumedMs = await resumeAfter(async () => {
        const k = uid();
        await cache.sessionCache.setSession(h, { user_id: 7, k });
        const got = await cache.sessionCache.getSession(h);
        return got !== null && got.k === k;
      });
    });
    console.log(`# cluster: replica promoted ${promotedAfterMs} ms after the kill; operations on its slots resumed ${resumedMs} ms after the promotion`);
    assert.ok(resumedMs <= RESUME_BOUND_MS, `resumed after ${resumedMs} ms`);
    assert.ok(await roundTrip(cache)());

    let got = null;
    const nonce = uid();
    const off = cache.pubsub.onMessage('cache:invalidate', (m) => { if (m.nonce === nonce) got = m; });
    const subMs = await resumeAfter(async () => {
      await other.pubsub.publishCacheInvalidation({ keys: [], nonce });
      await sleep(50);
      return got !== null;
    });
    off();
    console.log(`# cluster: the subscriber moved off the dead primary (resubscribes ${resubscribesBefore} → ${cache.pubsub.status().resubscribes}); a message published after the failover was received ${subMs} ms after the first try`);
    assert.ok(subMs <= RESUME_BOUND_MS);
    assert.ok(cache.pubsub.status().resubscribes > resubscribesBefore, 'the subscriber reconnected');

    console.log(`# cluster: lock held through the failover: ${locks.secondGrants} second grant(s) while the holder lived (holder lost it: ${locks.holderLost})`);
    if (!locks.holderLost) assert.equal(locks.secondGrants, 0, 'no second grant while the holder still held the lock');
  });
});

describe('Redis Sentinel: SENTINEL FAILOVER', () => {
  let backend;
  let cache;
  let other;
  before(async () => {
    backend = await sentinelBackend({ downAfterMs: 1000 });
    cache = createCache({ url: backend.url, commandTimeoutMs: 500, connectTimeoutMs: 1000 });
    other = createCache({ url: backend.url, commandTimeoutMs: 500, connectTimeoutMs: 1000 });
  });
  after(async () => {
    await cache.shutdown();
    await other.shutdown();
    await backend.close();
  });

  it('operations and subscriptions resume within 5 s after the switch; a held lock is not granted twice', async () => {
    assert.equal(await cache.pubsub.subscribe(), true);
    assert.ok(await roundTrip(cache)());
    const before = cache.pubsub.status().resubscribes;
    let switched;
    let resumedMs = 0;
    const locks = await lockThrough(cache, other, uid(), async () => {
      switched = await backend.setup.failover();
      resumedMs = await resumeAfter(roundTrip(cache));
    });
    console.log(`# sentinel: failover ${switched.from} → ${switched.to} seen by the sentinels ${switched.switchedAfterMs} ms after SENTINEL FAILOVER; operations resumed ${resumedMs} ms after that`);
    assert.ok(resumedMs <= RESUME_BOUND_MS, `resumed after ${resumedMs} ms`);

    // the subscriber ends up on the new primary and receives what is published there
    const subMs = await resumeAfter(async () => cache.pubsub.isConnected() && cache.pubsub.status().resubscribes > before);
    let got = null;
    const nonce = uid();
    const off = cache.pubsub.onMessage('cache:invalidate', (m) => { if (m.nonce === nonce) got = m; });
    const msgMs = await resumeAfter(async () => {
      await other.pubsub.publishCacheInvalidation({ keys: [], nonce });
      await sleep(50);
      return got !== null;
    });
    off();
    console.log(`# sentinel: resubscribed ${subMs} ms after operations resumed; a message published on the new primary arrived ${msgMs} ms after the first try`);
    assert.ok(subMs <= RESUME_BOUND_MS && msgMs <= RESUME_BOUND_MS);

    // the writes now land on the new primary
    const h = uid();
    await cache.sessionCache.setSession(h, { user_id: 3 });
    const c = backend.topology.client();
    assert.ok(await c.get(`session:${h}`));
    assert.equal(await backend.setup.primaryPort(), switched.to);

    console.log(`# sentinel: lock held through the failover: ${locks.secondGrants} second grant(s) while the holder lived (holder lost it: ${locks.holderLost})`);
    if (!locks.holderLost) assert.equal(locks.secondGrants, 0, 'no second grant while the holder still held the lock');
  });
});
