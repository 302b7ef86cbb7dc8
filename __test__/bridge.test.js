'use strict';
// The JS half of the boundary (lib/bridge.js): every promise waits in a reused slot; an
// answer names its slot and the id in it, so an answer meant for a slot's earlier occupant
// (or for an id that never waited) is dropped, never given to the operation now there.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const express = require('express');
const { createCache } = require('..');
const { startRedis } = require('./helpers/redis');
const { BATCH } = require('../lib/rules');

delete process.env.REDIS_URL;

// Runs `fn(cache, bridge)` on a fresh memory:// instance, shut down afterwards.
async function onMemory(fn) {
  const cache = createCache({ url: 'memory://' });
  try {
    await fn(cache, cache.ctx.bridge);
  } finally {
    await cache.shutdown();
  }
}

// A delivery as the native side makes it (Batch in src/bridge.rs) of `[id, value, …]`: each
// value travels in the values array, an Error as a failure.
function batchOf(...pairs) {
  const head = new Float64Array((pairs.length / 2) * BATCH.row);
  const values = [];
  for (let i = 0; i < pairs.length; i += 2) {
    const row = (i / 2) * BATCH.row;
    head[row] = pairs[i];
    head[row + 1] = pairs[i + 1] instanceof Error ? BATCH.error : BATCH.value;
    values.push(pairs[i + 1]);
  }
  return [head, values];
}

const settled = (p) => Promise.race([p.then((v) => ({ v }), (e) => ({ e })), new Promise((r) => setImmediate(() => r('pending')))]);

describe('the bridge', () => {
  it('an answer reaches the operation waiting in its slot, and only that one', () =>
    onMemory(async (cache, b) => {
      const first = b.nextId();
      const p1 = b.wait(first, (v) => `one:${v}`);
      b.onBatch(batchOf(first, 'a'));
      assert.deepEqual(await settled(p1), { v: 'one:a' });
      // the slot is free again: the next operation takes it under another id
      const second = b.nextId();
      assert.notEqual(second, first);
      assert.equal(second & 0xfffff, first & 0xfffff, 'the slot is reused');
      const p2 = b.wait(second, (v) => `two:${v}`);
      b.onBatch(batchOf(first, 'late answer of the first'));
      assert.equal(await settled(p2), 'pending', 'a late answer for the earlier occupant is dropped');
      b.onBatch(batchOf(second, Object.assign(new Error('boom'), { code: 'EX' })));
      const r = await settled(p2);
      assert.equal(r.e.code, 'EX');
      assert.equal(cache.stats().inFlight, 0);
    }));

  it('an id released without waiting (answered at once, or its start threw) is never answered to anyone', () =>
    onMemory(async (cache, b) => {
      const skipped = b.nextId();
      b.release(skipped);
      const id = b.nextId();
      assert.equal(id & 0xfffff, skipped & 0xfffff, 'the released slot is taken again');
      const p = b.wait(id);
      b.onBatch(batchOf(skipped, 'not for p'));
      assert.equal(await settled(p), 'pending');
      b.onBatch(batchOf(id, 'for p'));
      assert.deepEqual(await settled(p), { v: 'for p' });
      // a start that throws, and one that answers at once, free their slots
      await assert.rejects(
        cache.ctx.op(() => {
          throw new TypeError('refused');
        }),
        { message: 'refused' },
      );
      assert.equal(await cache.ctx.op(() => 'at once'), 'at once');
      assert.ok(b.ids.every((x) => x === 0), 'no slot stays reserved');
      assert.equal(cache.stats().inFlight, 0);
    }));

  it('an operation started before another one waits gets a slot of its own', () =>
    onMemory(async (cache, b) => {
      b.release(b.nextId()); // a free slot on the list
      const outer = b.nextId();
      const inner = b.nextId(); // started inside the outer one's start
      assert.notEqual(outer & 0xfffff, inner & 0xfffff);
      const pInner = b.wait(inner);
      const pOuter = b.wait(outer);
      b.onBatch(batchOf(outer, 'outer', inner, 'inner'));
      assert.deepEqual(await settled(pOuter), { v: 'outer' });
      assert.deepEqual(await settled(pInner), { v: 'inner' });
    }));

  // The delivery format: flags and numbers travel in the head row, the rest in the values in
  // order; a row of a kind the reader does not know (the native side's mark for an answer it
  // could not append) takes no value, so the answers after it still find theirs.
  it('every kind of head row answers its value, and the values are taken in order', () =>
    onMemory(async (cache, b) => {
      const kinds = [
        [BATCH.nil, 0, 0, null],
        [BATCH.boolFalse, 0, 0, false],
        [BATCH.boolTrue, 0, 0, true],
        [BATCH.num, -2.5, 0, -2.5],
        [BATCH.pair, 7, 59001, [7, 59001]],
        [BATCH.value, 0, 0, 'first value'],
        [255, 0, 0, 'pending'],
        [BATCH.value, 0, 0, 'second value'],
      ];
      const ids = kinds.map(() => b.nextId());
      const waits = ids.map((id) => b.wait(id));
      const head = new Float64Array(kinds.length * BATCH.row);
      kinds.forEach(([kind, x, y], i) => head.set([ids[i], kind, x, y], i * BATCH.row));
      const err = Object.assign(new Error('failed'), { code: 'EX' });
      const failing = b.nextId();
      const failed = b.wait(failing).then(() => 'answered', (e) => e);
      const withError = new Float64Array(BATCH.row);
      withError.set([failing, BATCH.error, 0, 0]);
      b.onBatch([head, ['first value', 'second value']]);
      b.onBatch([withError, [err]]);
      for (let i = 0; i < kinds.length; i++) {
        const got = await settled(waits[i]);
        assert.deepEqual(got === 'pending' ? got : got.v, kinds[i][3], `kind ${kinds[i][0]}`);
      }
      assert.equal(await failed, err);
      b.release(ids[6]);
    }));

  it('20,000 concurrent operations each get their own answer; the slots are reused afterwards', () =>
    onMemory(async (cache, b) => {
      const n = 20000;
      await Promise.all(Array.from({ length: n }, (_, i) => cache.sessionCache.setSession(`bridge-${i}`, { user_id: i, i })));
      const got = await Promise.all(Array.from({ length: n }, (_, i) => cache.sessionCache.getSession(`bridge-${i}`)));
      got.forEach((s, i) => assert.equal(s.i, i));
      const slots = cache.ctx.bridge.ids.length;
      assert.ok(slots <= n, `slots: ${slots}`);
      for (let r = 0; r < 3; r++) await Promise.all(Array.from({ length: 1000 }, (_, i) => cache.sessionCache.getSession(`bridge-${i}`)));
      assert.equal(cache.ctx.bridge.ids.length, slots, 'no new slots: freed ones were reused');
      assert.equal(cache.stats().inFlight, 0);
    }));

  // Hardening 2: past 2^20 operations in flight ERR_CACHE_OVERLOAD was a RangeError that
  // rejected every call (on 38acc57 getSessionWithFallback rejected instead of asking the
  // loader, checkLimit rejected instead of failing open). It is a back-end failure now: reads
  // fall back to the loaders, limits fail open (failClosed: 503), locks are refused.
  for (const backend of ['memory', 'redis']) {
    it(`past 2^20 operations in flight (${backend}): reads ask the loaders, limits fail open or 503, locks are refused`, async () => {
      const server = backend === 'redis' ? await startRedis() : null;
      const url = server ? server.url : 'memory://';
      let loads = 0;
      const cache = createCache({ url, loaders: { session: async (t) => (loads++, { user_id: 7, token: t }) } });
      const app = express();
      app.get('/open', cache.rateLimiter.createLimiter({ max: 5, windowSec: 60 }), (req, res) => res.send('ok'));
      app.get('/closed', cache.rateLimiter.createLimiter({ max: 5, windowSec: 60, failClosed: true }), (req, res) => res.send('ok'));
      const http = await new Promise((resolve) => {
        const s = app.listen(0, '127.0.0.1', () => resolve(s));
      });
      const base = `http://127.0.0.1:${http.address().port}`;
      try {
        const b = cache.ctx.bridge;
        b.ids.length = 1 << 20; // as if every slot were taken
        b.free.length = 0;
        const session = await cache.getSessionWithFallback('tok-overload');
        assert.deepEqual(session, { user_id: 7, token: 'tok-overload', source: 'database' });
        assert.equal(loads, 1);
        assert.equal(await cache.sessionCache.getSession('x'), null, 'a cache-only read answers a miss');
        const limit = await cache.rateLimiter.checkLimit('1.2.3.4', '/api/orders');
        assert.equal(limit.allowed, true, 'fails open');
        const lock = await cache.distributedLock.acquire('payment', 1);
        assert.equal(lock.acquired, false);
        assert.equal(lock.code, 'ERR_CACHE_OVERLOAD');
        await assert.rejects(cache.distributedLock.withLock('payment', 1, () => assert.fail('fn never runs')), { code: 'ERR_CACHE_OVERLOAD' });
        assert.equal((await fetch(`${base}/open`)).status, 200);
        assert.equal((await fetch(`${base}/closed`)).status, 503);
        const st = cache.stats();
        assert.ok(st.session.errors >= 2 && st.rateLimit.errors >= 1 && st.lock.errors >= 1, JSON.stringify(st));
        console.log(`Hardening 2 (${backend}): with 2^20 operations in flight: session from the loader (${loads} call), checkLimit allowed, lock refused (${lock.code}), /open 200, /closed 503; errors counted: session ${st.session.errors}, rateLimit ${st.rateLimit.errors}, lock ${st.lock.errors}`);
        b.ids.length = 0;
        assert.equal(await cache.sessionCache.getSession('x'), null, 'served again once slots are free');
        assert.equal((await cache.distributedLock.acquire('payment', 2)).acquired, true);
      } finally {
        await new Promise((resolve) => {
          http.closeAllConnections();
          http.close(resolve);
        });
        await cache.shutdown();
        if (server) await server.stop();
      }
    });
  }
});
