'use strict';
// The circuit breaker against a real redis-server that is killed and hung (SIGSTOP):
// after circuitThreshold consecutive link failures Redis is skipped (ECIRCUITOPEN, answers
// from the fallback path at once), isEnabled() is false, ping() reports the state and still
// probes Redis, and the circuit closes once Redis answers again.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache } = require('..');
const { startRedis, sleep } = require('./helpers/redis');
const { guardProcess, waitFor } = require('./helpers/faults');

const guard = guardProcess();

// One lock attempt: its answer shows the failure code of the back end. (A failed attempt
// also queues a background cleanup of a possible phantom lock, which feeds the breaker too:
// the threshold is counted with plain reads.)
const lockCode = async (cache) => (await cache.distributedLock.acquire('task', 'circuit-probe', { ttlSec: 5 })).code;
// One plain read (answers null on any failure) → the circuit state after it.
const readState = async (cache) => {
  assert.equal(await cache.sessionCache.getSession('circuit-read'), null);
  return cache.stats().circuit;
};

describe('circuit breaker', () => {
  let server;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  it('rejects bad circuit options with a code', () => {
    for (const [opts, code] of [
      [{ circuitThreshold: -1 }, 'ERR_OUT_OF_RANGE'],
      [{ circuitThreshold: 1.5 }, 'ERR_OUT_OF_RANGE'],
      [{ circuitCooldownMs: 0 }, 'ERR_OUT_OF_RANGE'],
    ]) {
      assert.throws(() => createCache({ url: server.url, ...opts }), (e) => e instanceof RangeError && e.code === code);
    }
  });

  it('opens after the threshold on a killed Redis, answers at once, and closes after a ping once it is back', async () => {
    const cache = createCache({
      url: server.url,
      commandTimeoutMs: 200,
      circuitThreshold: 3,
      circuitCooldownMs: 60_000,
      loaders: { session: async (token) => ({ user_id: 1, token }) },
    });
    try {
      assert.equal((await cache.ping()).circuit, 'closed');
      await server.kill();
      const states = [];
      for (let i = 0; i < 3; i++) states.push(await readState(cache));
      assert.deepEqual(states, ['closed', 'closed', 'open']);
      assert.equal(await lockCode(cache), 'ECIRCUITOPEN');
      assert.equal(cache.isEnabled(), false);
      // Reads go to the loader at once.
      const t0 = performance.now();
      const s = await cache.getSessionWithFallback('tok-1');
      const ms = performance.now() - t0;
      assert.equal(s.source, 'database');
      assert.ok(ms < 100, `a read with the circuit open took ${ms.toFixed(1)} ms`);
      assert.ok(cache.stats().session.errors >= 1);
      // ping probes Redis (down: still open).
      const p = await cache.ping();
      assert.equal(p.enabled, false);
      assert.equal(p.circuit, 'open');
      await server.start();
      // A health check's ping closes it (no need to wait the 60 s cool-down).
      const waited = await waitFor(async () => (await cache.ping()).circuit === 'closed', { timeoutMs: 5000, everyMs: 50 });
      assert.ok(waited >= 0, 'ping did not close the circuit');
      console.log(`# circuit closed by ping ${waited.toFixed(0)} ms after Redis returned`);
      assert.equal(cache.isEnabled(), true);
      const again = await cache.distributedLock.acquire('task', 'circuit-probe', { ttlSec: 5 });
      assert.equal(again.acquired, true);
    } finally {
      await cache.shutdown();
    }
  });

  it('goes half-open after the cool-down and one successful probe closes it', async () => {
    const cache = createCache({ url: server.url, commandTimeoutMs: 150, circuitThreshold: 2, circuitCooldownMs: 400 });
    try {
      await cache.ping();
      server.pause();
      try {
        const states = [];
        for (let i = 0; i < 2; i++) states.push(await readState(cache));
        assert.deepEqual(states, ['closed', 'open']);
        const t0 = performance.now();
        assert.equal(await lockCode(cache), 'ECIRCUITOPEN');
        assert.ok(performance.now() - t0 < 100);
        assert.equal(cache.isEnabled(), false);
      } finally {
        server.resume();
      }
      await sleep(450);
      // The pipeline may still be re-making its link after the hang: the probe that gets
      // through closes it.
      const waited = await waitFor(async () => {
        const r = await cache.distributedLock.acquire('task', `half-open-${Math.random()}`, { ttlSec: 5 });
        return r.acquired === true;
      }, { timeoutMs: 5000, everyMs: 50 });
      assert.ok(waited >= 0, 'no probe closed the circuit');
      const p = await cache.ping();
      assert.equal(p.circuit, 'closed');
      assert.equal(cache.isEnabled(), true);
    } finally {
      await cache.shutdown();
    }
  });

  it('a failed probe keeps it open; threshold 0 never opens', async () => {
    const off = createCache({ url: server.url, commandTimeoutMs: 100, circuitThreshold: 0 });
    const on = createCache({ url: server.url, commandTimeoutMs: 100, circuitThreshold: 1, circuitCooldownMs: 200 });
    try {
      await off.ping();
      await on.ping();
      server.pause();
      try {
        const offStates = [];
        for (let i = 0; i < 4; i++) offStates.push(await readState(off));
        assert.deepEqual(offStates, ['closed', 'closed', 'closed', 'closed']);
        const offCode = await lockCode(off);
        assert.ok(offCode === 'ETIMEDOUT' || offCode === 'ECACHEUNAVAILABLE', offCode);
        assert.equal(await readState(on), 'open');
        assert.equal(await lockCode(on), 'ECIRCUITOPEN');
        await sleep(250);
        assert.equal(on.stats().circuit, 'half-open');
        // half-open: the probe goes to the hung Redis and fails → open again
        const t0 = performance.now();
        assert.equal(await readState(on), 'open');
        assert.ok(performance.now() - t0 >= 90, 'the probe went to Redis');
        assert.equal(await lockCode(on), 'ECIRCUITOPEN');
        assert.equal((await on.ping()).circuit, 'open');
      } finally {
        server.resume();
      }
    } finally {
      await off.shutdown();
      await on.shutdown();
    }
  });

  it('nothing that failed during an outage reaches Redis when it returns (no replay, no misaligned reply)', async () => {
    const { commandStats } = require('./helpers/faults');
    const cache = createCache({ url: server.url, commandTimeoutMs: 200, circuitThreshold: 0 });
    try {
      assert.equal((await cache.ping()).pong, 'PONG');
      await server.kill();
      let refused = 0;
      for (let i = 0; i < 50; i++) {
        if ((await cache.pubsub.publishCacheInvalidation({ i })) === 0) refused++;
        if ((await cache.sessionCache.setSession(`outage-${i}`, { user_id: i })) === false) refused++;
        if ((await cache.sessionCache.getSession(`outage-${i}`)) === null) refused++;
      }
      assert.equal(refused, 150);
      await server.start();
      // The first answers after the return belong to their own commands.
      const waited = await waitFor(async () => (await cache.ping()).pong === 'PONG', { timeoutMs: 5000, everyMs: 20 });
      assert.ok(waited >= 0);
      assert.equal(await cache.sessionCache.getSession('outage-1'), null);
      assert.equal(await cache.sessionCache.setSession('after', { user_id: 1 }), true);
      assert.equal((await cache.sessionCache.getSession('after')).user_id, 1);
      const stats = await commandStats(server);
      const keys = await server.client().keys('*outage-*');
      console.log(`# replay: 150 calls failed during the outage; the restarted server saw publish=${stats.publish || 0}, outage keys ${keys.length}`);
      assert.equal(stats.publish || 0, 0);
      assert.deepEqual(keys, []);
      assert.ok((stats.get || 0) <= 2, `GETs: ${stats.get}`);
    } finally {
      await cache.shutdown();
    }
  });

  it('memory:// and a disabled cache report a closed circuit', async () => {
    const mem = createCache({ url: 'memory://circuit' });
    assert.equal((await mem.ping()).circuit, 'closed');
    const disabled = createCache({ url: '' });
    const p = await disabled.ping();
    assert.equal(p.enabled, false);
    assert.equal(p.circuit, 'closed');
  });

  it('no unhandled rejection or uncaught exception in this file', () => {
    assert.equal(guard.unhandled, 0, String(guard.reasons));
    assert.equal(guard.uncaught, 0, String(guard.reasons));
  });
});
