'use strict';
// `@bisman/cache/express-rate-limit`: an express-rate-limit v8 Store, in real Express apps, on a
// real redis-server and on memory://: one count shared by two app instances, resetKey, get,
// decrement through express-rate-limit's skipSuccessfulRequests, request keys that cannot inject
// key syntax or length, and the failure policy (a hung Redis or no back end: increment rejects
// within commandTimeoutMs and express-rate-limit's passOnStoreError decides).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { performance } = require('perf_hooks');
const express = require('express');
const { rateLimit } = require('express-rate-limit');
const { createCache } = require('..');
const { RateLimitStore } = require('../express-rate-limit');
const { BACKENDS } = require('./helpers/backends');
const { serve } = require('./helpers/http');
const { startRedis } = require('./helpers/redis');

delete process.env.REDIS_URL; // these tests choose their back end explicitly

const uid = () => crypto.randomBytes(6).toString('hex');

// An app whose route answers `x-status` (default 200), behind an express-rate-limit limiter
// keyed by the `x-client` header.
function appWith(limiterOptions) {
  const app = express();
  app.use(rateLimit({ keyGenerator: (req) => req.get('x-client') || 'none', standardHeaders: 'draft-7', legacyHeaders: false, ...limiterOptions }));
  app.get('/r', (req, res) => res.status(Number(req.get('x-status') || 200)).json({ ok: true }));
  app.use((err, req, res, _next) => res.status(500).json({ error: err.message, code: err.code }));
  return app;
}

async function get(base, client, status) {
  const headers = { 'x-client': client };
  if (status !== undefined) headers['x-status'] = String(status);
  const r = await fetch(`${base}/r`, { headers });
  await r.text();
  return r.status;
}

for (const [name, make] of BACKENDS) {
  describe(`express-rate-limit store on ${name}`, () => {
    let backend;
    let cacheA;
    let cacheB;

    before(async () => {
      backend = await make();
      cacheA = createCache({ url: backend.url });
      cacheB = createCache({ url: backend.url });
    });
    after(async () => {
      await cacheA.shutdown();
      await cacheB.shutdown();
      await backend.close();
    });

    it('two app instances on one back end share one count; get and resetKey see and clear it', async () => {
      const prefix = `two-${uid()}`;
      const storeA = new RateLimitStore({ cache: cacheA, prefix });
      const storeB = new RateLimitStore({ cache: cacheB, prefix });
      const a = await serve(appWith({ windowMs: 30_000, limit: 3, store: storeA }));
      const b = await serve(appWith({ windowMs: 30_000, limit: 3, store: storeB }));
      try {
        const client = `c-${uid()}`;
        const statuses = [];
        for (const s of [a, b, a, b, a]) statuses.push(await get(s.base, client));
        const info = await storeB.get(client);
        console.log(`# ERL store (${name}): limit 3 across two instances A,B,A,B,A → ${statuses.join(',')}; get → ${info.totalHits} hits`);
        assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
        assert.equal(info.totalHits, 5);
        const left = info.resetTime.getTime() - Date.now();
        assert.ok(left > 25_000 && left <= 30_000, `resetTime ${left} ms ahead`);
        assert.equal(await storeA.get(`other-${uid()}`), undefined);
        const ttl = await backend.pttl(`rate:${client}:~${prefix}`);
        assert.ok(ttl > 25_000 && ttl <= 30_000, `the counter carries its window: ${ttl}`);
        await storeA.resetKey(client);
        assert.equal(await get(b.base, client), 200, 'resetKey on one instance frees the client on the other');
        assert.equal((await storeA.get(client)).totalHits, 1);
        assert.equal(storeA.prefix, prefix);
        assert.equal(storeA.localKeys, false);
      } finally {
        await a.close();
        await b.close();
      }
    });

    it("express-rate-limit's skipSuccessfulRequests decrements: successes are free, failures count", async () => {
      const store = new RateLimitStore({ cache: cacheA, prefix: `skip-${uid()}` });
      const s = await serve(appWith({ windowMs: 30_000, limit: 2, store, skipSuccessfulRequests: true }));
      try {
        const client = `c-${uid()}`;
        const statuses = [];
        for (let i = 0; i < 5; i++) statuses.push(await get(s.base, client));
        const deadline = performance.now() + 2000;
        while ((await store.get(client)).totalHits !== 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 5));
        assert.equal((await store.get(client)).totalHits, 0, 'every success was taken back');
        for (let i = 0; i < 3; i++) statuses.push(await get(s.base, client, 401));
        console.log(`# ERL store skipSuccessfulRequests (${name}): 5 × 200 then 3 × 401 → ${statuses.join(',')}`);
        assert.deepEqual(statuses, [200, 200, 200, 200, 200, 401, 401, 429]);
        await store.decrement(`never-${uid()}`);
        assert.equal(await store.get(`never-${uid()}`), undefined, 'a decrement never makes a counter');
      } finally {
        await s.close();
      }
    });

    it('any request key is an answer and a bounded key; a window under a second is a second', async () => {
      const store = new RateLimitStore({ cache: cacheA, prefix: `odd-${uid()}` });
      store.init({ windowMs: 500, limit: 2 });
      const odd = ['x'.repeat(100_000), '*', 'a b\r\nFLUSHALL', '[x]?', '\u0000', 'é😀', '~forged', '2001:db8::/56', '1.2.3.4'];
      for (const k of odd) {
        const r = await store.increment(k);
        assert.equal(r.totalHits, 1, JSON.stringify(k.slice(0, 20)));
        assert.ok(r.resetTime.getTime() - Date.now() <= 1000);
      }
      const keys = (await backend.keys()).filter((k) => k.endsWith(`~${store.prefix}`));
      assert.equal(keys.length, odd.length, 'one counter per key, none shared');
      for (const k of keys) assert.ok(k.length < 120, `bounded: ${k.length}`);
      assert.ok(keys.includes(`rate:1.2.3.4:~${store.prefix}`) && keys.includes(`rate:2001:db8::/56:~${store.prefix}`), 'plain keys are kept readable');
    });
  });
}

describe('express-rate-limit store: failure policy, module surface', () => {
  it('a hung Redis (SIGSTOP): passOnStoreError false → 500, true → passes; each answer within commandTimeoutMs + 150 ms', async () => {
    const server = await startRedis();
    const T = 200;
    const c = createCache({ url: server.url, commandTimeoutMs: T });
    const app = express();
    const closed = rateLimit({ windowMs: 60_000, limit: 5, store: new RateLimitStore({ cache: c, prefix: 'hung-closed' }), keyGenerator: () => 'k' });
    const open = rateLimit({ windowMs: 60_000, limit: 5, store: new RateLimitStore({ cache: c, prefix: 'hung-open' }), keyGenerator: () => 'k', passOnStoreError: true });
    app.get('/closed', closed, (req, res) => res.json({ ok: true }));
    app.get('/open', open, (req, res) => res.json({ ok: true }));
    app.use((err, req, res, _next) => res.status(500).json({ code: err.code }));
    const s = await serve(app);
    const logged = [];
    const origError = console.error;
    try {
      assert.equal((await fetch(`${s.base}/closed`)).status, 200, 'Redis up: counted and passed');
      server.pause();
      console.error = (...args) => logged.push(args.map(String).join(' '));
      const times = [];
      const statuses = [];
      for (const path of ['/closed', '/open', '/closed', '/open']) {
        const t0 = performance.now();
        const r = await fetch(s.base + path);
        await r.text();
        times.push(Math.round(performance.now() - t0));
        statuses.push(r.status);
      }
      console.error = origError;
      console.log(`# ERL store, hung Redis: /closed,/open,/closed,/open → ${statuses.join(',')} in ${times.join(',')} ms (commandTimeoutMs ${T})`);
      assert.deepEqual(statuses, [500, 200, 500, 200]);
      for (const t of times) assert.ok(t <= T + 150, `answered in ${t} ms`);
      assert.ok(logged.some((l) => /error from store/.test(l)), 'express-rate-limit logged the store error it passed over');
    } finally {
      console.error = origError;
      server.resume();
      await s.close();
      await c.shutdown();
      await server.stop();
    }
  });

  it('no back end configured: increment rejects with the cache error code (ERL decides), the others answer', async () => {
    const c = createCache({});
    try {
      const store = new RateLimitStore({ cache: c });
      store.init({ windowMs: 1000, limit: 1 });
      await assert.rejects(store.increment('k'), (e) => typeof e.code === 'string' && e.code.length > 0);
      await store.decrement('k');
      await store.resetKey('k');
      assert.equal(await store.get('k'), undefined);
    } finally {
      await c.shutdown();
    }
  });

  it('options are validated with a code; the default cache is the module; CJS and ESM give the same class', async () => {
    assert.throws(() => new RateLimitStore({ prefix: 'a b' }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new RateLimitStore({ prefix: 5 }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
    assert.throws(() => new RateLimitStore({ cache: {} }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
    assert.throws(() => new RateLimitStore(null), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
    const s = new RateLimitStore();
    assert.equal(s.limiter, require('..').rateLimiter);
    assert.equal(s.prefix, 'erl');
    assert.throws(() => s.init({ windowMs: 0 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => s.init({ windowMs: 1e12 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    const cjs = require('@bisman/cache/express-rate-limit');
    const esm = await import('@bisman/cache/express-rate-limit');
    assert.equal(cjs, RateLimitStore);
    assert.equal(cjs.default, RateLimitStore);
    assert.equal(esm.default, RateLimitStore);
    assert.equal(esm.RateLimitStore, RateLimitStore);
  });
});
