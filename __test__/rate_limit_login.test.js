'use strict';
// Login-grade options of createLimiter, on a real redis-server and on memory://:
// skipSuccessfulRequests / skipFailedRequests / requestWasSuccessful (a hit counted, then taken
// back), blockDurationSec (a lockout every process sees), max(req), keys.usernameAndIp (request
// input never injects key syntax or length), name / perPath (whose budget a hit spends), and
// standardHeaders / legacyHeaders (express-rate-limit v8's formats, byte for byte).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { performance } = require('perf_hooks');
const express = require('express');
const { rateLimit } = require('express-rate-limit');
const { createCache } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { serve } = require('./helpers/http');
const { sleep } = require('./helpers/redis');

delete process.env.REDIS_URL; // these tests choose their back end explicitly

const freshIp = () => `10.${crypto.randomInt(256)}.${crypto.randomInt(256)}.${1 + crypto.randomInt(254)}`;

async function call(base, path, { ip, method = 'GET', headers = {}, body } = {}) {
  const h = { ...headers };
  if (ip !== undefined) h['x-forwarded-for'] = ip;
  if (body !== undefined) h['content-type'] = 'application/json';
  const r = await fetch(base + path, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  return { status: r.status, headers: r.headers, text };
}

// Polls `fn` until it answers truthy or `ms` pass → the truthy answer, or undefined.
async function until(fn, ms) {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (performance.now() > deadline) return undefined;
    await sleep(5);
  }
}

// A route answering the status asked for in `x-status` (default 200).
const answer = (req, res) => res.status(Number(req.get('x-status') || 200)).json({ ok: true });

for (const [name, make] of BACKENDS) {
  describe(`login-grade rate limits on ${name}`, () => {
    let backend;
    let cache;
    let rl;

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url });
      rl = cache.rateLimiter;
    });
    after(async () => {
      await cache.shutdown();
      await backend.close();
    });

    async function withApp(setup, fn) {
      const app = express();
      app.set('trust proxy', true);
      app.use(express.json());
      setup(app);
      app.use((err, req, res, _next) => res.status(500).json({ error: err.message, code: err.code }));
      const s = await serve(app);
      try {
        await fn(s.base);
      } finally {
        await s.close();
      }
    }

    it('skipSuccessfulRequests: successful logins are taken back, failed ones count (max 3)', async () => {
      await withApp(
        (app) => app.post('/login', rl.createLimiter({ name: 'login-s', max: 3, windowSec: 30, skipSuccessfulRequests: true }), answer),
        async (base) => {
          const ip = freshIp();
          const statuses = [];
          for (let i = 0; i < 6; i++) statuses.push((await call(base, '/login', { ip, method: 'POST' })).status);
          const undone = await until(async () => {
            const st = await rl.getIpStatus(ip);
            return st['@login-s'] && st['@login-s'].current === 0;
          }, 2000);
          assert.ok(undone, 'six successful logins leave the count at 0');
          for (let i = 0; i < 4; i++) statuses.push((await call(base, '/login', { ip, method: 'POST', headers: { 'x-status': '401' } })).status);
          console.log(`# login skipSuccessfulRequests (${name}): 6 × 200 then 4 × 401 → ${statuses.join(',')}`);
          assert.deepEqual(statuses, [200, 200, 200, 200, 200, 200, 401, 401, 401, 429]);
        },
      );
    });

    it('skipFailedRequests and requestWasSuccessful: only what the function calls a failure is taken back', async () => {
      const wasSuccessful = (req, res) => res.statusCode !== 401;
      await withApp(
        (app) => {
          app.post('/a', rl.createLimiter({ name: 'skip-f', max: 2, windowSec: 30, skipFailedRequests: true }), answer);
          app.post('/b', rl.createLimiter({ name: 'skip-f-custom', max: 2, windowSec: 30, skipFailedRequests: true, requestWasSuccessful: wasSuccessful }), answer);
        },
        async (base) => {
          const ip = freshIp();
          const a = [];
          for (let i = 0; i < 4; i++) {
            a.push((await call(base, '/a', { ip, method: 'POST', headers: { 'x-status': '500' } })).status);
            await until(async () => ((await rl.getIpStatus(ip))['@skip-f'] || { current: 0 }).current === 0, 2000);
          }
          for (let i = 0; i < 3; i++) a.push((await call(base, '/a', { ip, method: 'POST' })).status);
          // /b: a 500 is a success for wasSuccessful (counted), a 401 is a failure (taken back)
          const b = [];
          b.push((await call(base, '/b', { ip, method: 'POST', headers: { 'x-status': '401' } })).status);
          await until(async () => ((await rl.getIpStatus(ip))['@skip-f-custom'] || { current: 1 }).current === 0, 2000);
          for (let i = 0; i < 3; i++) b.push((await call(base, '/b', { ip, method: 'POST', headers: { 'x-status': '500' } })).status);
          console.log(`# login skipFailedRequests (${name}): /a 4 × 500 then 3 × 200 → ${a.join(',')}; /b 401 then 3 × 500 → ${b.join(',')}`);
          assert.deepEqual(a, [500, 500, 500, 500, 200, 200, 429]);
          assert.deepEqual(b, [401, 500, 500, 429]);
        },
      );
    });

    it('an undo never goes below 0 and never outlives its window (no counter is made by it)', async () => {
      await withApp(
        (app) =>
          app.post(
            '/slow',
            rl.createLimiter({ name: 'slow', max: 5, windowSec: 1, skipSuccessfulRequests: true }),
            async (req, res) => {
              await sleep(Number(req.get('x-delay') || 0));
              res.json({ ok: true });
            },
          ),
        async (base) => {
          const ip = freshIp();
          // the window (1 s) ends while the request runs: its undo must not touch the next window
          assert.equal((await call(base, '/slow', { ip, method: 'POST', headers: { 'x-delay': '1300' } })).status, 200);
          await sleep(100);
          assert.deepEqual(await rl.getIpStatus(ip), {}, 'no counter made or left by a late undo');
          assert.ok(!(await backend.keys()).some((k) => k.includes(ip) && k.startsWith('rate:')), 'no key written by a late undo');
          // undo of a counter at 0 stays at 0
          const one = await rl.hitOrThrow(ip, '@slow', { max: 5, windowSec: 30 });
          assert.equal(one.total, 1);
          assert.equal((await rl.adjust('undo', ip, '@slow')).total, 0);
          assert.equal((await rl.adjust('undo', ip, '@slow')).total, 0);
          const pttl = await backend.pttl(`rate:${ip}:@slow`);
          assert.ok(pttl > 25_000 && pttl <= 30_000, `the TTL stays: ${pttl}`);
          assert.equal((await rl.adjust('undo', freshIp(), '@slow')).total, 0, 'an undo of nothing is 0');
        },
      );
    });

    it('blockDurationSec: over the limit, the client stays blocked past the window, on every instance', async () => {
      const other = createCache({ url: backend.url });
      try {
        const opts = { name: 'lockout', max: 2, windowSec: 1, blockDurationSec: 3 };
        const a = express();
        const b = express();
        for (const [app, c] of [
          [a, cache],
          [b, other],
        ]) {
          app.set('trust proxy', true);
          app.post('/login', c.rateLimiter.createLimiter(opts), answer);
        }
        const sa = await serve(a);
        const sb = await serve(b);
        try {
          const ip = freshIp();
          const t0 = performance.now();
          const statuses = [];
          for (let i = 0; i < 3; i++) statuses.push((await call(sa.base, '/login', { ip, method: 'POST' })).status);
          const blocked = await call(sa.base, '/login', { ip, method: 'POST' });
          assert.ok(Number(blocked.headers.get('retry-after')) >= 2, `Retry-After covers the lockout: ${blocked.headers.get('retry-after')}`);
          const pttl = await backend.pttl(`rate:${ip}:@lockout`);
          assert.ok(pttl > 2000 && pttl <= 3000, `the lockout is stored: pttl ${pttl}`);
          await sleep(1500 - (performance.now() - t0)); // the 1 s window is over
          const onB = (await call(sb.base, '/login', { ip, method: 'POST' })).status;
          const onA = (await call(sa.base, '/login', { ip, method: 'POST' })).status;
          await sleep(3300 - (performance.now() - t0)); // the lockout is over
          const after = (await call(sb.base, '/login', { ip, method: 'POST' })).status;
          console.log(`# login blockDurationSec (${name}): 3 hits → ${statuses.join(',')}; after the window: instance B ${onB}, A ${onA}; after the lockout: ${after}`);
          assert.deepEqual(statuses, [200, 200, 429]);
          assert.equal(onB, 429, 'another instance (no block cache entry) sees the lockout in the store');
          assert.equal(onA, 429);
          assert.equal(after, 200);
        } finally {
          await sa.close();
          await sb.close();
        }
      } finally {
        await other.shutdown();
      }
    });

    it('max as a function (sync or async), read per request; an invalid answer goes to the error handler, nothing written', async () => {
      await withApp(
        (app) => {
          app.get('/plan', rl.createLimiter({ name: 'plan', windowSec: 30, max: (req) => (req.get('x-plan') === 'gold' ? 4 : 2) }), answer);
          app.get('/async', rl.createLimiter({ name: 'plan-async', windowSec: 30, max: async () => 1 }), answer);
          app.get('/bad', rl.createLimiter({ name: 'plan-bad', max: () => -1 }), answer);
          app.get('/unnamed', rl.createLimiter({ windowSec: 30, max: () => 1 }), answer);
        },
        async (base) => {
          const ip = freshIp();
          const basic = [];
          for (let i = 0; i < 3; i++) basic.push((await call(base, '/plan', { ip })).status);
          const ip2 = freshIp();
          const gold = [];
          for (let i = 0; i < 5; i++) gold.push((await call(base, '/plan', { ip: ip2, headers: { 'x-plan': 'gold' } })).status);
          const r = await call(base, '/plan', { ip: ip2, headers: { 'x-plan': 'gold' } });
          assert.equal(r.headers.get('ratelimit-limit'), '4');
          const as = [(await call(base, '/async', { ip })).status, (await call(base, '/async', { ip })).status];
          const before = (await backend.keys()).sort();
          const bad = await call(base, '/bad', { ip });
          assert.equal(bad.status, 500);
          assert.equal(JSON.parse(bad.text).code, 'ERR_OUT_OF_RANGE');
          assert.deepEqual((await backend.keys()).sort(), before, 'nothing written');
          const un = [(await call(base, '/unnamed', { ip })).status, (await call(base, '/unnamed', { ip })).status];
          assert.equal((await rl.getIpStatus(ip))['/unnamed#per30s'].current, 2, 'an unnamed limiter with max(req) counts on {endpoint}#per{windowSec}s');
          console.log(`# login max(req) (${name}): basic ${basic.join(',')}; gold ${gold.join(',')}; async ${as.join(',')}`);
          assert.deepEqual(basic, [200, 200, 429]);
          assert.deepEqual(gold, [200, 200, 200, 200, 429]);
          assert.deepEqual(as, [200, 429]);
          assert.deepEqual(un, [200, 429]);
        },
      );
    });

    it('keys.usernameAndIp: one budget per (username, IP); the username is normalised and hashed; any input is an answer', async () => {
      await withApp(
        (app) => {
          app.post('/api/auth/login', rl.createLimiter({ name: 'user-ip', max: 2, windowSec: 30, keyGenerator: rl.keys.usernameAndIp('username') }), answer);
          app.post('/fn', rl.createLimiter({ name: 'user-ip-fn', max: 1, windowSec: 30, keyGenerator: rl.keys.usernameAndIp(async (req) => req.get('x-user')) }), answer);
        },
        async (base) => {
          const ip = freshIp();
          const ip2 = freshIp();
          const login = (username, from) => call(base, '/api/auth/login', { ip: from, method: 'POST', body: { username, password: 'x' } });
          const alice = [];
          for (const u of ['alice', ' Alice ', 'ＡＬＩＣＥ']) alice.push((await login(u, ip)).status);
          const others = [(await login('bob', ip)).status, (await login('alice', ip2)).status];
          const fn = [(await call(base, '/fn', { ip, method: 'POST', headers: { 'x-user': 'carol' } })).status, (await call(base, '/fn', { ip, method: 'POST', headers: { 'x-user': 'carol' } })).status];
          console.log(`# login usernameAndIp (${name}): alice/' Alice '/'ＡＬＩＣＥ' from one IP → ${alice.join(',')}; bob same IP, alice other IP → ${others.join(',')}`);
          assert.deepEqual(alice, [200, 200, 429]);
          assert.deepEqual(others, [200, 200]);
          assert.deepEqual(fn, [200, 429]);
          // hostile input: huge, glob, control and key-syntax characters, non-strings
          const odd = ['x'.repeat(90_000), '*', 'a b\r\nDEL *', '[a]?{b}:c', '\u0000\u001f', 'é😀\u202e', ['a', 'b'], { $gt: '' }, null, 12345, true];
          const statuses = [];
          for (const u of odd) statuses.push((await login(u, freshIp())).status);
          assert.deepEqual(statuses, odd.map(() => 200), `every odd username is answered: ${statuses}`);
          const noBody = await call(base, '/api/auth/login', { ip: freshIp(), method: 'POST' });
          assert.equal(noBody.status, 200);
          const keys = (await backend.keys()).filter((k) => k.includes('@user-ip'));
          assert.ok(keys.length >= odd.length, `${keys.length} keys`);
          for (const k of keys) {
            assert.ok(k.length <= 80, `a bounded key: ${k.length} chars`);
            assert.match(k, /^rate:u~[A-Za-z0-9_-]{22}~[0-9a-f.:/]+:@user-ip(-fn)?$/);
          }
          assert.throws(() => rl.keys.usernameAndIp(''), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
          assert.throws(() => rl.keys.usernameAndIp(42), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
        },
      );
    });

    it('name: two limiters of the same max/window but different names do not share a count; a named limiter is one budget over all its paths unless perPath', async () => {
      await withApp(
        (app) => {
          const a = rl.createLimiter({ name: 'items-a', max: 2, windowSec: 30 });
          const b = rl.createLimiter({ name: 'items-b', max: 2, windowSec: 30 });
          app.get('/both/:id', a, b, answer);
          app.get('/items/:id', rl.createLimiter({ name: 'items', max: 2, windowSec: 30 }), answer);
          app.get('/per/:id', rl.createLimiter({ name: 'per', max: 2, windowSec: 30, perPath: true }), answer);
          app.get('/legacy/:id', rl.createLimiter({ max: 2, windowSec: 30 }), answer);
        },
        async (base) => {
          const ip = freshIp();
          const both = [];
          for (let i = 0; i < 3; i++) both.push((await call(base, `/both/${i}`, { ip })).status);
          const st = await rl.getIpStatus(ip);
          assert.equal(st['@items-a'].current, 3);
          assert.equal(st['@items-b'].current, 2, 'b counts its own hits only (a blocked the third)');
          const items = [(await call(base, '/items/1', { ip })).status, (await call(base, '/items/2', { ip })).status, (await call(base, '/items/3', { ip })).status];
          const per = [(await call(base, '/per/1', { ip })).status, (await call(base, '/per/2', { ip })).status, (await call(base, '/per/1', { ip })).status, (await call(base, '/per/1', { ip })).status];
          const legacy = [(await call(base, '/legacy/1', { ip })).status, (await call(base, '/legacy/2', { ip })).status, (await call(base, '/legacy/1', { ip })).status, (await call(base, '/legacy/1', { ip })).status];
          console.log(`# login name (${name}): a+b ${both.join(',')}; named /items/1,2,3 ${items.join(',')}; perPath /per/1,2,1,1 ${per.join(',')}; unnamed /legacy/1,2,1,1 ${legacy.join(',')}`);
          assert.deepEqual(both, [200, 200, 429]);
          assert.deepEqual(items, [200, 200, 429]);
          assert.deepEqual(per, [200, 200, 200, 429]);
          assert.deepEqual(legacy, [200, 200, 200, 429], 'without a name, each path keeps its own budget (as before)');
          const after = await rl.getIpStatus(ip);
          assert.ok(after['@per/per/1'] && after['@per/per/2'] && after['/legacy/1#2per30s'] && after['@items'], Object.keys(after).join(' '));
          assert.equal(await rl.resetLimit(ip, '@items'), 1);
          assert.equal((await call(base, '/items/9', { ip })).status, 200, 'resetLimit(ip, "@name") frees a named limiter');
        },
      );
    });

    it('standardHeaders draft-6/7/8 and legacyHeaders are byte for byte what express-rate-limit v8 sends', async () => {
      const drafts = ['draft-6', 'draft-7', 'draft-8'];
      await withApp(
        (app) => {
          for (const d of drafts) {
            app.get(`/ours/${d}`, rl.createLimiter({ max: 5, windowSec: 60, standardHeaders: d, legacyHeaders: true }), answer);
            app.get(`/erl/${d}`, rateLimit({ windowMs: 60_000, limit: 5, standardHeaders: d, legacyHeaders: true, validate: false }), answer);
          }
          app.get('/none', rl.createLimiter({ max: 5, windowSec: 60, standardHeaders: false }), answer);
          app.get('/named8', rl.createLimiter({ name: 'login', max: 5, windowSec: 60, standardHeaders: 'draft-8' }), answer);
        },
        async (base) => {
          const pick = (h) => Object.fromEntries([...h].filter(([k]) => /ratelimit|retry-after/i.test(k)));
          for (const d of drafts) {
            const ip = freshIp();
            const ours = pick((await call(base, `/ours/${d}`, { ip })).headers);
            const erl = pick((await call(base, `/erl/${d}`, { ip })).headers);
            assert.deepEqual(Object.keys(ours).sort(), Object.keys(erl).sort(), d);
            for (const k of Object.keys(erl)) {
              // the same text; numbers may differ by 1 (a second boundary between the two calls)
              const skeleton = (v) => v.replace(/\d+/g, '#');
              assert.equal(skeleton(ours[k]), skeleton(erl[k]), `${d} ${k}: ${ours[k]} vs ${erl[k]}`);
              const nums = (v) => (v.match(/\d+/g) || []).map(Number);
              nums(ours[k]).forEach((n, i) => assert.ok(Math.abs(n - nums(erl[k])[i]) <= 1, `${d} ${k}: ${ours[k]} vs ${erl[k]}`));
              if (!/reset/i.test(k) && k !== 'ratelimit') assert.equal(ours[k], erl[k], `${d} ${k}`);
            }
            console.log(`# login headers ${d} (${name}): ${JSON.stringify(ours)}`);
          }
          const none = pick((await call(base, '/none', { ip: freshIp() })).headers);
          assert.deepEqual(none, {}, 'standardHeaders: false sends none');
          const named = (await call(base, '/named8', { ip: freshIp() })).headers.get('ratelimit');
          assert.match(named, /^"login"; r=4; t=(59|60)$/);
        },
      );
    });

    it('every new option is validated with a code; nothing is built from a bad one', () => {
      const bad = [
        [{ skipSuccessfulRequests: 'yes' }, TypeError, 'ERR_INVALID_ARG'],
        [{ skipFailedRequests: 1 }, TypeError, 'ERR_INVALID_ARG'],
        [{ requestWasSuccessful: true }, TypeError, 'ERR_INVALID_ARG'],
        [{ blockDurationSec: '60' }, TypeError, 'ERR_INVALID_ARG'],
        [{ blockDurationSec: 0 }, RangeError, 'ERR_OUT_OF_RANGE'],
        [{ blockDurationSec: 1.5 }, RangeError, 'ERR_OUT_OF_RANGE'],
        [{ max: () => 1, windowSec: 0 }, RangeError, 'ERR_OUT_OF_RANGE'],
        [{ name: 7 }, TypeError, 'ERR_INVALID_ARG'],
        [{ name: 'a b' }, RangeError, 'ERR_OUT_OF_RANGE'],
        [{ name: 'x'.repeat(65) }, RangeError, 'ERR_OUT_OF_RANGE'],
        [{ name: 'n', perPath: 'yes' }, TypeError, 'ERR_INVALID_ARG'],
        [{ perPath: false }, TypeError, 'ERR_INVALID_ARG'],
        [{ standardHeaders: 'draft-9' }, RangeError, 'ERR_OUT_OF_RANGE'],
        [{ standardHeaders: 6 }, TypeError, 'ERR_INVALID_ARG'],
        [{ legacyHeaders: 'true' }, TypeError, 'ERR_INVALID_ARG'],
      ];
      for (const [opts, type, code] of bad) {
        assert.throws(() => rl.createLimiter({ max: 5, ...opts }), (e) => e instanceof type && e.code === code, JSON.stringify(opts));
      }
      assert.equal(typeof rl.createLimiter({ name: 'ok', max: () => 3, windowSec: 10, blockDurationSec: 600, skipSuccessfulRequests: true, standardHeaders: 'draft-8', legacyHeaders: true, perPath: true }), 'function');
    });
  });
}

describe('login-grade rate limits when Redis hangs', () => {
  it('a hung Redis (SIGSTOP): a login limiter with every new option answers within commandTimeoutMs + 150 ms (open, or 503 with failClosed)', async () => {
    const { startRedis } = require('./helpers/redis');
    const server = await startRedis();
    const T = 200;
    const c = createCache({ url: server.url, commandTimeoutMs: T, rateLimitInsurance: false });
    const rl = c.rateLimiter;
    const opts = { max: 2, windowSec: 60, blockDurationSec: 600, skipSuccessfulRequests: true, keyGenerator: rl.keys.usernameAndIp('username'), standardHeaders: 'draft-8', legacyHeaders: true };
    const app = express();
    app.use(express.json());
    app.post('/open', rl.createLimiter({ name: 'hung-open', ...opts }), answer);
    app.post('/closed', rl.createLimiter({ name: 'hung-closed', failClosed: true, ...opts }), answer);
    const s = await serve(app);
    try {
      const body = JSON.stringify({ username: 'mallory' });
      const post = async (path) => {
        const t0 = performance.now();
        const r = await fetch(s.base + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        await r.text();
        return { status: r.status, ms: Math.round(performance.now() - t0) };
      };
      assert.equal((await post('/open')).status, 200, 'Redis up');
      server.pause();
      const got = [];
      for (const path of ['/open', '/closed', '/open', '/closed']) got.push(await post(path));
      console.log(`# login options, hung Redis: ${got.map((g) => `${g.status} in ${g.ms} ms`).join(', ')} (commandTimeoutMs ${T})`);
      assert.deepEqual(
        got.map((g) => g.status),
        [200, 503, 200, 503],
      );
      for (const g of got) assert.ok(g.ms <= T + 150, `answered in ${g.ms} ms`);
    } finally {
      server.resume();
      await s.close();
      await c.shutdown();
      await server.stop();
    }
  });
});
