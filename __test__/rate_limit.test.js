'use strict';
// rateLimiter against a real redis-server and against memory://: every behaviour of API.md,
// the Express middleware over real HTTP, and the failure behaviour on real Redis processes.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { serve } = require('./helpers/http');
const crypto = require('crypto');
const path = require('path');
const { spawn } = require('child_process');
const { performance } = require('perf_hooks');
const express = require('express');
const { createCache } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { startRedis, freePort, sleep } = require('./helpers/redis');
const { runApp } = require('./helpers/guide');

delete process.env.REDIS_URL; // these tests choose their back end explicitly

const ROOT = path.join(__dirname, '..');
const uid = () => crypto.randomBytes(6).toString('hex');
// A fresh IPv4 address per test, so tests never share counters.
const freshIp = () => Array.from(crypto.randomBytes(4), (b) => String(b)).join('.');

async function rejectsWith(promise, Class, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Class, `expected ${Class.name}, got ${err && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, code);
    return true;
  });
}

async function call(base, urlPath, { method = 'GET', headers = {} } = {}) {
  const r = await fetch(base + urlPath, { method, headers });
  const text = await r.text();
  let body = text;
  try {
    body = JSON.parse(text);
  } catch {}
  const h = (n) => r.headers.get(n);
  return {
    status: r.status,
    body,
    limit: h('ratelimit-limit'),
    remaining: h('ratelimit-remaining'),
    reset: h('ratelimit-reset'),
    retryAfter: h('retry-after'),
    policy: h('ratelimit-policy'),
  };
}

// Commands a redis-server has executed (INFO commandstats, INFO itself left out).
async function redisCalls(client) {
  const info = await client.info('commandstats');
  let n = 0;
  for (const m of info.matchAll(/^cmdstat_([a-z|_-]+):calls=(\d+)/gm)) if (m[1] !== 'info') n += Number(m[2]);
  return n;
}

const ok = (req, res) => res.json({ ok: true });

for (const [name, make] of BACKENDS) {
  describe(`rateLimiter on ${name}`, () => {
    let backend;
    let cache;
    let rl;

    before(async () => {
      backend = await make();
      cache = createCache({
        url: backend.url,
        rateLimits: { '/short': { max: 2, windowSec: 2 }, '/custom': { max: 7, windowSec: 30 } },
      });
      rl = cache.rateLimiter;
    });
    after(async () => {
      await cache.shutdown();
      await backend.close();
    });

    it('checkLimit counts each hit and answers { allowed, remaining, resetIn, total, limit }', async () => {
      const ip = freshIp();
      const first = await rl.checkLimit(ip, '/api/auth/login');
      assert.deepEqual(first, { allowed: true, remaining: 4, resetIn: 60, total: 1, limit: 5 });
      for (let i = 2; i <= 5; i++) {
        const r = await rl.checkLimit(ip, '/api/auth/login');
        assert.equal(r.allowed, true);
        assert.equal(r.total, i);
        assert.equal(r.remaining, 5 - i);
        assert.ok(r.resetIn > 50 && r.resetIn <= 60, `resetIn ${r.resetIn}`);
      }
      const sixth = await rl.checkLimit(ip, '/api/auth/login');
      assert.equal(sixth.allowed, false);
      assert.equal(sixth.total, 6);
      assert.equal(sixth.remaining, 0);
      assert.equal(sixth.limit, 5);
      assert.ok(Number.isInteger(sixth.resetIn) && sixth.resetIn > 0);
    });

    it('the default limits of the guide apply by endpoint, else the default', async () => {
      const ip = freshIp();
      const limitOf = async (e) => (await rl.checkLimit(ip, e)).limit;
      assert.equal(await limitOf('/api/auth/login'), 5);
      assert.equal(await limitOf('/api/auth/register'), 3);
      assert.equal(await limitOf('/api/otp/send'), 3);
      assert.equal(await limitOf('/api/payments'), 30);
      assert.equal(await limitOf('/api/anything-else'), 100);
    });

    it('rateLimits overrides and extends the defaults; the default entry can be replaced', async () => {
      const ip = freshIp();
      assert.equal((await rl.checkLimit(ip, '/custom')).limit, 7);
      assert.equal((await rl.checkLimit(ip, '/api/auth/login')).limit, 5, 'unnamed defaults stay');
      const c = createCache({ url: backend.url, rateLimits: { default: { max: 2, windowSec: 10 }, '/api/auth/login': { max: 1, windowSec: 10 } } });
      try {
        const other = freshIp();
        const login1 = await c.rateLimiter.checkLimit(other, '/api/auth/login');
        const login2 = await c.rateLimiter.checkLimit(other, '/api/auth/login');
        assert.deepEqual([login1.allowed, login2.allowed, login1.limit], [true, false, 1]);
        const d = await c.rateLimiter.checkLimit(other, '/zzz');
        assert.equal(d.limit, 2);
        assert.ok(d.resetIn <= 10);
      } finally {
        await c.shutdown();
      }
    });

    it('the counter is rate:{ip}:{endpoint} with its window as TTL, and every key it writes has a TTL', async () => {
      const ip = freshIp();
      await rl.checkLimit(ip, '/api/auth/login');
      await rl.checkLimit(ip, '/custom');
      const keys = (await backend.keys()).filter((k) => k.includes(ip));
      assert.ok(keys.includes(`rate:${ip}:_api_auth_login`), keys.join());
      assert.ok(keys.includes(`rate:${ip}:_custom`), keys.join());
      const login = await backend.pttl(`rate:${ip}:_api_auth_login`);
      assert.ok(login > 50_000 && login <= 60_000, `pttl ${login}`);
      const custom = await backend.pttl(`rate:${ip}:_custom`);
      assert.ok(custom > 20_000 && custom <= 30_000, `pttl ${custom}`);
      for (const k of keys) {
        const t = await backend.pttl(k);
        assert.ok(t > 0 && t <= 60_000, `${k} has pttl ${t}`);
      }
    });

    it('a window ends: the counter key expires with it and counting starts again', async () => {
      const ip = freshIp();
      assert.equal((await rl.checkLimit(ip, '/short')).allowed, true);
      assert.equal((await rl.checkLimit(ip, '/short')).allowed, true);
      const blocked = await rl.checkLimit(ip, '/short');
      assert.equal(blocked.allowed, false);
      assert.ok(blocked.resetIn >= 1 && blocked.resetIn <= 2, `resetIn ${blocked.resetIn}`);
      await sleep(2150);
      assert.equal(await backend.pttl(`rate:${ip}:_short`), -2, 'no key outlives its window');
      assert.equal((await backend.keys()).filter((k) => k.includes(ip)).length, 0, 'nor does the index');
      const again = await rl.checkLimit(ip, '/short');
      assert.deepEqual([again.allowed, again.total], [true, 1]);
    });

    it('200 concurrent hits admit exactly the limit', async () => {
      const ip = freshIp();
      const results = await Promise.all(Array.from({ length: 200 }, () => rl.checkLimit(ip, '/api/payments')));
      assert.equal(results.filter((r) => r.allowed).length, 30);
      assert.deepEqual(results.map((r) => r.total).sort((a, b) => a - b), Array.from({ length: 200 }, (_, i) => i + 1));
    });

    it('instances sharing the back end share the counters, and together admit exactly the limit', async () => {
      const others = Array.from({ length: 4 }, () => createCache({ url: backend.url }));
      try {
        const ip = freshIp();
        const results = await Promise.all(
          others.flatMap((c) => Array.from({ length: 25 }, () => c.rateLimiter.checkLimit(ip, '/api/payments'))),
        );
        assert.equal(results.filter((r) => r.allowed).length, 30);
        assert.equal((await rl.checkLimit(ip, '/api/payments')).total, 101);
      } finally {
        for (const c of others) await c.shutdown();
      }
    });

    it('resetLimit removes one counter: 1 when it existed, 0 after; other endpoints stay', async () => {
      const ip = freshIp();
      for (let i = 0; i < 6; i++) await rl.checkLimit(ip, '/api/auth/login');
      await rl.checkLimit(ip, '/custom');
      assert.equal(await rl.resetLimit(ip, '/api/auth/login'), 1);
      assert.equal(await rl.resetLimit(ip, '/api/auth/login'), 0);
      assert.equal(await backend.pttl(`rate:${ip}:_api_auth_login`), -2);
      const r = await rl.checkLimit(ip, '/api/auth/login');
      assert.deepEqual([r.allowed, r.total], [true, 1]);
      assert.equal((await rl.checkLimit(ip, '/custom')).total, 2);
    });

    it("resetAllLimitsForIp removes that IP's counters only, IPv6 included, and returns how many", async () => {
      // every IPv6 address on its own (ipv6Subnet: false): the exactness of the per-IP index
      const rl = createCache({ url: backend.url, ipv6Subnet: false, rateLimits: { '/custom': { max: 7, windowSec: 30 } } }).rateLimiter;
      const tag = uid();
      // spelled canonically (RFC 5952: no leading zeros in a group), as the keys store it
      const v6 = `fd00:${(0x1000 | parseInt(tag.slice(0, 4), 16)).toString(16)}::1`;
      const v6Longer = `${v6}:2`; // `rate:fd00:…::1:*` would match this one too
      const v4 = freshIp();
      const v4Longer = `${v4}5`;
      for (const ip of [v6, v6Longer, v4, v4Longer]) {
        await rl.checkLimit(ip, '/api/auth/login');
        await rl.checkLimit(ip, '/api/payments');
      }
      await rl.checkLimit(v6, '/custom');
      assert.equal(await rl.resetAllLimitsForIp(v6), 3);
      assert.equal(await rl.resetAllLimitsForIp(v4), 2);
      assert.equal(await rl.resetAllLimitsForIp(v6), 0);
      assert.deepEqual(await rl.getIpStatus(v6), {});
      assert.equal((await rl.checkLimit(v6Longer, '/api/auth/login')).total, 2, 'the other IPv6 address keeps its counter');
      assert.equal((await rl.checkLimit(v4Longer, '/api/auth/login')).total, 2);
      const keys = await backend.keys();
      assert.equal(keys.filter((k) => k === `rate:${v6}:_api_auth_login` || k === `rate:${v4}:_api_payments`).length, 0);
      assert.ok(keys.includes(`rate:${v6Longer}:_api_payments`));
      rl.ctx.shutdown();
    });

    it('getIpStatus lists the live counters with the endpoints as they were given', async () => {
      const ip = freshIp();
      for (let i = 0; i < 3; i++) await rl.checkLimit(ip, '/api/auth/login');
      await rl.checkLimit(ip, '/api/under_score/x');
      await rl.checkLimit(ip, 'no-slash');
      const status = await rl.getIpStatus(ip);
      assert.deepEqual(Object.keys(status).sort(), ['/api/auth/login', '/api/under_score/x', 'no-slash']);
      assert.deepEqual(status['/api/auth/login'].current, 3);
      assert.deepEqual(status['/api/auth/login'].limit, 5);
      assert.ok(status['/api/auth/login'].resetIn > 50 && status['/api/auth/login'].resetIn <= 60);
      assert.deepEqual([status['no-slash'].current, status['no-slash'].limit], [1, 100]);
      assert.ok(status['no-slash'].resetIn > 50 && status['no-slash'].resetIn <= 60);
      assert.deepEqual(await rl.getIpStatus(freshIp()), {});
    });

    it('getIpStatus leaves out counters whose window ended or that were reset', async () => {
      const ip = freshIp();
      await rl.checkLimit(ip, '/short');
      await rl.checkLimit(ip, '/custom');
      await rl.checkLimit(ip, '/api/payments');
      await rl.resetLimit(ip, '/api/payments');
      await sleep(2150);
      assert.deepEqual(Object.keys(await rl.getIpStatus(ip)), ['/custom']);
    });

    it('block cache: once over the limit, further hits in the window are answered in process, with no Redis call', async () => {
      const ip = freshIp();
      for (let i = 0; i < 5; i++) assert.equal((await rl.checkLimit(ip, '/api/auth/login')).allowed, true);
      const first = await rl.checkLimit(ip, '/api/auth/login');
      assert.deepEqual([first.allowed, first.total], [false, 6], 'the first blocked hit is counted in the store');
      const client = backend.server ? backend.server.client() : null;
      const callsBefore = client ? await redisCalls(client) : 0;
      const cachedBefore = cache.stats().rateLimit.blockCacheHits;
      const rs = [];
      for (let i = 0; i < 50; i++) rs.push(await rl.checkLimit(ip, '/api/auth/login'));
      rs.push(...(await Promise.all(Array.from({ length: 50 }, () => rl.checkLimit(ip, '/api/auth/login')))));
      if (client) assert.equal(await redisCalls(client), callsBefore, 'no command reached Redis');
      assert.equal(cache.stats().rateLimit.blockCacheHits - cachedBefore, 100);
      for (const r of rs) {
        assert.equal(r.allowed, false);
        assert.equal(r.remaining, 0);
        assert.equal(r.limit, 5);
        assert.ok(r.resetIn >= 1 && r.resetIn <= 60 && r.resetIn <= first.resetIn, `resetIn ${r.resetIn}`);
      }
      assert.equal(rs[99].total, 106, 'total keeps counting locally');
      assert.equal((await rl.getIpStatus(ip))['/api/auth/login'].current, 6, 'the store saw only the hits up to the first blocked one');
      // another endpoint of the same IP, and the same endpoint of another IP, still go to the store
      assert.equal((await rl.checkLimit(ip, '/custom')).total, 1);
      assert.equal((await rl.checkLimit(freshIp(), '/api/auth/login')).total, 1);
    });

    it('block cache: resetLimit and resetAllLimitsForIp let the IP in again at once', async () => {
      const ip = freshIp();
      for (let i = 0; i < 7; i++) await rl.checkLimit(ip, '/api/auth/login');
      assert.equal((await rl.checkLimit(ip, '/api/auth/login')).allowed, false);
      assert.equal(await rl.resetLimit(ip, '/api/auth/login'), 1);
      const again = await rl.checkLimit(ip, '/api/auth/login');
      assert.deepEqual([again.allowed, again.total], [true, 1]);
      for (let i = 0; i < 5; i++) await rl.checkLimit(ip, '/api/auth/login');
      for (let i = 0; i < 4; i++) await rl.checkLimit(ip, '/api/otp/send');
      assert.equal((await rl.checkLimit(ip, '/api/auth/login')).allowed, false);
      assert.equal((await rl.checkLimit(ip, '/api/otp/send')).allowed, false);
      assert.equal(await rl.resetAllLimitsForIp(ip), 2);
      assert.deepEqual([(await rl.checkLimit(ip, '/api/auth/login')).total, (await rl.checkLimit(ip, '/api/otp/send')).total], [1, 1]);
    });

    it("block cache: an entry lasts until the window ends, never longer (another instance's resets: hardening_rate_limit.test.js)", async () => {
      const other = createCache({ url: backend.url, rateLimits: { '/short': { max: 2, windowSec: 2 } } });
      try {
        const ip = freshIp();
        for (let i = 0; i < 3; i++) await other.rateLimiter.checkLimit(ip, '/short');
        const hitsBefore = other.stats().rateLimit.blockCacheHits;
        const cached = await other.rateLimiter.checkLimit(ip, '/short');
        assert.equal(cached.allowed, false);
        assert.equal(other.stats().rateLimit.blockCacheHits - hitsBefore, 1, 'answered from the block cache');
        assert.ok(cached.resetIn <= 2);
        await sleep(2150);
        const after = await other.rateLimiter.checkLimit(ip, '/short');
        assert.deepEqual([after.allowed, after.total], [true, 1], 'its window ended: the block is gone');
      } finally {
        await other.shutdown();
      }
    });

    it('bad input is refused with a typed error and writes nothing', async () => {
      const before = (await backend.keys()).sort();
      for (const bad of ['', '*', '1.2.3.*', 'a b', 'x\n', '[x]', 'a?', null, undefined, {}, [], 1.5, NaN, true]) {
        await rejectsWith(rl.checkLimit(bad, '/api/x'), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(rl.resetLimit(bad, '/api/x'), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(rl.resetAllLimitsForIp(bad), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(rl.getIpStatus(bad), TypeError, 'ERR_INVALID_ARG');
      }
      for (const bad of ['', '/a*', '/a b', '/[x]', null, 5, {}]) {
        await rejectsWith(rl.checkLimit('1.2.3.4', bad), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(rl.resetLimit('1.2.3.4', bad), TypeError, 'ERR_INVALID_ARG');
      }
      await rejectsWith(rl.checkLimit('x'.repeat(600), '/a'), RangeError, 'ERR_VALUE_TOO_LARGE');
      await rejectsWith(rl.checkLimit('1.2.3.4', `/${'x'.repeat(600)}`), RangeError, 'ERR_VALUE_TOO_LARGE');
      assert.deepEqual((await backend.keys()).sort(), before);
    });
  });
}

describe('rateLimiter options', () => {
  it('bad rateLimits are refused by createCache and configure, which keeps the old ones', async () => {
    const bad = [
      [5, TypeError],
      [[], TypeError],
      [{ '/x': 5 }, TypeError],
      [{ '/x': null }, TypeError],
      [{ '/x': { max: -1, windowSec: 60 } }, RangeError],
      [{ '/x': { max: 1.5, windowSec: 60 } }, RangeError],
      [{ '/x': { max: '5', windowSec: 60 } }, RangeError],
      [{ '/x': { max: 5, windowSec: 0 } }, RangeError],
      [{ '/x': { max: 5 } }, RangeError],
      [{ default: { max: 5, windowSec: 604801 } }, RangeError],
    ];
    for (const [rateLimits, Class] of bad) {
      assert.throws(() => createCache({ url: 'memory://', rateLimits }), (e) => e instanceof Class && typeof e.code === 'string', JSON.stringify(rateLimits));
    }
    const c = createCache({ url: 'memory://opts', rateLimits: { '/x': { max: 2, windowSec: 60 } } });
    try {
      assert.throws(() => c.configure({ url: 'memory://opts2', rateLimits: { '/x': { max: -1, windowSec: 60 } } }), RangeError);
      assert.equal((await c.rateLimiter.checkLimit(freshIp(), '/x')).limit, 2, 'the old table and back end stay');
      c.configure({ url: 'memory://opts2', rateLimits: { '/x': { max: 9, windowSec: 60 } } });
      assert.equal((await c.rateLimiter.checkLimit(freshIp(), '/x')).limit, 9);
    } finally {
      await c.shutdown();
    }
  });

  it('the module singleton rateLimiter (and its authLimiter) follows configure()', async () => {
    const mod = require('..');
    const ip = freshIp();
    mod.configure({ url: 'memory://rl-single-a', rateLimits: { '/api/auth/login': { max: 1, windowSec: 60 } } });
    const app = express();
    app.post('/api/auth/login', mod.rateLimiter.authLimiter, ok);
    const srv = await serve(app);
    try {
      assert.equal((await mod.rateLimiter.checkLimit(ip, '/api/auth/login')).limit, 1);
      assert.equal((await call(srv.base, '/api/auth/login', { method: 'POST' })).limit, '1');
      mod.configure({ url: 'memory://rl-single-b' });
      const r = await mod.rateLimiter.checkLimit(ip, '/api/auth/login');
      assert.deepEqual([r.limit, r.total], [5, 1], 'the default login limit, on the new back end');
      assert.equal((await call(srv.base, '/api/auth/login', { method: 'POST' })).limit, '5');
    } finally {
      await srv.close();
      await mod.shutdown();
    }
  });

  it('stats().rateLimit counts allowed and blocked hits, and fail-open answers as fallbacks', async () => {
    const c = createCache({ url: 'memory://rl-stats', rateLimits: { '/s': { max: 2, windowSec: 60 } } });
    try {
      const ip = freshIp();
      for (let i = 0; i < 5; i++) await c.rateLimiter.checkLimit(ip, '/s');
      const s = c.stats().rateLimit;
      assert.deepEqual([s.allowed, s.blocked, s.fallbacks, s.errors], [2, 3, 0, 0]);
    } finally {
      await c.shutdown();
    }
  });

  it('the block cache is bounded: expired entries go first, then the oldest clients', () => {
    const { BlockCache } = require('../lib/rate_limit');
    const b = new BlockCache(10);
    const now = performance.now();
    for (let i = 0; i < 5; i++) b.set(`old${i}`, '/e', now - 1, 6); // already expired
    for (let i = 0; i < 5; i++) b.set(`ip${i}`, '/e', now + 60_000, 6);
    assert.equal(b.size, 10);
    b.set('ip5', '/e', now + 60_000, 6);
    assert.equal(b.size, 6, 'the expired ones went');
    assert.ok(b.get('ip0', '/e', now), 'live entries stay');
    for (let i = 6; i < 40; i++) b.set(`ip${i}`, '/e', now + 60_000, 6);
    assert.ok(b.size <= 10, `size ${b.size}`);
    assert.ok(b.get('ip39', '/e', now), 'the newest client is kept');
    assert.equal(b.get('ip0', '/e', now), undefined, 'the oldest went');
    b.set('ip39', '/f', now + 1000, 9);
    b.deleteIp('ip39');
    assert.equal(b.get('ip39', '/e', now), undefined);
    assert.equal(b.get('ip39', '/f', now), undefined);
    b.clear();
    assert.equal(b.size, 0);
  });

  it('createLimiter refuses bad options with typed errors', () => {
    const c = createCache({ url: 'memory://opts3' });
    const rl = c.rateLimiter;
    assert.throws(() => rl.createLimiter(null), TypeError);
    assert.throws(() => rl.createLimiter('x'), TypeError);
    assert.throws(() => rl.createLimiter({ max: 0.5 }), RangeError);
    assert.throws(() => rl.createLimiter({ max: 5, windowSec: -1 }), RangeError);
    assert.throws(() => rl.createLimiter({ max: 5, keyGenerator: 'ip' }), TypeError);
    assert.throws(() => rl.createLimiter({ max: 5, failClosed: 'yes' }), TypeError);
    assert.throws(() => rl.createLimiter({ max: 5, skip: true }), TypeError);
    assert.throws(() => rl.createLimiter({ max: 5, handler: {} }), TypeError);
    assert.equal(typeof rl.createLimiter({ max: 5, windowSec: 30 }), 'function');
    c.shutdown();
  });
});

for (const [name, make] of BACKENDS) {
  describe(`rate limit middleware over Express on ${name}`, () => {
    let backend;
    let cache;
    let rl;
    let http;

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url });
      rl = cache.rateLimiter;
      const app = express();
      app.set('trust proxy', 'loopback');
      const auth = express.Router();
      auth.post('/login', rl.authLimiter, ok);
      auth.post('/register', rl.strictLimiter, ok);
      app.use('/api/auth', auth);
      const custom = rl.createLimiter({ max: 4, windowSec: 30 });
      app.get('/api/search', custom, ok);
      app.get('/api/by-user', rl.createLimiter({ max: 2, windowSec: 30, keyGenerator: (req) => req.get('x-user') || 'anon' }), ok);
      app.get('/api/table', rl.createLimiter(), ok);
      const global = rl.createLimiter({ max: 10, windowSec: 60 });
      app.post('/api/double', global, rl.authLimiter, ok);
      app.get('/api/throws', rl.createLimiter({ max: 5, keyGenerator: () => 'a b' }), ok);
      app.get('/api/async-key', rl.createLimiter({ max: 2, windowSec: 30, keyGenerator: async (req) => req.get('x-user') }), ok);
      app.get('/api/async-key-fails', rl.createLimiter({ max: 2, keyGenerator: () => Promise.reject(Object.assign(new Error('no tenant'), { code: 'E_TENANT' })) }), ok);
      app.use((err, req, res, next) => res.status(500).json({ error: err.message, code: err.code }));
      http = await serve(app);
    });
    after(async () => {
      await http.close();
      await cache.shutdown();
      await backend.close();
    });

    const as = (ip) => ({ headers: { 'x-forwarded-for': ip } });

    it('authLimiter: 5 logins pass with RateLimit-* headers, the 6th gets 429, Retry-After and the JSON error', async () => {
      const ip = freshIp();
      for (let i = 1; i <= 5; i++) {
        const r = await call(http.base, '/api/auth/login', { method: 'POST', ...as(ip) });
        assert.equal(r.status, 200);
        assert.deepEqual(r.body, { ok: true });
        assert.equal(r.limit, '5');
        assert.equal(r.remaining, String(5 - i));
        assert.ok(Number(r.reset) > 50 && Number(r.reset) <= 60, `reset ${r.reset}`);
        assert.equal(r.retryAfter, null);
      }
      const blocked = await call(http.base, '/api/auth/login', { method: 'POST', ...as(ip) });
      assert.equal(blocked.status, 429);
      assert.equal(blocked.limit, '5');
      assert.equal(blocked.remaining, '0');
      assert.ok(Number(blocked.retryAfter) >= 1 && Number(blocked.retryAfter) <= 60);
      assert.deepEqual(blocked.body, { error: 'Too many requests', retryAfter: Number(blocked.retryAfter) });
      assert.equal((await rl.getIpStatus(ip))['/api/auth/login'].current, 6, 'endpoint = req.baseUrl + req.path');
    });

    it('strictLimiter allows 3 per 60 s', async () => {
      const ip = freshIp();
      const statuses = [];
      for (let i = 0; i < 5; i++) statuses.push((await call(http.base, '/api/auth/register', { method: 'POST', ...as(ip) })).status);
      assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
    });

    it('createLimiter({ max, windowSec }) applies its own limit and window', async () => {
      const ip = freshIp();
      const rs = [];
      for (let i = 0; i < 5; i++) rs.push(await call(http.base, '/api/search?q=x', as(ip)));
      assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 429]);
      assert.equal(rs[0].limit, '4');
      assert.ok(Number(rs[0].reset) <= 30 && Number(rs[0].reset) > 20);
      const ttl = await backend.pttl(`rate:${ip}:_api_search#4per30s`); // a custom limiter's own counter
      assert.ok(ttl > 20_000 && ttl <= 30_000, `pttl ${ttl}`);
    });

    it('createLimiter() without max uses the rateLimits table by endpoint', async () => {
      const r = await call(http.base, '/api/table', as(freshIp()));
      assert.equal(r.limit, '100');
    });

    it('the key is req.ip, so trust proxy decides: forwarded clients are counted apart', async () => {
      const a = freshIp();
      const b = freshIp();
      for (let i = 0; i < 4; i++) await call(http.base, '/api/search', as(a));
      assert.equal((await call(http.base, '/api/search', as(a))).status, 429);
      assert.equal((await call(http.base, '/api/search', as(b))).status, 200);
    });

    it('without trust proxy, X-Forwarded-For cannot pick a fresh counter', async () => {
      const app = express(); // trust proxy off: req.ip is the socket address
      app.get('/api/nt', rl.createLimiter({ max: 2, windowSec: 30 }), ok);
      const srv = await serve(app);
      try {
        await rl.resetAllLimitsForIp('127.0.0.1');
        const statuses = [];
        for (let i = 0; i < 3; i++) statuses.push((await call(srv.base, '/api/nt', as(freshIp()))).status);
        assert.deepEqual(statuses, [200, 200, 429]);
        assert.equal((await rl.getIpStatus('127.0.0.1'))['/api/nt#2per30s'].current, 3);
      } finally {
        await rl.resetAllLimitsForIp('127.0.0.1');
        await srv.close();
      }
    });

    it('keyGenerator chooses the key', async () => {
      const user = `user-${uid()}`;
      const headers = { 'x-user': user };
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await call(http.base, '/api/by-user', { headers: { ...headers, 'x-forwarded-for': freshIp() } })).status);
      assert.deepEqual(statuses, [200, 200, 429]);
      assert.equal((await rl.getIpStatus(user))['/api/by-user#2per30s'].current, 3);
    });

    it('case and trailing-slash variants of a route share its counter', async () => {
      const ip = freshIp();
      const paths = ['/api/auth/login', '/API/auth/login', '/api/Auth/LOGIN/', '/api/auth/LOGIN', '/api/auth/login', '/Api/auth/login'];
      const statuses = [];
      for (const p of paths) statuses.push((await call(http.base, p, { method: 'POST', ...as(ip) })).status);
      assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
      assert.deepEqual(Object.keys(await rl.getIpStatus(ip)), ['/api/auth/login']);
    });

    it('a request that passes two limiters of different limits on one endpoint is counted by each, on its own counter', async () => {
      const ip = freshIp();
      const rs = [];
      for (let i = 0; i < 6; i++) rs.push(await call(http.base, '/api/double', { method: 'POST', ...as(ip) }));
      assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200, 429]);
      const status = await rl.getIpStatus(ip);
      assert.equal(status['/api/double#10per60s'].current, 6, 'the 10/60 s limiter');
      assert.equal(status['/api/double#5per60s'].current, 6, 'authLimiter (5/60 s, not the 100/60 s of /api/double)');
    });

    it('a keyGenerator that answers with a promise: its key is counted; a rejected one goes to the error handler', async () => {
      const user = `user-${uid()}`;
      const statuses = [];
      for (let i = 0; i < 3; i++) statuses.push((await call(http.base, '/api/async-key', { headers: { 'x-user': user, 'x-forwarded-for': freshIp() } })).status);
      assert.deepEqual(statuses, [200, 200, 429]);
      assert.equal((await rl.getIpStatus(user))['/api/async-key#2per30s'].current, 3);
      const before = (await backend.keys()).sort();
      const r = await call(http.base, '/api/async-key-fails');
      assert.equal(r.status, 500);
      assert.equal(r.body.code, 'E_TENANT');
      assert.deepEqual((await backend.keys()).sort(), before);
    });

    it('an invalid key from keyGenerator goes to the error handler; nothing is written', async () => {
      const before = (await backend.keys()).sort();
      const r = await call(http.base, '/api/throws');
      assert.equal(r.status, 500);
      assert.equal(r.body.code, 'ERR_INVALID_ARG');
      assert.deepEqual((await backend.keys()).sort(), before);
    });

    it('the 6th login in a minute: 429, Retry-After, the JSON body; every response carries the RateLimit headers', async () => {
      const ip = freshIp();
      const rs = [];
      for (let i = 0; i < 8; i++) rs.push(await call(http.base, '/api/auth/login', { method: 'POST', ...as(ip) }));
      assert.deepEqual(rs.map((r) => r.status), [200, 200, 200, 200, 200, 429, 429, 429]);
      rs.forEach((r, i) => {
        assert.equal(r.limit, '5', `response ${i + 1}`);
        assert.equal(r.remaining, String(Math.max(0, 4 - i)), `response ${i + 1}`);
        assert.ok(Number(r.reset) >= 1 && Number(r.reset) <= 60, `response ${i + 1}: reset ${r.reset}`);
        assert.equal(r.policy, '5;w=60', `response ${i + 1}`);
      });
      for (const r of rs.slice(5)) {
        assert.ok(Number(r.retryAfter) >= 1 && Number(r.retryAfter) <= 60);
        assert.deepEqual(r.body, { error: 'Too many requests', retryAfter: Number(r.retryAfter) });
      }
    });

    it('createLimiter({ max: 10, windowSec: 30 }): 10 pass, the 11th is refused, policy 10;w=30', async () => {
      const app = express();
      app.set('trust proxy', 'loopback');
      app.get('/api/ten', rl.createLimiter({ max: 10, windowSec: 30 }), ok);
      const srv = await serve(app);
      try {
        const ip = freshIp();
        const rs = [];
        for (let i = 0; i < 11; i++) rs.push(await call(srv.base, '/api/ten', as(ip)));
        assert.deepEqual(rs.map((r) => r.status), [...Array(10).fill(200), 429]);
        assert.deepEqual(rs.map((r) => r.remaining), ['9', '8', '7', '6', '5', '4', '3', '2', '1', '0', '0']);
        for (const r of rs) {
          assert.equal(r.limit, '10');
          assert.equal(r.policy, '10;w=30');
          assert.ok(Number(r.reset) >= 1 && Number(r.reset) <= 30, `reset ${r.reset}`);
        }
        assert.ok(Number(rs[10].retryAfter) <= 30);
        const ttl = await backend.pttl(`rate:${ip}:_api_ten#10per30s`);
        assert.ok(ttl > 20_000 && ttl <= 30_000, `pttl ${ttl}`);
      } finally {
        await srv.close();
      }
    });

    it('resetAllLimitsForIp lets a blocked client in again at once', async () => {
      const ip = freshIp();
      for (let i = 0; i < 5; i++) await call(http.base, '/api/auth/login', { method: 'POST', ...as(ip) });
      assert.equal((await call(http.base, '/api/auth/login', { method: 'POST', ...as(ip) })).status, 429);
      assert.equal((await call(http.base, '/api/auth/login', { method: 'POST', ...as(ip) })).status, 429, 'answered by the block cache');
      assert.equal(await rl.resetAllLimitsForIp(ip), 1);
      const r = await call(http.base, '/api/auth/login', { method: 'POST', ...as(ip) });
      assert.deepEqual([r.status, r.remaining], [200, '4']);
    });

    it('skip(req, res) lets a request through uncounted and without headers; it may be async', async () => {
      const app = express();
      app.set('trust proxy', 'loopback');
      app.get('/api/skip', rl.createLimiter({ max: 1, windowSec: 30, skip: (req) => req.get('x-skip') === 'yes' }), ok);
      app.get('/api/skip-async', rl.createLimiter({ max: 1, windowSec: 30, skip: async (req) => req.get('x-skip') === 'yes' }), ok);
      app.get('/api/skip-throws', rl.createLimiter({ max: 1, skip: () => { throw new Error('skip broke'); } }), ok);
      app.use((err, req, res, next) => res.status(500).json({ error: err.message }));
      const srv = await serve(app);
      try {
        for (const p of ['/api/skip', '/api/skip-async']) {
          const ip = freshIp();
          for (let i = 0; i < 3; i++) {
            const r = await call(srv.base, p, { headers: { 'x-forwarded-for': ip, 'x-skip': 'yes' } });
            assert.deepEqual([r.status, r.limit, r.policy], [200, null, null], p);
          }
          assert.deepEqual(await rl.getIpStatus(ip), {}, `${p}: nothing counted`);
          assert.equal((await call(srv.base, p, as(ip))).status, 200);
          assert.equal((await call(srv.base, p, as(ip))).status, 429);
          assert.equal((await call(srv.base, p, { headers: { 'x-forwarded-for': ip, 'x-skip': 'yes' } })).status, 200, `${p}: skipped even when over`);
        }
        const r = await call(srv.base, '/api/skip-throws');
        assert.deepEqual([r.status, r.body.error], [500, 'skip broke']);
      } finally {
        await srv.close();
      }
    });

    it('handler(req, res, next, options) answers a blocked request; message replaces the body', async () => {
      const app = express();
      app.set('trust proxy', 'loopback');
      const seen = [];
      app.get(
        '/api/handled',
        rl.createLimiter({
          max: 1,
          windowSec: 30,
          handler: (req, res, next, options) => {
            seen.push({ rateLimit: req.rateLimit, statusCode: options.statusCode, max: options.max, windowSec: options.windowSec, next: typeof next });
            res.status(options.statusCode).json({ custom: true, retryAfter: res.getHeader('Retry-After') });
          },
        }),
        ok,
      );
      app.get('/api/msg-object', rl.createLimiter({ max: 1, windowSec: 30, message: { error: 'slow down', code: 'RATE' } }), ok);
      app.get('/api/msg-string', rl.createLimiter({ max: 1, windowSec: 30, message: 'Too many, try later' }), ok);
      app.get('/api/msg-fn', rl.createLimiter({ max: 1, windowSec: 30, message: async (req) => ({ error: `limit ${req.rateLimit.limit}` }) }), ok);
      app.get('/api/handler-throws', rl.createLimiter({ max: 0, windowSec: 30, handler: () => { throw new Error('handler broke'); } }), ok);
      app.use((err, req, res, next) => res.status(500).json({ error: err.message }));
      const srv = await serve(app);
      try {
        const ip = freshIp();
        assert.equal((await call(srv.base, '/api/handled', as(ip))).status, 200);
        const h = await call(srv.base, '/api/handled', as(ip));
        assert.equal(h.status, 429);
        assert.equal(h.body.custom, true);
        assert.equal(h.body.retryAfter, h.retryAfter, 'Retry-After is set before the handler runs');
        assert.equal(h.limit, '1');
        assert.equal(seen.length, 1);
        assert.deepEqual([seen[0].statusCode, seen[0].max, seen[0].windowSec, seen[0].next], [429, 1, 30, 'function']);
        assert.deepEqual([seen[0].rateLimit.allowed, seen[0].rateLimit.total, seen[0].rateLimit.limit], [false, 2, 1]);

        await call(srv.base, '/api/msg-object', as(ip));
        const o = await call(srv.base, '/api/msg-object', as(ip));
        assert.deepEqual([o.status, o.body], [429, { error: 'slow down', code: 'RATE' }]);
        assert.ok(Number(o.retryAfter) >= 1);

        await call(srv.base, '/api/msg-string', as(ip));
        const st = await call(srv.base, '/api/msg-string', as(ip));
        assert.deepEqual([st.status, st.body], [429, 'Too many, try later']);

        await call(srv.base, '/api/msg-fn', as(ip));
        const f = await call(srv.base, '/api/msg-fn', as(ip));
        assert.deepEqual([f.status, f.body], [429, { error: 'limit 1' }]);

        const t = await call(srv.base, '/api/handler-throws', as(ip));
        assert.deepEqual([t.status, t.body], [500, { error: 'handler broke' }]);
      } finally {
        await srv.close();
      }
    });

    it('req.rateLimit holds the result for the route handler', async () => {
      const app = express();
      app.set('trust proxy', 'loopback');
      app.get('/api/rl', rl.createLimiter({ max: 3, windowSec: 30 }), (req, res) => res.json(req.rateLimit));
      const srv = await serve(app);
      try {
        const ip = freshIp();
        const a = await call(srv.base, '/api/rl', as(ip));
        assert.deepEqual(a.body, { allowed: true, remaining: 2, resetIn: 30, total: 1, limit: 3 });
        const b = await call(srv.base, '/api/rl', as(ip));
        assert.deepEqual([b.body.total, b.body.remaining, b.body.limit], [2, 1, 3]);
      } finally {
        await srv.close();
      }
    });

    it('X-Forwarded-For with trust proxy off: one warning per limiter, none when a proxy is trusted', async () => {
      const warnings = [];
      const onWarning = (w) => {
        if (w.code === 'BISMAN_RATE_LIMIT_XFF') warnings.push(w);
      };
      process.on('warning', onWarning);
      const c = createCache({ url: backend.url });
      const plain = express(); // trust proxy off
      plain.get('/api/w', c.rateLimiter.createLimiter({ max: 100, windowSec: 30 }), ok);
      plain.get('/api/w2', c.rateLimiter.authLimiter, ok);
      const trusting = express();
      trusting.set('trust proxy', 'loopback');
      const c2 = createCache({ url: backend.url });
      trusting.get('/api/w', c2.rateLimiter.createLimiter({ max: 100, windowSec: 30 }), ok);
      const [s1, s2] = [await serve(plain), await serve(trusting)];
      try {
        await call(s1.base, '/api/w');
        await sleep(20);
        assert.equal(warnings.length, 0, 'no header, no warning');
        for (let i = 0; i < 3; i++) await call(s1.base, '/api/w', as(freshIp()));
        await call(s1.base, '/api/w2', as(freshIp()));
        for (let i = 0; i < 3; i++) await call(s2.base, '/api/w', as(freshIp()));
        await sleep(20);
        assert.equal(warnings.length, 1);
        assert.match(warnings[0].message, /trust proxy/);
      } finally {
        process.off('warning', onWarning);
        await s1.close();
        await s2.close();
        await c.rateLimiter.resetAllLimitsForIp('127.0.0.1');
        await c.shutdown();
        await c2.shutdown();
      }
    });

    it('a rotating client-supplied X-Forwarded-For with trust proxy off lands in one bucket', async () => {
      const c = createCache({ url: backend.url });
      c.rateLimiter.warnedXff = true; // the warning has its own test
      const app = express();
      app.get('/api/rotate', c.rateLimiter.createLimiter({ max: 5, windowSec: 30 }), ok);
      const srv = await serve(app);
      try {
        await c.rateLimiter.resetAllLimitsForIp('127.0.0.1');
        const statuses = [];
        for (let i = 0; i < 20; i++) statuses.push((await call(srv.base, '/api/rotate', { headers: { 'x-forwarded-for': `${freshIp()}, ${freshIp()}` } })).status);
        assert.deepEqual(statuses, [...Array(5).fill(200), ...Array(15).fill(429)]);
        assert.deepEqual(Object.keys(await c.rateLimiter.getIpStatus('127.0.0.1')), ['/api/rotate#5per30s']);
        assert.equal((await backend.keys()).filter((k) => k.endsWith(':_api_rotate#5per30s')).length, 1, 'one counter in the store');
      } finally {
        await c.rateLimiter.resetAllLimitsForIp('127.0.0.1');
        await srv.close();
        await c.shutdown();
      }
    });

    it('paths with characters an id may not hold are still counted, percent-encoded', async () => {
      const ip = freshIp();
      const app = express();
      app.set('trust proxy', 'loopback');
      app.use(rl.createLimiter({ max: 1, windowSec: 30 }));
      app.use(ok);
      const srv = await serve(app);
      try {
        assert.equal((await call(srv.base, '/files/a*b[1]', as(ip))).status, 200);
        assert.equal((await call(srv.base, '/files/a*b[1]', as(ip))).status, 429);
        assert.deepEqual(Object.keys(await rl.getIpStatus(ip)), ['/files/a%2Ab%5B1%5D#1per30s']);
      } finally {
        await srv.close();
      }
    });
  });
}

describe('rate limiting when Redis fails', () => {
  const hitEndpoint = '/api/auth/login';

  it('without a back end checkLimit fails open; middleware passes, failClosed answers 503', async () => {
    const c = createCache({});
    try {
      const r = await c.rateLimiter.checkLimit('1.2.3.4', hitEndpoint);
      assert.deepEqual(r, { allowed: true, remaining: 5, resetIn: 60, total: 0, limit: 5 });
      assert.equal(c.stats().rateLimit.fallbacks, 1);
      const app = express();
      app.get('/open', c.rateLimiter.createLimiter({ max: 1 }), ok);
      app.get('/closed', c.rateLimiter.createLimiter({ max: 1, failClosed: true }), ok);
      const srv = await serve(app);
      try {
        for (let i = 0; i < 3; i++) assert.equal((await call(srv.base, '/open')).status, 200);
        const closed = await call(srv.base, '/closed');
        assert.equal(closed.status, 503);
        assert.equal(closed.retryAfter, '1');
        assert.deepEqual(closed.body, { error: 'Service unavailable', retryAfter: 1 });
      } finally {
        await srv.close();
      }
      assert.equal(await c.rateLimiter.resetLimit('1.2.3.4', hitEndpoint), 0);
      assert.equal(await c.rateLimiter.resetAllLimitsForIp('1.2.3.4'), 0);
      assert.deepEqual(await c.rateLimiter.getIpStatus('1.2.3.4'), {});
    } finally {
      await c.shutdown();
    }
  });

  it('a refused port: checkLimit fails open and counts the error; failClosed middleware answers 503', async () => {
    const port = await freePort();
    // plain fail-open (the auth endpoints' insurance limiter is tested in failure_policy.test.js)
    const c = createCache({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 300, rateLimitInsurance: false });
    try {
      const r = await c.rateLimiter.checkLimit('1.2.3.4', hitEndpoint);
      assert.equal(r.allowed, true);
      assert.equal(r.total, 0);
      assert.ok(c.stats().rateLimit.errors >= 1);
      const app = express();
      app.get('/open', c.rateLimiter.authLimiter, ok);
      app.get('/closed', c.rateLimiter.createLimiter({ max: 100, failClosed: true }), ok);
      const srv = await serve(app);
      try {
        const open = await call(srv.base, '/open');
        assert.equal(open.status, 200);
        assert.equal(open.limit, '5');
        assert.equal((await call(srv.base, '/closed')).status, 503);
      } finally {
        await srv.close();
      }
    } finally {
      await c.shutdown();
    }
  });

  it('a hung Redis (SIGSTOP): requests are answered by commandTimeoutMs, open or 503 as configured', async () => {
    const server = await startRedis();
    const c = createCache({ url: server.url, commandTimeoutMs: 200 });
    const app = express();
    app.get('/open', c.rateLimiter.createLimiter({ max: 100 }), ok);
    app.get('/closed', c.rateLimiter.createLimiter({ max: 100, failClosed: true }), ok);
    const srv = await serve(app);
    try {
      assert.equal((await call(srv.base, '/open')).status, 200);
      server.pause();
      const t0 = Date.now();
      const [open, closed, direct] = await Promise.all([call(srv.base, '/open'), call(srv.base, '/closed'), c.rateLimiter.checkLimit('9.9.9.9', '/x')]);
      const took = Date.now() - t0;
      assert.equal(open.status, 200);
      assert.equal(closed.status, 503);
      assert.equal(direct.allowed, true);
      assert.ok(took < 200 + 800, `took ${took} ms`);
    } finally {
      server.resume();
      await srv.close();
      await c.shutdown();
      await server.stop();
    }
  });

  it('Redis down (killed, then hung): open passes, failClosed answers 503, each decision within commandTimeoutMs + 50 ms', async () => {
    const T = 200;
    const server = await startRedis();
    const c = createCache({ url: server.url, commandTimeoutMs: T });
    const app = express();
    app.set('trust proxy', 'loopback');
    app.post('/api/auth/login', c.rateLimiter.authLimiter, ok);
    app.get('/open', c.rateLimiter.createLimiter({ max: 100 }), ok);
    app.get('/closed', c.rateLimiter.createLimiter({ max: 100, failClosed: true }), ok);
    const srv = await serve(app);
    const timed = async (p, opts) => {
      const t0 = performance.now();
      const r = await call(srv.base, p, opts);
      return { ...r, ms: performance.now() - t0 };
    };
    const blockedIp = freshIp();
    try {
      assert.equal((await timed('/open')).status, 200);
      assert.equal((await timed('/closed')).status, 200);
      for (let i = 0; i < 5; i++) await timed('/api/auth/login', { method: 'POST', headers: { 'x-forwarded-for': blockedIp } });
      assert.equal((await timed('/api/auth/login', { method: 'POST', headers: { 'x-forwarded-for': blockedIp } })).status, 429);
      for (const mode of ['killed', 'hung']) {
        if (mode === 'killed') {
          await server.kill();
        } else {
          await server.start();
          const t0 = Date.now();
          while (Date.now() - t0 < 5000 && (await c.rateLimiter.checkLimit(freshIp(), '/x')).total === 0) await sleep(50);
          assert.equal((await timed('/closed')).status, 200, 'Redis is back');
          server.pause();
        }
        const rs = [];
        for (let round = 0; round < 5; round++) {
          const batch = await Promise.all([
            timed('/open', { headers: { 'x-forwarded-for': freshIp() } }),
            timed('/closed', { headers: { 'x-forwarded-for': freshIp() } }),
            timed('/api/auth/login', { method: 'POST', headers: { 'x-forwarded-for': freshIp() } }),
          ]);
          assert.deepEqual(batch.map((r) => r.status), [200, 503, 200], `${mode}, round ${round}`);
          assert.deepEqual(batch[1].body, { error: 'Service unavailable', retryAfter: 1 });
          rs.push(...batch);
        }
        if (mode === 'killed') {
          const b = await timed('/api/auth/login', { method: 'POST', headers: { 'x-forwarded-for': blockedIp } });
          assert.equal(b.status, 429, 'a client already over its limit stays blocked (block cache) while Redis is down');
          rs.push(b);
        }
        const max = Math.max(...rs.map((r) => r.ms));
        console.log(`# Redis ${mode}: ${rs.length} decisions, slowest ${max.toFixed(1)} ms (commandTimeoutMs ${T})`);
        assert.ok(max <= T + 50, `Redis ${mode}: slowest decision ${max.toFixed(1)} ms > ${T + 50} ms`);
      }
    } finally {
      await srv.close();
      await c.shutdown();
      await server.stop(); // resumes a paused server first
    }
  });

  it('Redis restarted: counting resumes by itself, and the new counters carry their TTL', async () => {
    const server = await startRedis();
    const c = createCache({ url: server.url, commandTimeoutMs: 300, rateLimitInsurance: false });
    try {
      assert.equal((await c.rateLimiter.checkLimit('5.5.5.5', hitEndpoint)).total, 1);
      await server.kill();
      assert.equal((await c.rateLimiter.checkLimit('5.5.5.5', hitEndpoint)).total, 0, 'down: open, not a throw');
      await server.start();
      let total = 0;
      const t0 = Date.now();
      while (Date.now() - t0 < 5000 && total === 0) {
        total = (await c.rateLimiter.checkLimit('5.5.5.5', hitEndpoint)).total;
        if (total === 0) await sleep(50);
      }
      assert.equal(total, 1, 'a fresh Redis starts a fresh window');
      const ttl = await server.client().pttl('rate:5.5.5.5:_api_auth_login');
      assert.ok(ttl > 0 && ttl <= 60_000, `pttl ${ttl}`);
    } finally {
      await c.shutdown();
      await server.stop();
    }
  });
});

describe('rate limits across processes', () => {
  let server;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  // A child process running `body` with `c` = the package configured on `url`; its stdout lines
  // are collected as they come. `lines`, `exited` (a promise of { code, signal, out, err }).
  function child(url, body, rateLimits = {}) {
    const script = `
      const c = require(${JSON.stringify(ROOT)});
      c.configure({ url: ${JSON.stringify(url)}, commandTimeoutMs: 500, rateLimits: ${JSON.stringify(rateLimits)} });
      (async () => { ${body} })().then(() => c.shutdown(), (e) => { console.error(e && e.stack); process.exit(3); });`;
    const proc = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'pipe'] });
    const ch = { proc, lines: [], out: '', err: '' };
    proc.stdout.on('data', (d) => {
      ch.out += d;
      const parts = ch.out.split('\n');
      ch.out = parts.pop();
      ch.lines.push(...parts);
    });
    proc.stderr.on('data', (d) => (ch.err += d));
    ch.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal, err: ch.err })));
    return ch;
  }

  async function until(what, cond, ms) {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  it('exactness: 4 processes × 200 concurrent checkLimit on one key with limit 5 admit exactly 5', async () => {
    const ip = freshIp();
    const startAt = Date.now() + 2500; // every process is connected and fires at once
    const body = `
      await c.ping();
      await new Promise((r) => setTimeout(r, Math.max(0, ${startAt} - Date.now())));
      const rs = await Promise.all(Array.from({ length: 200 }, () => c.rateLimiter.checkLimit(${JSON.stringify(ip)}, '/api/auth/login')));
      console.log(JSON.stringify({ allowed: rs.filter((r) => r.allowed).length, totals: rs.map((r) => r.total), errors: c.stats().rateLimit.errors }));`;
    const kids = Array.from({ length: 4 }, () => child(server.url, body));
    const runs = await Promise.all(kids.map((k) => k.exited));
    let allowed = 0;
    const totals = [];
    kids.forEach((k, i) => {
      assert.equal(runs[i].code, 0, runs[i].err);
      const parsed = JSON.parse(k.lines[0]);
      assert.equal(parsed.errors, 0);
      allowed += parsed.allowed;
      totals.push(...parsed.totals);
    });
    assert.equal(allowed, 5, 'exactly the limit, over all processes');
    assert.deepEqual(totals.sort((a, b) => a - b), Array.from({ length: 800 }, (_, i) => i + 1), 'each hit counted once');
    const client = server.client();
    assert.equal(await client.get(`rate:${ip}:_api_auth_login`), '800');
    const ttl = await client.pttl(`rate:${ip}:_api_auth_login`);
    assert.ok(ttl > 0 && ttl <= 60_000, `pttl ${ttl}`);
  });

  it('TTL invariant: thousands of random hits, clients SIGKILLed while hitting, one Redis restart: no rate key without a TTL', async () => {
    const own = await startRedis();
    const inspect = own.client();
    // Every rate:* key and every per-IP index key must carry a TTL (PTTL -1 = none; -2 = it
    // expired between SCAN and PTTL, which is fine).
    async function keysWithoutTtl() {
      const keys = [];
      for (const pattern of ['rate:*', 'rate-ip:*']) {
        let cursor = '0';
        let rounds = 0;
        do {
          const [next, batch] = await inspect.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
          cursor = next;
          keys.push(...batch);
        } while (cursor !== '0' && ++rounds < 10000);
      }
      const p = inspect.pipeline();
      for (const k of keys) p.pttl(k);
      const ttls = keys.length ? (await p.exec()).map(([, t]) => t) : [];
      return { scanned: keys.length, noTtl: keys.filter((k, i) => ttls[i] === -1) };
    }
    const limits = { '/a': { max: 3, windowSec: 1 }, '/b': { max: 50, windowSec: 3 }, '/c': { max: 1, windowSec: 2 } };
    const body = (n, seed) => `
      const ips = ['::1', '::1:5', '10.0.0.1', '10.0.0.10', 'fd00::7', 'user-1', 'user-11', '192.168.1.${seed}'];
      const eps = ['/a', '/b', '/c', '/api/auth/login', '/api/payments', '/d_x', '/d/x', 'no-slash'];
      const pick = (xs) => xs[Math.floor(Math.random() * xs.length)];
      const deadline = Date.now() + 20000;
      let done = 0;
      while (done < ${n} && Date.now() < deadline) {
        const batch = [];
        for (let i = 0; i < 20; i++) {
          const r = Math.random();
          const ip = pick(ips);
          if (r < 0.9) batch.push(c.rateLimiter.checkLimit(ip, pick(eps)));
          else if (r < 0.94) batch.push(c.rateLimiter.resetLimit(ip, pick(eps)));
          else if (r < 0.97) batch.push(c.rateLimiter.resetAllLimitsForIp(ip));
          else batch.push(c.rateLimiter.getIpStatus(ip));
        }
        await Promise.all(batch);
        done += batch.length;
        console.log(done);
      }`;
    const hitsOf = (k) => (k.lines.length ? Number(k.lines[k.lines.length - 1]) : 0);
    try {
      // the first two would go on for 20 s: they are killed mid-way, while they are hitting
      const first = Array.from({ length: 4 }, (_, i) => child(own.url, body(i < 2 ? 1e9 : 2000, i + 1), limits));
      await until('the first clients to get going', () => hitsOf(first[0]) >= 300 && hitsOf(first[1]) >= 300, 20000);
      first[0].proc.kill('SIGKILL');
      first[1].proc.kill('SIGKILL');
      const killed = await Promise.all([first[0].exited, first[1].exited]);
      assert.deepEqual(killed.map((k) => k.signal), ['SIGKILL', 'SIGKILL']);
      const mid = await keysWithoutTtl();
      assert.ok(mid.scanned > 0, 'there are counters to check');
      assert.deepEqual(mid.noTtl, [], 'after the kills');
      // Redis restarts under the two survivors, and two new clients join
      await own.restart();
      const second = Array.from({ length: 2 }, (_, i) => child(own.url, body(1500, i + 10), limits));
      const ends = await Promise.all([first[2], first[3], ...second].map((k) => k.exited));
      for (const e of ends) assert.equal(e.code, 0, e.err);
      const total = [...first, ...second].reduce((n, k) => n + hitsOf(k), 0);
      const after = await keysWithoutTtl();
      console.log(`# TTL invariant: ${total} operations, 2 clients SIGKILLed, 1 Redis restart; ${mid.scanned} + ${after.scanned} keys scanned, none without a TTL`);
      assert.ok(total >= 3000, `thousands of operations (${total})`);
      assert.ok(second.every((k) => hitsOf(k) === 1500), 'the clients after the restart all finished their hits');
      assert.ok(after.scanned > 0);
      assert.deepEqual(after.noTtl, [], 'after the restart');
    } finally {
      await own.stop();
    }
  });

  it('keyPrefix is applied to the counters and to the index', async () => {
    const c = createCache({ url: server.url, keyPrefix: 'erp:test:' });
    try {
      await c.rateLimiter.checkLimit('7.7.7.7', '/api/auth/login');
      const client = server.client();
      assert.equal(await client.exists('erp:test:rate:7.7.7.7:_api_auth_login'), 1);
      assert.equal(await client.exists('rate:7.7.7.7:_api_auth_login'), 0);
      assert.deepEqual(Object.keys(await c.rateLimiter.getIpStatus('7.7.7.7')), ['/api/auth/login']);
      assert.equal(await c.rateLimiter.resetAllLimitsForIp('7.7.7.7'), 1);
      assert.equal(await client.exists('erp:test:rate:7.7.7.7:_api_auth_login'), 0);
    } finally {
      await c.shutdown();
    }
  });
});

const SECTION_3 = `
const express = require('express');
const ok = (name) => (req, res) => res.json({ ok: name });
const authController = { login: ok('login'), register: ok('register') };
const searchController = { search: ok('search') };
(async () => {
const { rateLimiter } = require('./cache');

// Manual check
const result = await rateLimiter.checkLimit('192.168.1.1', '/api/auth/login');
// { allowed: true, remaining: 4, resetIn: 55, total: 1, limit: 5 }
console.log(JSON.stringify(result));

// Express middleware
const router = require('express').Router();

// Pre-configured limiters
router.post('/login', rateLimiter.authLimiter, authController.login);
router.post('/register', rateLimiter.strictLimiter, authController.register);

// Custom limiter
const customLimiter = rateLimiter.createLimiter({ max: 10, windowSec: 30 });
router.get('/search', customLimiter, searchController.search);

const app = express();
app.use('/api/auth', router);
const server = app.listen(0, '127.0.0.1');
await new Promise((r) => server.once('listening', r));
const base = 'http://127.0.0.1:' + server.address().port;
const statuses = async (method, p, n) => {
  const out = [];
  for (let i = 0; i < n; i++) out.push((await fetch(base + p, { method })).status);
  return out.join(',');
};
console.log(await statuses('POST', '/api/auth/login', 5));
console.log(await statuses('POST', '/api/auth/register', 4));
console.log(await statuses('GET', '/api/auth/search', 11));

// Section 9: rate limit status for an IP
const status = await rateLimiter.getIpStatus('192.168.1.1');
// { '/api/auth/login': { current: 3, limit: 5, resetIn: 45 } }
console.log(JSON.stringify(status));

// Reset limits (after CAPTCHA success)
await rateLimiter.resetAllLimitsForIp('192.168.1.1');
console.log(JSON.stringify(await rateLimiter.getIpStatus('192.168.1.1')));

server.closeAllConnections();
server.close();
await require('./cache').shutdown();
})();
`;

describe("the ERP guide's rate-limiting snippets run as written", () => {
  let server;
  before(async () => {
    server = await startRedis();
  });
  after(async () => {
    await server.stop();
  });

  for (const [name, url] of [['redis', null], ['memory', 'memory://']]) {
    it(`sections 3 and 9 on ${name}`, async () => {
      const r = await runApp(SECTION_3, { REDIS_URL: url || server.url });
      assert.equal(r.code, 0, r.stderr);
      const [result, logins, registers, searches, status, afterReset] = r.stdout.trim().split('\n');
      assert.deepEqual(JSON.parse(result), { allowed: true, remaining: 4, resetIn: 60, total: 1, limit: 5 });
      // the app's requests come from 127.0.0.1, the manual check counted 192.168.1.1
      assert.equal(logins, '200,200,200,200,200');
      assert.equal(registers, '200,200,200,429');
      assert.equal(searches, '200,200,200,200,200,200,200,200,200,200,429');
      const st = JSON.parse(status);
      assert.deepEqual(Object.keys(st), ['/api/auth/login']);
      assert.deepEqual([st['/api/auth/login'].current, st['/api/auth/login'].limit], [1, 5]);
      assert.ok(st['/api/auth/login'].resetIn > 50 && st['/api/auth/login'].resetIn <= 60, status);
      assert.equal(afterReset, '{}');
    });
  }
});
