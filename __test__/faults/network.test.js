'use strict';
// Network faults through our TCP proxy (blackhole, delay, reset) and server-side connection
// kills (CLIENT KILL TYPE pubsub): every call bounded by commandTimeoutMs, the link re-made
// afterwards, nothing unhandled.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache } = require('../..');
const { startRedis, sleep } = require('../helpers/redis');
const { startProxy } = require('../helpers/proxy');
const { guardProcess, timed, waitFor, killPubSubClients } = require('../helpers/faults');

const guard = guardProcess();
const TIMEOUT = 200;

describe('TCP proxy faults', () => {
  let server;
  let proxy;
  let cache;
  before(async () => {
    server = await startRedis();
    proxy = await startProxy(server.port);
    cache = createCache({
      url: proxy.url,
      commandTimeoutMs: TIMEOUT,
      connectTimeoutMs: 500,
      loaders: { session: async (token) => ({ user_id: 3, token }) },
    });
    assert.equal((await cache.ping()).pong, 'PONG');
  });
  after(async () => {
    await cache.shutdown();
    await proxy.close();
    await server.stop();
  });

  it('passes traffic through', async () => {
    assert.equal(await cache.sessionCache.setSession('via-proxy', { user_id: 1 }), true);
    assert.equal((await cache.sessionCache.getSession('via-proxy')).user_id, 1);
    assert.ok(proxy.accepted >= 1);
  });

  it('blackholed: calls bounded by the timeout; the link is re-made after', async () => {
    const acceptedBefore = proxy.accepted;
    proxy.blackhole();
    const times = [];
    for (let i = 0; i < 30; i++) {
      const t = await timed(() => cache.getSessionWithFallback(`bh-${i}`));
      assert.equal(t.value.source, 'database');
      times.push(t.ms);
    }
    const worst = Math.max(...times);
    console.log(`# blackhole: 30 reads, worst ${worst.toFixed(1)} ms (bound ${TIMEOUT + 50}), ${times.filter((t) => t < 20).length} at once`);
    assert.ok(worst <= TIMEOUT + 50, `worst ${worst.toFixed(1)} ms`);
    // Silence for two timeouts with commands waiting: the pipeline drops the link; once the
    // proxy passes again, a new connection is made and answers.
    await sleep(3 * TIMEOUT);
    proxy.pass();
    const waited = await waitFor(async () => (await cache.ping()).pong === 'PONG', { timeoutMs: 10_000, everyMs: 50 });
    console.log(`# blackhole: ping healthy ${waited.toFixed(0)} ms after the proxy passed again; connections accepted ${acceptedBefore} → ${proxy.accepted}`);
    assert.ok(waited >= 0);
    assert.ok(proxy.accepted > acceptedBefore, 'a new connection was made');
    assert.equal(await cache.sessionCache.setSession('after-bh', { user_id: 2 }), true);
  });

  it('delayed below the timeout: answers arrive; above it: ETIMEDOUT in bounded time', async () => {
    proxy.delay(50);
    const slow = await timed(() => cache.sessionCache.getSession('after-bh'));
    assert.equal(slow.value.user_id, 2);
    assert.ok(slow.ms >= 45, `a delayed answer took ${slow.ms.toFixed(1)} ms`);
    proxy.delay(TIMEOUT * 3);
    const late = await timed(() => cache.distributedLock.acquire('task', 'delayed'));
    assert.equal(late.value.acquired, false);
    assert.equal(late.value.code, 'ETIMEDOUT');
    assert.ok(late.ms <= TIMEOUT + 50, `took ${late.ms.toFixed(1)} ms`);
    console.log(`# delay: 50 ms → answered in ${slow.ms.toFixed(1)} ms; ${TIMEOUT * 3} ms → ETIMEDOUT in ${late.ms.toFixed(1)} ms`);
    proxy.pass();
    const waited = await waitFor(async () => (await cache.ping()).circuit === 'closed', { timeoutMs: 10_000, everyMs: 50 });
    assert.ok(waited >= 0);
  });

  it('connections reset: calls fail fast to the fallback, then reconnect', async () => {
    proxy.reset();
    proxy.resetAll();
    const times = [];
    for (let i = 0; i < 20; i++) {
      const t = await timed(() => cache.getSessionWithFallback(`rst-${i}`));
      assert.equal(t.value.source, 'database');
      times.push(t.ms);
    }
    const worst = Math.max(...times);
    console.log(`# reset: 20 reads, worst ${worst.toFixed(1)} ms`);
    assert.ok(worst <= TIMEOUT + 50);
    proxy.pass();
    const waited = await waitFor(async () => (await cache.ping()).circuit === 'closed', { timeoutMs: 10_000, everyMs: 50 });
    assert.ok(waited >= 0);
    assert.equal(await cache.sessionCache.setSession('after-reset', { user_id: 4 }), true);
  });
});

describe('CLIENT KILL TYPE pubsub', () => {
  let server;
  let a;
  let b;
  before(async () => {
    server = await startRedis();
    a = createCache({ url: server.url, nodeId: 'node-a', connectTimeoutMs: 1000 });
    b = createCache({ url: server.url, nodeId: 'node-b' });
  });
  after(async () => {
    await a.shutdown();
    await a.pubsub.shutdown();
    await b.shutdown();
    await server.stop();
  });

  it('the subscriber is re-made and receives messages again', async () => {
    const got = [];
    a.pubsub.onMessage('cache:invalidate', (m) => got.push(m));
    assert.equal(await a.pubsub.subscribe(), true);
    const killed = await killPubSubClients(server);
    assert.ok(Number(killed) >= 1, `killed ${killed}`);
    const waited = await waitFor(async () => {
      if (!a.pubsub.isConnected()) return false;
      await b.pubsub.publishCacheInvalidation({ n: got.length });
      await sleep(20);
      return got.length > 0;
    }, { timeoutMs: 15_000, everyMs: 100 });
    console.log(`# CLIENT KILL TYPE pubsub: messages flow again after ${waited.toFixed(0)} ms, resubscribes ${a.pubsub.status().resubscribes}`);
    assert.ok(waited >= 0, 'no message after the kill');
    assert.ok(a.pubsub.status().resubscribes >= 1);
  });
});

describe('network faults: process guards', () => {
  it('0 unhandled rejections and 0 uncaught exceptions', () => {
    assert.equal(guard.unhandled, 0, String(guard.reasons));
    assert.equal(guard.uncaught, 0, String(guard.reasons));
  });
});
