'use strict';
// `@bisman/cache/express-session`: an express-session Store, in real Express apps with a
// cookie-carrying client, on a real redis-server and on memory:// (and on Cluster/Sentinel by
// `npm run test:topologies`): login, the next request, rolling touch (TTL moves, data not
// rewritten), destroy, expiry, log-out-everywhere through the per-user session index (and a
// save in flight that must not bring a revoked session back), all/length/clear by SCAN within
// their bounds, hostile sids, and a killed Redis (the app answers, nothing unhandled).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const express = require('express');
const session = require('express-session');
const { createCache } = require('..');
const { SessionStore } = require('../express-session');
const { BACKENDS } = require('./helpers/backends');
const { serve, cookieClient } = require('./helpers/http');
const { startRedis } = require('./helpers/redis');
const { waitFor } = require('./helpers/faults');

delete process.env.REDIS_URL; // these tests choose their back end explicitly

const uid = () => crypto.randomBytes(6).toString('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const sha = (s) => crypto.createHash('sha256').update(s).digest('hex');

// An app with express-session on `store`: POST /login/:user (a new session naming the user),
// GET /me (reads only), POST /bump (writes), POST /logout (destroys).
function appWith(store, sessionOptions = {}) {
  const app = express();
  app.use(session({ store, secret: 'test-secret', name: 'sid', resave: false, saveUninitialized: false, cookie: { maxAge: 600_000 }, ...sessionOptions }));
  app.post('/login/:user', (req, res, next) =>
    req.session.regenerate((err) => {
      if (err) return next(err);
      req.session.userId = Number(req.params.user);
      res.json({ ok: true });
    }),
  );
  app.get('/me', (req, res) => res.json({ userId: req.session.userId ?? null, bumps: req.session.bumps ?? 0 }));
  app.post('/bump', (req, res) => {
    req.session.bumps = (req.session.bumps ?? 0) + 1;
    res.json({ bumps: req.session.bumps });
  });
  app.post('/logout', (req, res, next) => req.session.destroy((err) => (err ? next(err) : res.json({ ok: true }))));
  app.use((err, req, res, _next) => res.status(500).json({ error: err.message, code: err.code }));
  return app;
}

// The store's methods as promises through their callbacks (as express-session calls them).
const cb = (store, method, ...args) => new Promise((resolve, reject) => store[method](...args, (err, v) => (err ? reject(err) : resolve(v))));

for (const [name, make] of BACKENDS) {
  describe(`express-session store on ${name}`, () => {
    let backend;
    let cache;

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url });
    });
    after(async () => {
      await cache.shutdown();
      await backend.close();
    });

    it('login sets the cookie and a session stored under the sid\'s hash; the next request reads it; logout destroys it', async () => {
      const prefix = `l${uid()}`;
      const store = new SessionStore({ cache, prefix });
      const s = await serve(appWith(store));
      try {
        const c = cookieClient(s.base);
        assert.deepEqual((await c.req('POST', '/login/7')).body, { ok: true });
        const sid = c.sid();
        assert.ok(sid, 'the login set the signed cookie');
        const key = `session:${prefix}.${sha(sid)}`;
        const keys = await backend.keys();
        assert.ok(keys.includes(key), `stored at ${key}`);
        assert.ok(!keys.some((k) => k.includes(sid)), 'the raw sid reaches no key');
        assert.ok(keys.includes('session:user:7'), 'indexed under the user');
        const ttl = await backend.pttl(key);
        assert.ok(ttl > 590_000 && ttl <= 600_000, `TTL from cookie.maxAge: ${ttl}`);
        const stored = await store.get(sid);
        assert.equal(stored.userId, 7);
        // express-session sets originalMaxAge from `expires - Date.now()` as the cookie is made:
        // a millisecond tick between the two gives 599,999
        const age = stored.cookie.originalMaxAge;
        assert.ok(age > 599_000 && age <= 600_000, `express-session's JSON, cookie included (originalMaxAge ${age})`);
        assert.deepEqual((await c.req('GET', '/me')).body, { userId: 7, bumps: 0 });
        assert.deepEqual((await c.req('POST', '/bump')).body, { bumps: 1 });
        assert.deepEqual((await c.req('GET', '/me')).body, { userId: 7, bumps: 1 });
        assert.deepEqual((await c.req('POST', '/logout')).body, { ok: true });
        assert.ok(!(await backend.keys()).includes(key), 'destroy removed the session');
        assert.deepEqual((await c.req('GET', '/me')).body, { userId: null, bumps: 0 }, 'the old cookie names no session');
      } finally {
        await s.close();
      }
    });

    it('rolling: a read-only request touches: the TTL moves on, the stored value is not rewritten', async () => {
      const prefix = `r${uid()}`;
      const store = new SessionStore({ cache, prefix });
      const calls = { set: 0, touch: 0 };
      for (const m of ['set', 'touch']) {
        const orig = store[m].bind(store);
        store[m] = (...a) => {
          calls[m]++;
          return orig(...a);
        };
      }
      const s = await serve(appWith(store, { rolling: true }));
      try {
        const c = cookieClient(s.base);
        await c.req('POST', '/login/11');
        const hash = `${prefix}.${sha(c.sid())}`;
        const key = `session:${hash}`;
        const before = (await cache.sessionCache.storeRead(hash)).json;
        calls.set = 0;
        await sleep(1500);
        const aged = await backend.pttl(key);
        assert.deepEqual((await c.req('GET', '/me')).body, { userId: 11, bumps: 0 });
        const moved = await backend.pttl(key);
        console.log(`# express-session store (${name}): rolling touch: PTTL ${aged} → ${moved} ms; set ${calls.set}, touch ${calls.touch}`);
        assert.ok(aged < 599_000, `the TTL ran down: ${aged}`);
        assert.ok(moved > aged + 1000 && moved <= 600_000, `the touch moved the TTL on: ${aged} → ${moved}`);
        assert.equal(calls.set, 0, 'no save of an unmodified session');
        assert.equal(calls.touch, 1);
        assert.equal((await cache.sessionCache.storeRead(hash)).json, before, 'the stored value was not rewritten');
        // The user's index follows the touch: a log-out-everywhere still finds the session.
        assert.equal(await cache.sessionCache.invalidateUserSessions(11), 1);
        assert.equal(await store.get(c.sid()), null);
        // A touch of a session that is gone writes nothing.
        await cb(store, 'touch', c.sid(), { cookie: { expires: new Date(Date.now() + 60_000) }, userId: 11 });
        assert.ok(!(await backend.keys()).includes(key), 'touch brought nothing back');
      } finally {
        await s.close();
      }
    });

    it('expiry: a session whose cookie runs out is gone from the store; a cookie already expired is destroyed, not written', async () => {
      const prefix = `e${uid()}`;
      const store = new SessionStore({ cache, prefix });
      const s = await serve(appWith(store, { cookie: { maxAge: 1500 } }));
      try {
        const c = cookieClient(s.base);
        await c.req('POST', '/login/12');
        const key = `session:${prefix}.${sha(c.sid())}`;
        const ttl = await backend.pttl(key);
        assert.ok(ttl > 0 && ttl <= 2000, `TTL rounded up to whole seconds: ${ttl}`);
        const ms = await waitFor(async () => !(await backend.keys()).includes(key), { timeoutMs: 6000, everyMs: 100 });
        assert.ok(ms >= 0, 'the session expired');
        assert.equal(await store.get(c.sid()), null);
        await store.set('live', { cookie: { expires: new Date(Date.now() + 60_000) }, userId: 12 });
        assert.ok(await store.get('live'));
        await store.set('live', { cookie: { expires: new Date(Date.now() - 1000) }, userId: 12 });
        assert.equal(await store.get('live'), null, 'an expired cookie destroys the session');
        // no expiry on the cookie: ttlSec, by default the session family's 1 h
        await store.set('browser', { cookie: { originalMaxAge: null } });
        const t = await backend.pttl(`session:${prefix}.${sha('browser')}`);
        assert.ok(t > 3_590_000 && t <= 3_600_000, `default ttlSec, 1 h: ${t}`);
        const short = new SessionStore({ cache, prefix, ttlSec: 30 });
        await short.set('browser2', { cookie: {} });
        const t2 = await backend.pttl(`session:${prefix}.${sha('browser2')}`);
        assert.ok(t2 > 25_000 && t2 <= 30_000, `ttlSec: ${t2}`);
      } finally {
        await s.close();
      }
    });

    it('log out everywhere: invalidateUserSessions ends both cookie sessions of a user, not a third user\'s', async () => {
      const store = new SessionStore({ cache, prefix: `u${uid()}` });
      const s = await serve(appWith(store));
      try {
        const user = 20_000 + Math.floor(Math.random() * 1000);
        const [a, b, other] = [cookieClient(s.base), cookieClient(s.base), cookieClient(s.base)];
        await a.req('POST', `/login/${user}`);
        await b.req('POST', `/login/${user}`);
        await other.req('POST', `/login/${user + 1}`);
        assert.equal((await a.req('GET', '/me')).body.userId, user);
        assert.deepEqual((await cache.sessionCache.getUserSessions(user)).length, 2);
        assert.equal(await cache.sessionCache.invalidateUserSessions(user), 2);
        assert.deepEqual((await a.req('GET', '/me')).body, { userId: null, bumps: 0 });
        assert.deepEqual((await b.req('GET', '/me')).body, { userId: null, bumps: 0 });
        assert.deepEqual((await other.req('GET', '/me')).body, { userId: user + 1, bumps: 0 });
        // through pub/sub's invalidateUserSessions (the cross-node path) too
        await a.req('POST', `/login/${user}`);
        await cache.pubsub.invalidateUserSessions(user);
        assert.equal((await a.req('GET', '/me')).body.userId, null);
        assert.equal((await other.req('GET', '/me')).body.userId, user + 1);
      } finally {
        await s.close();
      }
    });

    it('a save in flight during a log-out-everywhere (or a destroy) does not bring the session back', async () => {
      const store = new SessionStore({ cache, prefix: `g${uid()}` });
      const user = `race-${uid()}`;
      const sess = { cookie: { expires: new Date(Date.now() + 60_000), originalMaxAge: 60_000 }, userId: user };
      await store.set('s1', sess);
      await store.set('s2', sess);
      const readA = await store.get('s1'); // a request that began before the revocation …
      const readB = await store.get('s2');
      assert.equal(await cache.sessionCache.invalidateUserSessions(user), 2);
      readA.bumps = 1; // … and saves after it
      await cb(store, 'set', 's1', readA);
      assert.equal(await store.get('s1'), null, 'the revoked session stays revoked');
      await store.destroy('s2');
      await store.set('s2', readB);
      assert.equal(await store.get('s2'), null);
      // a session loaded after the revocation is saved as usual (the guard compares
      // milliseconds: a read in the revocation's own millisecond counts as before it; on
      // Cluster the user-wide check compares the clocks of two nodes, so a read within their
      // allowed skew, 1 s, after the revocation counts as before it too)
      await sleep(name === 'cluster' ? 1100 : 5);
      await store.set('s3', sess);
      const fresh = await store.get('s3');
      fresh.bumps = 2;
      await store.set('s3', fresh);
      assert.equal((await store.get('s3')).bumps, 2);
    });

    it('all, length and clear: by SCAN steps of scanCount, only this prefix, within their bounds', async () => {
      const prefix = `a${uid()}`;
      const store = new SessionStore({ cache, prefix, scanCount: 10 });
      const neighbour = new SessionStore({ cache, prefix: `${prefix}x` });
      const N = 35;
      for (let i = 0; i < N; i++) await store.set(`sid-${i}`, { cookie: { originalMaxAge: null }, n: i, userId: i % 5 === 0 ? `all-${prefix}` : undefined });
      for (let i = 0; i < 3; i++) await neighbour.set(`sid-${i}`, { cookie: {}, n: i });
      const token = crypto.randomBytes(32).toString('hex');
      assert.equal(await cache.sessionCache.setSession(token, { user_id: 1 }), true);
      assert.equal(await cb(store, 'length'), N);
      const all = await cb(store, 'all');
      assert.equal(all.length, N);
      assert.deepEqual(all.map((x) => x.n).sort((p, q) => p - q), Array.from({ length: N }, (_, i) => i));
      assert.ok(all.every((x) => typeof x.cookie === 'object'));
      // bounds: fewer sessions allowed than there are, or fewer keys visited than needed
      const capped = new SessionStore({ cache, prefix, scanCount: 10, scanLimits: { maxAll: 20, maxLength: 20 } });
      await assert.rejects(cb(capped, 'all'), { code: 'ERR_VALUE_TOO_LARGE' });
      await assert.rejects(capped.length(), { code: 'ERR_VALUE_TOO_LARGE' });
      const shortWalk = new SessionStore({ cache, prefix, scanCount: 10, scanLimits: { maxVisitedKeys: 20 } });
      await assert.rejects(shortWalk.length(), { code: 'ERR_VALUE_TOO_LARGE' });
      await cb(store, 'clear');
      assert.equal(await store.length(), 0);
      assert.equal(await neighbour.length(), 3, 'another prefix is untouched');
      assert.ok(await cache.sessionCache.getSession(token), 'a token session is untouched');
      assert.equal(await store.get('sid-0'), null);
    });

    it('hostile sids: any string gets null (never a throw); a write under one that names no session is refused with a code', async () => {
      const store = new SessionStore({ cache, prefix: `h${uid()}` });
      for (const sid of ['', 'x'.repeat(70_000), 'é'.repeat(30_000), 'a:b', '*', 'session:user:7', '\u0000\n', '[a-z]?', ' ']) {
        assert.equal(await cb(store, 'get', sid), null, `get(${JSON.stringify(sid.slice(0, 20))})`);
        await cb(store, 'destroy', sid);
        await cb(store, 'touch', sid, { cookie: {} });
      }
      for (const sid of [undefined, null, 42, {}]) assert.equal(await store.get(sid), null);
      await assert.rejects(cb(store, 'set', '', { cookie: {} }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      await assert.rejects(cb(store, 'set', 's', { cookie: {}, userId: { id: 1 } }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      // a stored value that is not a session (no cookie object) is no session
      await store.set('odd', { cookie: {} });
      await cache.sessionCache.setSession(`${store.prefix}.${sha('odd')}`, { x: 1 });
      assert.equal(await store.get('odd'), null);
      // a forged cookie reaches the app as no session
      const s = await serve(appWith(store));
      try {
        const c = cookieClient(s.base);
        c.setCookie(encodeURIComponent(`s:${'A'.repeat(4000)}.forged`));
        assert.deepEqual(await c.req('GET', '/me'), { status: 200, body: { userId: null, bumps: 0 } });
      } finally {
        await s.close();
      }
    });
  });
}

describe('express-session store when Redis is killed', () => {
  it('the app answers (500 from its error handler, within commandTimeoutMs), nothing is unhandled, the cookie is kept, and the app serves again with Redis', async () => {
    const server = await startRedis();
    const cache = createCache({ url: server.url, commandTimeoutMs: 300 });
    const unhandled = [];
    const onUnhandled = (err) => unhandled.push(err);
    process.on('unhandledRejection', onUnhandled);
    const store = new SessionStore({ cache });
    const s = await serve(appWith(store));
    try {
      const c = cookieClient(s.base);
      await c.req('POST', '/login/31');
      assert.equal((await c.req('GET', '/me')).body.userId, 31);
      const sid = c.sid();
      server.kill();
      const t0 = Date.now();
      const me = await c.req('GET', '/me');
      const login = await cookieClient(s.base).req('POST', '/login/32');
      const ms = Date.now() - t0;
      console.log(`# express-session store, Redis killed: GET /me → ${me.status} ${me.body.code}; POST /login → ${login.status} ${login.body.code} (${ms} ms for both)`);
      assert.equal(me.status, 500, 'get passes the error: express-session calls next(err)');
      assert.ok(me.body.code, 'the error carries its code');
      assert.equal(login.status, 500, 'a save fails with the error');
      assert.ok(ms < 10_000, `answered without hanging: ${ms} ms`);
      await assert.rejects(store.destroy('any'), (err) => typeof err.code === 'string');
      assert.equal(c.sid(), sid, 'express-session did not replace the cookie during the outage');
      // The restarted redis-server has no persistence: the session is gone, so the user logs in again.
      await server.start();
      const back = await waitFor(async () => (await c.req('GET', '/me')).status === 200, { timeoutMs: 15_000, everyMs: 200 });
      assert.ok(back >= 0, 'the app serves again once Redis is back');
      assert.deepEqual((await c.req('POST', '/login/31')).body, { ok: true });
      assert.equal((await c.req('GET', '/me')).body.userId, 31);
      await sleep(50);
      assert.deepEqual(unhandled, []);
    } finally {
      process.off('unhandledRejection', onUnhandled);
      await s.close();
      await cache.shutdown();
      await server.stop();
    }
  });

  it('bad options are refused with a code', () => {
    const cache = createCache({ url: 'memory://opts' });
    assert.throws(() => new SessionStore({ cache, prefix: 'a.b' }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.throws(() => new SessionStore({ cache, prefix: 3 }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
    assert.throws(() => new SessionStore({ cache, ttlSec: 0 }), { name: 'RangeError' });
    // connect-redis' 86400 would be cut to the session family's 1 h without a word: refused
    assert.throws(() => new SessionStore({ cache, ttlSec: 86_400 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    assert.equal(new SessionStore({ cache, ttlSec: 3600 }).ttlSec, 3600);
    assert.throws(() => new SessionStore({ cache, scanCount: 0 }), { name: 'RangeError' });
    assert.throws(() => new SessionStore({ cache, scanLimits: { maxAll: 1e9 } }), { name: 'RangeError' });
    assert.throws(() => new SessionStore({ cache, scanLimits: { nope: 1 } }), { name: 'TypeError' });
    assert.throws(() => new SessionStore({ cache, userId: 'id' }), { name: 'TypeError' });
    assert.throws(() => new SessionStore({ cache: {} }), { name: 'TypeError' });
    assert.ok(new SessionStore({ cache }) instanceof session.Store);
    return cache.shutdown();
  });
});
