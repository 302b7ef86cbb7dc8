'use strict';
// The per-feature failure policy with Redis down (killed): reads → loaders; the limiter fails
// open except on the auth endpoints, where the in-process insurance limiter keeps the process
// within `max`; locks are refused with a code; publish returns 0 and is counted in stats().

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const http = require('http');
const { createCache } = require('..');
const { startRedis } = require('./helpers/redis');
const { guardProcess } = require('./helpers/faults');

const guard = guardProcess();

// One request through a middleware on a plain node:http server → status code.
function through(mw, path) {
  return new Promise((resolve, reject) => {
    const srv = http.createServer((req, res) => {
      mw(req, res, (err) => {
        res.statusCode = err ? 500 : 200;
        res.end();
      });
    });
    srv.listen(0, '127.0.0.1', () => {
      const req = http.get({ port: srv.address().port, path, host: '127.0.0.1', agent: false }, (res) => {
        res.resume();
        res.on('end', () => srv.close(() => resolve(res.statusCode)));
      });
      req.on('error', (e) => srv.close(() => reject(e)));
    });
  });
}

describe('failure policy with Redis down', () => {
  let server;
  let cache;
  let plain;
  before(async () => {
    server = await startRedis();
    cache = createCache({ url: server.url, commandTimeoutMs: 200, loaders: { session: async (t) => ({ user_id: 1, t }) } });
    plain = createCache({ url: server.url, commandTimeoutMs: 200, rateLimitInsurance: false });
    await cache.ping();
    await plain.ping();
    await server.kill();
  });
  after(async () => {
    await cache.shutdown();
    await plain.shutdown();
    await server.stop();
  });

  it('rejects a bad rateLimitInsurance option', () => {
    for (const bad of ['yes', 1, [1], ['']]) {
      assert.throws(() => createCache({ url: 'memory://x', rateLimitInsurance: bad }), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG');
    }
  });

  it('auth endpoints: the insurance limiter keeps this process within max (login 5 / 60 s)', async () => {
    const answers = [];
    for (let i = 0; i < 8; i++) answers.push((await cache.rateLimiter.checkLimit('203.0.113.5', '/api/auth/login')).allowed);
    assert.deepEqual(answers, [true, true, true, true, true, false, false, false]);
    // another IP has its own window
    assert.equal((await cache.rateLimiter.checkLimit('203.0.113.6', '/api/auth/login')).allowed, true);
    const st = cache.stats().rateLimit;
    assert.ok(st.insured >= 9 && st.fallbacks >= 9 && st.errors >= 9, JSON.stringify(st));
  });

  it('other endpoints fail open; rateLimitInsurance: false fails open everywhere', async () => {
    for (let i = 0; i < 150; i++) assert.equal((await cache.rateLimiter.checkLimit('203.0.113.7', '/api/orders')).allowed, true);
    for (let i = 0; i < 8; i++) assert.equal((await plain.rateLimiter.checkLimit('203.0.113.5', '/api/auth/login')).allowed, true);
    for (let i = 0; i < 8; i++) assert.equal(await through(plain.rateLimiter.authLimiter, '/api/auth/login'), 200);
    assert.equal(plain.stats().rateLimit.insured, 0);
  });

  it('authLimiter (middleware) answers 429 past max on any path while Redis is down; a plain limiter passes', async () => {
    const codes = [];
    for (let i = 0; i < 7; i++) codes.push(await through(cache.rateLimiter.authLimiter, '/login-alias'));
    assert.deepEqual(codes, [200, 200, 200, 200, 200, 429, 429]);
    const open = cache.rateLimiter.createLimiter({ max: 2, windowSec: 60 });
    const insured = cache.rateLimiter.createLimiter({ max: 2, windowSec: 60, insured: true });
    const a = [];
    const b = [];
    for (let i = 0; i < 4; i++) {
      a.push(await through(open, '/x-open'));
      b.push(await through(insured, '/x-insured'));
    }
    assert.deepEqual(a, [200, 200, 200, 200]);
    assert.deepEqual(b, [200, 200, 429, 429]);
  });

  it('locks are refused with a code; publish returns 0 and is counted; reads go to the loader', async () => {
    const lock = await cache.distributedLock.acquire('payment', 'p1');
    assert.equal(lock.acquired, false);
    assert.ok(['ECACHEUNAVAILABLE', 'ETIMEDOUT', 'ECIRCUITOPEN'].includes(lock.code), lock.code);
    const before = cache.stats().pubsub.errors;
    assert.equal(await cache.pubsub.publishPermissionInvalidation({ userId: 1 }), 0);
    assert.equal(await cache.pubsub.publishSessionInvalidation({ userId: 1 }), 0);
    assert.equal(cache.stats().pubsub.errors, before + 2);
    assert.equal((await cache.getSessionWithFallback('tok')).source, 'database');
  });

  it('0 unhandled rejections and 0 uncaught exceptions', () => {
    assert.equal(guard.unhandled, 0, String(guard.reasons));
    assert.equal(guard.uncaught, 0, String(guard.reasons));
  });
});
