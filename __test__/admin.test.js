'use strict';
// `@bisman/cache/admin`: the operator's router, mounted in real Express apps (5 and 4) and a
// plain http server, on a real redis-server and on memory://. It refuses to exist without an
// authorize function; every request (page, script, API, event stream) is checked with it;
// actions refuse cross-origin requests and bad input (400, nothing changed); the event stream
// is bounded in clients, ticks once a second, ends on disconnect and when authorize turns false;
// the recent errors are the cache's own, bounded, without the Redis password.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const http = require('http');
const path = require('path');
const { spawnSync } = require('child_process');
const express = require('express');
const express4 = require('express4');
const { createCache } = require('..');
const { adminRouter } = require('../admin');
const { BACKENDS } = require('./helpers/backends');
const { serve } = require('./helpers/http');
const { freePort, sleep } = require('./helpers/redis');

delete process.env.REDIS_URL; // these tests choose their back end explicitly

const uid = () => crypto.randomBytes(6).toString('hex');
const future = (ms = 60000) => new Date(Date.now() + ms).toISOString();

// An app with the router at /admin. `who(req)` decides authorize: the header x-role 'admin'
// passes, anything else fails. Answers { base, close, router, calls }.
async function mount(cache, { expressLib = express, bodyParser = false, ...options } = {}) {
  const calls = { n: 0 };
  const app = expressLib();
  if (bodyParser) app.use(expressLib.json());
  const router = adminRouter({
    cache,
    authorize: async (req) => {
      calls.n++;
      return req.headers['x-role'] === 'admin';
    },
    ...options,
  });
  app.use('/admin', router);
  const srv = await serve(app);
  return {
    base: srv.base,
    router,
    calls,
    close: async () => {
      router.close();
      await srv.close();
    },
  };
}

const ADMIN = { 'x-role': 'admin' };

async function req(base, path, { method = 'GET', headers = {}, body } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body);
    if (init.headers['content-type'] === undefined) init.headers['content-type'] = 'application/json';
  }
  const r = await fetch(base + path, init);
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, text, json };
}

// An event-stream client over http: `events` grows as data lines arrive; `ended` resolves when
// the server ends the stream.
function openStream(base, path, headers = ADMIN) {
  return new Promise((resolve, reject) => {
    const r = http.get(base + path, { headers }, (res) => {
      const s = { status: res.statusCode, type: res.headers['content-type'], events: [], res, req: r };
      s.ended = new Promise((done) => res.on('close', done));
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d) => {
        buf += d;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          for (const line of block.split('\n')) if (line.startsWith('data: ')) s.events.push(JSON.parse(line.slice(6)));
        }
      });
      resolve(s);
    });
    r.on('error', reject);
  });
}

async function until(cond, timeoutMs = 5000) {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await sleep(20);
  }
  return true;
}

describe('adminRouter: options', () => {
  it('refuses to be created without an authorize function (TypeError ERR_INVALID_ARG)', () => {
    const cache = createCache({ url: 'memory://admin-opts' });
    try {
      const refused = [undefined, null, {}, { cache }, { cache, authorize: true }, { cache, authorize: 'admin' }];
      for (const [i, options] of refused.entries()) {
        assert.throws(() => adminRouter(options), (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG', `options #${i} refused`);
      }
      assert.throws(() => adminRouter({ cache: {}, authorize: () => true }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      assert.throws(() => adminRouter({ cache, authorize: () => true, basePath: 'admin/' }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      assert.throws(() => adminRouter({ cache, authorize: () => true, maxClients: 0 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => adminRouter({ cache, authorize: () => true, deleteSession: 'db' }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      assert.equal(cache.listenerCount('error'), 0, 'a refused router leaves no listener behind');
      const r = adminRouter({ cache, authorize: () => true });
      assert.equal(typeof r, 'function');
      assert.equal(cache.listenerCount('error'), 1);
      r.close();
      assert.equal(cache.listenerCount('error'), 0);
    } finally {
      cache.shutdown();
    }
  });

  it('the cache defaults to the module default instance', () => {
    const r = adminRouter({ authorize: () => false });
    r.close();
    assert.equal(typeof r, 'function');
  });
});

for (const [name, make] of BACKENDS) {
  describe(`adminRouter on ${name}`, () => {
    let backend;
    let cache;
    let app;

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url, keyPrefix: `adm${uid()}:` });
      app = await mount(cache, { maxClients: 2 });
    });
    after(async () => {
      await app.close();
      await cache.shutdown();
      await backend.close();
    });

    it('every request is checked with authorize: 401 without credentials, 403 with; never the page', async () => {
      const paths = [
        ['GET', '/admin'],
        ['GET', '/admin/'],
        ['GET', '/admin/page.js'],
        ['GET', '/admin/page.css'],
        ['GET', '/admin/api/state'],
        ['GET', '/admin/api/events'],
        ['GET', '/admin/api/sessions?userId=1'],
        ['GET', '/admin/nowhere'],
        ['POST', '/admin/api/limits/reset'],
      ];
      for (const [method, p] of paths) {
        const before = app.calls.n;
        const body = method === 'POST' ? { ip: '10.0.0.1' } : undefined;
        const anon = await req(app.base, p, { method, body });
        assert.equal(anon.status, 401, `${method} ${p} without credentials`);
        assert.deepEqual(anon.json, { error: 'Unauthorized' });
        const user = await req(app.base, p, { method, body, headers: { authorization: 'Bearer not-an-admin', 'x-role': 'user' } });
        assert.equal(user.status, 403, `${method} ${p} with a non-admin's credentials`);
        assert.deepEqual(user.json, { error: 'Forbidden' });
        const cookie = await req(app.base, p, { method, body, headers: { cookie: 'sid=x' } });
        assert.equal(cookie.status, 403);
        assert.equal(app.calls.n - before, 3, `authorize asked once per request of ${method} ${p}`);
        for (const r of [anon, user, cookie]) assert.doesNotMatch(r.text, /<html|EventSource/);
      }
      const page = await req(app.base, '/admin', { headers: ADMIN });
      assert.equal(page.status, 200);
      assert.match(page.headers.get('content-type'), /^text\/html/);
      assert.equal(page.headers.get('content-security-policy').split(';')[0], "default-src 'self'");
      assert.match(page.text, /src="\/admin\/page\.js"/);
      assert.doesNotMatch(page.text, /<script>|style=|https?:\/\//, 'no inline script or style, nothing from another origin');
      const js = await req(app.base, '/admin/page.js', { headers: ADMIN });
      assert.equal(js.status, 200);
      assert.match(js.headers.get('content-type'), /^text\/javascript/);
    });

    it('authorize that throws or answers a non-boolean refuses (500 / 403 JSON)', async () => {
      for (const [authorize, status] of [
        [() => {
          throw new Error('db down');
        }, 500],
        [async () => Promise.reject(new Error('db down')), 500],
        [() => 'yes', 401],
        [() => 1, 401],
        [async () => true, 200],
      ]) {
        const a = express();
        const r = adminRouter({ cache, authorize });
        a.use('/admin', r);
        const srv = await serve(a);
        try {
          for (const p of ['/admin', '/admin/api/state', '/admin/api/events']) {
            if (status === 200 && p === '/admin/api/events') continue; // streams are tested below
            const res = await req(srv.base, p);
            assert.equal(res.status, status, `${authorize} on ${p}`);
            if (status !== 200) assert.doesNotMatch(res.text, /<html/);
          }
        } finally {
          r.close();
          await srv.close();
        }
      }
    });

    it("a user's sessions: listed, one revoked, then all revoked, through the public API", async () => {
      const userId = `u${uid()}`;
      const hashes = [1, 2, 3].map(() => crypto.randomBytes(32).toString('hex'));
      for (const h of hashes) assert.equal(await cache.sessionCache.setSession(h, { user_id: userId, expires_at: future() }), true);
      const list = await req(app.base, `/admin/api/sessions?userId=${userId}`, { headers: ADMIN });
      assert.equal(list.status, 200);
      assert.equal(list.json.count, 3);
      assert.deepEqual(list.json.sessions.map((s) => s.tokenHash).sort(), [...hashes].sort());
      for (const s of list.json.sessions) assert.ok(s.present && Date.parse(s.expiresAt) > Date.now());

      const one = await req(app.base, '/admin/api/sessions/revoke', { method: 'POST', headers: ADMIN, body: { tokenHash: hashes[0] } });
      assert.deepEqual(one.json, { revoked: true });
      assert.equal(await cache.sessionCache.getSession(hashes[0]), null);
      assert.notEqual(await cache.sessionCache.getSession(hashes[1]), null);

      const all = await req(app.base, '/admin/api/sessions/revoke-all', { method: 'POST', headers: ADMIN, body: { userId } });
      assert.deepEqual(all.json, { revoked: 2 });
      assert.deepEqual(await cache.sessionCache.getUserSessions(userId), []);
      const after = await req(app.base, `/admin/api/sessions?userId=${userId}`, { headers: ADMIN });
      assert.equal(after.json.count, 0);
    });

    it("revoking calls the app's deleteSession / deleteUserSessions first; a failing one answers 500 and leaves the cache", async () => {
      const seen = [];
      let fail = false;
      const hook = (kind) => async (arg) => {
        seen.push([kind, arg, await cache.sessionCache.getUserSessions(userId).then((l) => l.length)]);
        if (fail) throw new Error('db down');
      };
      const userId = `u${uid()}`;
      const hashes = [1, 2].map(() => crypto.randomBytes(32).toString('hex'));
      for (const h of hashes) await cache.sessionCache.setSession(h, { user_id: userId, expires_at: future() });
      const a = await mount(cache, { deleteSession: hook('one'), deleteUserSessions: hook('all') });
      try {
        fail = true;
        const refused = await req(a.base, '/admin/api/sessions/revoke', { method: 'POST', headers: ADMIN, body: { tokenHash: hashes[0] } });
        assert.equal(refused.status, 500);
        assert.match(refused.json.error, /could not delete/);
        assert.notEqual(await cache.sessionCache.getSession(hashes[0]), null, 'the cache copy is kept when the app could not delete its own');
        fail = false;
        assert.deepEqual((await req(a.base, '/admin/api/sessions/revoke', { method: 'POST', headers: ADMIN, body: { tokenHash: hashes[0] } })).json, { revoked: true });
        assert.deepEqual((await req(a.base, '/admin/api/sessions/revoke-all', { method: 'POST', headers: ADMIN, body: { userId } })).json, { revoked: 1 });
        assert.deepEqual(seen, [
          ['one', hashes[0], 2],
          ['one', hashes[0], 2],
          ['all', userId, 1],
        ], 'each hook ran before the cache was touched');
      } finally {
        await a.close();
      }
    });

    it("an address's limits: status, reset of one endpoint, reset of all", async () => {
      const ip = `10.${[1, 2, 3].map(() => crypto.randomInt(256)).join('.')}`;
      for (let i = 0; i < 6; i++) await cache.rateLimiter.checkLimit(ip, '/api/auth/login');
      await cache.rateLimiter.checkLimit(ip, '/api/orders');
      const status = await req(app.base, `/admin/api/limits?ip=${ip}`, { headers: ADMIN });
      assert.equal(status.status, 200);
      assert.equal(status.json.endpoints['/api/auth/login'].current, 6);
      assert.equal(status.json.endpoints['/api/auth/login'].limit, 5);
      assert.equal(status.json.endpoints['/api/orders'].current, 1);
      assert.equal((await cache.rateLimiter.checkLimit(ip, '/api/auth/login')).allowed, false);

      const one = await req(app.base, '/admin/api/limits/reset', { method: 'POST', headers: ADMIN, body: { ip, endpoint: '/api/auth/login' } });
      assert.equal(one.status, 200);
      assert.equal(one.json.removed, 1);
      assert.equal((await cache.rateLimiter.checkLimit(ip, '/api/auth/login')).allowed, true, 'the address may log in again');
      const all = await req(app.base, '/admin/api/limits/reset', { method: 'POST', headers: ADMIN, body: { ip } });
      assert.equal(all.json.removed, 2);
      assert.deepEqual(await cache.rateLimiter.getIpStatus(ip), {});
    });

    it('a lock: owner, TTL and fence of a held lock; free after release', async () => {
      const id = uid();
      const free = await req(app.base, `/admin/api/locks?resource=task&id=${id}`, { headers: ADMIN });
      assert.deepEqual(free.json, { resource: 'task', id, locked: false });
      const lock = await cache.distributedLock.acquire('task', id, { ttlSec: 30 });
      assert.equal(lock.acquired, true);
      const held = await req(app.base, `/admin/api/locks?resource=task&id=${id}`, { headers: ADMIN });
      assert.equal(held.json.locked, true);
      assert.equal(held.json.owner, lock.owner);
      assert.ok(held.json.ttl > 0 && held.json.ttl <= 30);
      assert.equal(await cache.distributedLock.release('task', id, lock.owner), true);
      assert.equal((await req(app.base, `/admin/api/locks?resource=task&id=${id}`, { headers: ADMIN })).json.locked, false);
    });

    it('actions refuse cross-origin requests (Sec-Fetch-Site, Origin) and non-JSON bodies; nothing changes', async () => {
      const ip = `10.9.${crypto.randomInt(256)}.${crypto.randomInt(256)}`;
      await cache.rateLimiter.checkLimit(ip, '/api/auth/login');
      const host = new URL(app.base).host;
      const refused = [
        { 'sec-fetch-site': 'cross-site' },
        { 'sec-fetch-site': 'same-site' },
        { 'sec-fetch-site': 'none' },
        { origin: 'http://evil.example' },
        { origin: `http://${host}.evil.example` },
        { origin: 'null' },
        { 'sec-fetch-site': 'cross-site', origin: app.base },
      ];
      for (const h of refused) {
        const r = await req(app.base, '/admin/api/limits/reset', { method: 'POST', headers: { ...ADMIN, ...h }, body: { ip } });
        assert.equal(r.status, 403, JSON.stringify(h));
        assert.deepEqual(r.json, { error: 'cross-origin request refused' });
      }
      // A form a foreign page could post without a preflight: text/plain or urlencoded.
      for (const type of ['text/plain', 'application/x-www-form-urlencoded']) {
        const r = await req(app.base, '/admin/api/limits/reset', { method: 'POST', headers: { ...ADMIN, 'content-type': type }, body: JSON.stringify({ ip }) });
        assert.equal(r.status, 400, type);
      }
      assert.equal((await cache.rateLimiter.getIpStatus(ip))['/api/auth/login'].current, 1, 'nothing was reset');
      for (const h of [{ 'sec-fetch-site': 'same-origin' }, { origin: app.base }, {}]) {
        await cache.rateLimiter.checkLimit(ip, '/api/auth/login');
        const r = await req(app.base, '/admin/api/limits/reset', { method: 'POST', headers: { ...ADMIN, ...h }, body: { ip } });
        assert.equal(r.status, 200, `allowed: ${JSON.stringify(h)}`);
        assert.equal(r.json.removed, 1);
      }
    });

    it('bad input gets a 400 answer (never an exception), unknown routes 404, wrong methods 405', async () => {
      const bad = [
        ['GET', '/admin/api/sessions'],
        ['GET', '/admin/api/sessions?userId='],
        ['GET', '/admin/api/sessions?userId=a*'],
        ['GET', `/admin/api/sessions?userId=${'9'.repeat(257)}`],
        ['GET', '/admin/api/sessions?userId=a%00b'],
        ['GET', '/admin/api/limits?ip=1.2.3.*'],
        ['GET', '/admin/api/limits?ip=a%20b'],
        ['GET', '/admin/api/locks?resource=task'],
        ['GET', '/admin/api/locks?resource=task&id=%5B1%5D'],
        ['POST', '/admin/api/sessions/revoke', {}],
        ['POST', '/admin/api/sessions/revoke', { tokenHash: ['x'] }],
        ['POST', '/admin/api/sessions/revoke', { tokenHash: { $gt: '' } }],
        ['POST', '/admin/api/sessions/revoke-all', { userId: 'a b' }],
        ['POST', '/admin/api/limits/reset', { ip: '' }],
        ['POST', '/admin/api/limits/reset', { ip: '1.2.3.4', endpoint: 42 }],
        ['POST', '/admin/api/sessions/revoke-all', { userId: 1.5 }],
        ['POST', '/admin/api/limits/reset', '[1,2]'],
        ['POST', '/admin/api/limits/reset', 'null'],
        ['POST', '/admin/api/limits/reset', '{"ip":'],
        ['POST', '/admin/api/limits/reset', JSON.stringify({ ip: '1.2.3.4', pad: 'x'.repeat(5000) })],
      ];
      for (const [method, p, body] of bad) {
        const r = await req(app.base, p, { method, headers: ADMIN, body });
        assert.equal(r.status, 400, `${method} ${p} ${typeof body === 'string' ? body.slice(0, 40) : JSON.stringify(body)}`);
        assert.equal(typeof r.json.error, 'string');
      }
      assert.equal((await req(app.base, '/admin/api/nothing', { headers: ADMIN })).status, 404);
      assert.equal((await req(app.base, '/admin/api/sessions/revoke', { headers: ADMIN })).status, 405);
      assert.equal((await req(app.base, '/admin/api/state', { method: 'POST', headers: ADMIN, body: {} })).status, 405);
      // still serving
      assert.equal((await req(app.base, '/admin/api/state', { headers: ADMIN })).status, 200);
    });

    it('the event stream: one tick a second, at most maxClients, freed on disconnect, ended by close()', async () => {
      const a = await openStream(app.base, '/admin/api/events');
      assert.equal(a.status, 200);
      assert.match(a.type, /^text\/event-stream/);
      const b = await openStream(app.base, '/admin/api/events');
      assert.equal(b.status, 200);
      const c = await req(app.base, '/admin/api/events', { headers: ADMIN });
      assert.equal(c.status, 503, 'a third stream is refused (maxClients 2)');
      assert.equal(c.headers.get('retry-after'), '5');

      const t0 = Date.now();
      assert.ok(await until(() => a.events.length >= 1));
      await sleep(2600);
      const got = a.events.length;
      const secs = (Date.now() - t0) / 1000;
      console.log(`# ${name}: ${got} events in ${secs.toFixed(1)} s on one stream`);
      assert.ok(got >= 3 && got <= Math.ceil(secs) + 1, `about one event a second (got ${got} in ${secs} s)`);
      const ev = a.events.at(-1);
      assert.equal(ev.health.pong, 'PONG');
      assert.equal(ev.enabled, true);
      assert.equal(ev.circuit, 'closed');
      for (const s of ['session', 'permission', 'rateLimit', 'lock']) assert.equal(typeof ev.counters[s].hits, 'number');
      assert.ok(Array.isArray(ev.errors.recent));

      b.req.destroy();
      let d = null;
      for (let i = 0; i < 50 && (d === null || d.status !== 200); i++) {
        if (d !== null) d.req.destroy();
        d = await openStream(app.base, '/admin/api/events');
        if (d.status !== 200) await sleep(50);
      }
      assert.equal(d.status, 200, 'a disconnected client frees its place');

      app.router.close();
      await Promise.all([a.ended, d.ended]);
      const e = await openStream(app.base, '/admin/api/events');
      assert.equal(e.status, 200, 'close() ended every stream and freed every place');
      e.req.destroy();
    });

    it('a live stream ends when authorize turns false', async () => {
      let allow = true;
      const a = express();
      const r = adminRouter({ cache, authorize: () => allow });
      a.use('/admin', r);
      const srv = await serve(a);
      try {
        const s = await openStream(srv.base, '/admin/api/events', {});
        assert.equal(s.status, 200);
        assert.ok(await until(() => s.events.length >= 1));
        allow = false;
        const t0 = Date.now();
        const ended = await Promise.race([s.ended.then(() => true), sleep(8000).then(() => false)]);
        const ms = Date.now() - t0;
        console.log(`# ${name}: stream ended ${ms} ms after authorize turned false`);
        assert.equal(ended, true, 'the server ended the stream');
        assert.ok(ms < 7000);
      } finally {
        r.close();
        await srv.close();
      }
    });
  });
}

describe('adminRouter: recent errors, mounting', () => {
  it("records the cache's 'error' events (last 50, codes and messages, never the password)", async () => {
    const port = await freePort();
    const cache = createCache({ url: `redis://admin:s3cr3t-pw@127.0.0.1:${port}`, commandTimeoutMs: 200, connectTimeoutMs: 200 });
    cache.configure({ url: `redis://admin:s3cr3t-pw@127.0.0.1:${port}`, commandTimeoutMs: 200, connectTimeoutMs: 200, loaders: { session: async () => null } });
    const app = await mount(cache);
    try {
      for (let i = 0; i < 60; i++) await cache.sessionCache.getSessionWithFallback(`tok${i}-${uid()}`);
      const s = await req(app.base, '/admin/api/state', { headers: ADMIN });
      assert.equal(s.status, 200);
      assert.equal(s.json.enabled, false);
      assert.equal(s.json.health.pong, null);
      assert.ok(s.json.errors.total >= 50, `errors seen: ${s.json.errors.total}`);
      assert.equal(s.json.errors.recent.length, 50, 'the ring keeps the last 50');
      for (const e of s.json.errors.recent) {
        assert.equal(typeof e.message, 'string');
        assert.ok(e.code === null || typeof e.code === 'string');
        assert.deepEqual(Object.keys(e).sort(), ['at', 'code', 'message', 'service']);
      }
      assert.doesNotMatch(s.text, /s3cr3t-pw|tok\d+-/, 'no password, no token');
      console.log(`# recent errors: ${s.json.errors.total} seen, first code ${s.json.errors.recent[0].code}`);
    } finally {
      await app.close();
      await cache.shutdown();
    }
  });

  it('works under Express 4 and behind a JSON body parser mounted before it', async () => {
    const cache = createCache({ url: `memory://adm${uid()}` });
    for (const [lib, bodyParser] of [
      [express, true],
      [express4, false],
      [express4, true],
    ]) {
      const app = await mount(cache, { expressLib: lib, bodyParser });
      try {
        const page = await req(app.base, '/admin/', { headers: ADMIN });
        assert.equal(page.status, 200);
        assert.match(page.text, /href="\/admin\/page\.css"/);
        await cache.rateLimiter.checkLimit('10.1.1.1', '/x');
        const r = await req(app.base, '/admin/api/limits/reset', { method: 'POST', headers: ADMIN, body: { ip: '10.1.1.1' } });
        assert.equal(r.status, 200);
        assert.equal(r.json.removed, 1);
        const bad = await req(app.base, '/admin/api/limits/reset', { method: 'POST', headers: ADMIN, body: '[]' });
        assert.equal(bad.status, 400);
      } finally {
        await app.close();
      }
    }
    await cache.shutdown();
  });

  it('works in a plain http server with basePath, passing other paths on', async () => {
    const cache = createCache({ url: `memory://adm${uid()}` });
    const router = adminRouter({ cache, authorize: (req) => req.headers['x-role'] === 'admin', basePath: '/ops' });
    const server = http.createServer((rq, rs) =>
      router(rq, rs, () => {
        rs.writeHead(418).end('elsewhere');
      }),
    );
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${server.address().port}`;
    try {
      const page = await req(base, '/ops', { headers: ADMIN });
      assert.equal(page.status, 200);
      assert.match(page.text, /src="\/ops\/page\.js"/);
      assert.equal((await req(base, '/ops/api/state', { headers: ADMIN })).json.enabled, true);
      assert.equal((await req(base, '/ops/api/state')).status, 401);
      assert.equal((await req(base, '/elsewhere', { headers: ADMIN })).status, 418);
      assert.equal((await req(base, '/opsx', { headers: ADMIN })).status, 418);
    } finally {
      router.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await cache.shutdown();
    }
  });
});

// admin.d.ts, compiled the way __test__/typescript.test.js compiles its consumer: the router
// mounts in an Express app with the module or an instance, and `authorize` cannot be left out
// (the `@ts-expect-error` lines fail the build if the types decayed to any).
describe('adminRouter: types', () => {
  it('admin.d.ts compiles with tsc --strict and refuses a router without authorize', () => {
    const tscBin = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
    const consumer = path.join(__dirname, 'ts-consumer');
    const dir = fs.mkdtempSync(path.join(consumer, '.tmp-admin-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'admin.ts'),
        [
          "import express = require('express');",
          "import * as cache from '@bisman/cache';",
          "import { adminRouter, type AdminRouter } from '@bisman/cache/admin';",
          'const app = express();',
          "const r: AdminRouter = adminRouter({ authorize: (req) => req.headers['x-role'] === 'admin' });",
          "app.use('/admin', r);",
          "app.use('/ops', adminRouter({ cache: cache.createCache({ url: 'memory://t' }), authorize: async () => true, basePath: '/ops', maxClients: 2, deleteSession: async (h: string) => h.length }));",
          'r.close();',
          '// @ts-expect-error authorize is required',
          'adminRouter({ cache });',
          '// @ts-expect-error authorize answers a boolean',
          "adminRouter({ authorize: () => 'yes' });",
          '',
        ].join('\n'),
      );
      const cfg = JSON.parse(fs.readFileSync(path.join(consumer, 'tsconfig.json'), 'utf8'));
      cfg.files = ['admin.ts'];
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(cfg));
      const r = spawnSync(process.execPath, [tscBin, '-p', path.join(dir, 'tsconfig.json')], { cwd: path.join(__dirname, '..'), encoding: 'utf8', timeout: 120000 });
      assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
