'use strict';
// The hand-written Node-API entries of the calls every request makes (src/api/fast.rs): the
// bridge installs them in place of napi-rs' `sessionGetByToken`, `rateHit`, `permCheckModule`
// and `permCheckPage` methods. They must answer exactly what the methods answer: the same
// session for every token (short, multi-byte, at and past the stack buffer, the largest
// allowed), the same counts for string and numeric ips, the same permission answers (from the
// near cache, from the store, for numeric and string user ids, with no snapshot and with a
// corrupt one), the same errors with the same class and code for input the methods refuse,
// and a typed error (not a crash) for arguments of the wrong type.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache, hashToken } = require('..');
const { SESSION_MAX_TOKEN_BYTES } = require('../lib/rules');
const replies = require('../lib/replies');
const hooks = require('./helpers/hooks');
const { BACKENDS } = require('./helpers/backends');

delete process.env.REDIS_URL;

// Tokens of every shape the entry reads differently: its stack buffer holds 1,023 bytes.
const TOKENS = [
  't',
  'Bearer-ü-€-𝄞-token', // 2-, 3- and 4-byte UTF-8
  'a'.repeat(1023),
  'b'.repeat(1024),
  '€'.repeat(400), // 1,200 bytes from 400 characters
  'c'.repeat(SESSION_MAX_TOKEN_BYTES),
];

for (const [name, make] of BACKENDS) {
  describe(`the fast sessionGetByToken entry on ${name}`, () => {
    let backend;
    let cache;
    let native;
    let method;
    let hitMethod;
    let far; // a second cache with the near cache off: every check reads the store

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url });
      far = createCache({ url: backend.url, nearCacheTtlMs: 0 });
      native = cache.ctx.bridge.native;
      method = Object.getPrototypeOf(native).sessionGetByToken;
      hitMethod = Object.getPrototypeOf(native).rateHit;
    });

    after(async () => {
      await cache.shutdown();
      await far.shutdown();
      await backend.close();
    });

    // One native call through the bridge (its id, slot and delivery), by `start`.
    const call = (start) => cache.ctx.op(start, (v) => v, (err) => Promise.reject(err));
    const outcome = (p) =>
      p.then(
        (value) => ({ value }),
        (err) => ({ error: [err.constructor.name, err.code] }),
      );

    it('is installed in place of the method, and answers every token as the method does', async () => {
      assert.equal(typeof method, 'function');
      assert.notEqual(native.sessionGetByToken, method, 'the bridge uses the hand-written entry');
      for (const [i, token] of TOKENS.entries()) {
        const data = { user_id: 100 + i, token: token.slice(0, 8) };
        assert.equal(await cache.sessionCache.setSession(hashToken(token), data), true);
        const fast = await call((n, id) => n.sessionGetByToken(id, token));
        const slow = await call((n, id) => method.call(n, id, token));
        assert.deepEqual(JSON.parse(fast), data, `token of ${Buffer.byteLength(token)} bytes`);
        assert.equal(fast, slow);
        assert.deepEqual(await cache.sessionCache.getSessionWithFallback(token), { ...data, source: 'cache' });
      }
      assert.equal(await call((n, id) => n.sessionGetByToken(id, 'nobody-has-this-token')), null);
    });

    it('refuses what the method refuses, with the same class and code; wrong argument types are a TypeError with a code', async () => {
      for (const token of ['', 'd'.repeat(SESSION_MAX_TOKEN_BYTES + 1), '€'.repeat(SESSION_MAX_TOKEN_BYTES)]) {
        const fast = await outcome(call((n, id) => n.sessionGetByToken(id, token)));
        const slow = await outcome(call((n, id) => method.call(n, id, token)));
        assert.ok(fast.error, `a token of ${Buffer.byteLength(token)} bytes is refused`);
        assert.deepEqual(fast, slow);
      }
      for (const args of [[7], [7, 42], [7, null], [7, { toString: () => 't' }], ['7', 't']]) {
        const got = await outcome(call((n) => n.sessionGetByToken(...args)));
        assert.deepEqual(got, { error: ['TypeError', 'ERR_INVALID_ARG'] }, `arguments ${JSON.stringify(args)}`);
      }
      // the cache still answers afterwards
      assert.equal(await cache.sessionCache.setSession(hashToken('after'), { user_id: 1 }), true);
      assert.deepEqual(await cache.sessionCache.getSessionWithFallback('after'), { user_id: 1, source: 'cache' });
    });

    it('rateHit: counts as the method counts, for string and numeric ips and long endpoints, and refuses what it refuses', async () => {
      assert.notEqual(native.rateHit, hitMethod, 'the bridge uses the hand-written entry');
      const total = (v) => replies.counter(v, {}).total;
      for (const [ip, endpoint] of [['10.9.8.7', '/fast'], [4242, '/fast'], ['2001:db8::1', `/${'e'.repeat(511)}`], ['ü-user', '/€']]) {
        assert.equal(total(await call((n, id) => n.rateHit(id, ip, endpoint, 10, 60))), 1, `${ip} ${endpoint.slice(0, 8)}`);
        assert.equal(total(await call((n, id) => hitMethod.call(n, id, ip, endpoint, 10, 60))), 2);
        assert.equal(total(await call((n, id) => n.rateHit(id, ip, endpoint, 10, 60))), 3);
      }
      for (const args of [['', '/e', 5, 60], ['1.2.3.4', '', 5, 60], ['1.2.3.4', 'a b', 5, 60], ['1.2.3.4', `/${'e'.repeat(512)}`, 5, 60], ['1.2.3.4', '/e', 1.5, 60], ['1.2.3.4', '/e', -1, 60], ['1.2.3.4', '/e', 5, 0], ['1.2.3.4', '/e', NaN, 60], [1.5, '/e', 5, 60]]) {
        const fast = await outcome(call((n, id) => n.rateHit(id, ...args)));
        const slow = await outcome(call((n, id) => hitMethod.call(n, id, ...args)));
        assert.ok(fast.error, `refused: ${JSON.stringify(args)}`);
        assert.deepEqual(fast, slow, JSON.stringify(args));
      }
      for (const args of [[7, '1.2.3.4', '/e', 5], [7, {}, '/e', 5, 60], [7, '1.2.3.4', 9, 5, 60], [7, '1.2.3.4', '/e', '5', 60], ['7', '1.2.3.4', '/e', 5, 60]]) {
        const got = await outcome(call((n) => n.rateHit(...args)));
        assert.deepEqual(got, { error: ['TypeError', 'ERR_INVALID_ARG'] }, `arguments ${JSON.stringify(args)}`);
      }
      assert.equal((await cache.rateLimiter.checkLimit('10.9.8.6', '/fast')).total, 1, 'the limiter still counts');
    });

    it('permCheckModule / permCheckPage: answer as the methods answer, near and far, and refuse what they refuse', async () => {
      const proto = Object.getPrototypeOf(native);
      const methods = { permCheckModule: proto.permCheckModule, permCheckPage: proto.permCheckPage };
      assert.notEqual(native.permCheckModule, methods.permCheckModule, 'the bridge uses the hand-written entry');
      assert.notEqual(native.permCheckPage, methods.permCheckPage, 'the bridge uses the hand-written entry');
      // One check by the entry (`fast`) or the method, through the bridge: a null answer
      // means the store read started, whose reply is then the answer.
      const check = (c, fast, name, ...args) =>
        c.ctx.op(
          (n, id) => {
            const v = fast ? n[name](id, ...args) : methods[name].call(n, id, ...args);
            return v === null ? undefined : v;
          },
          (v) => v,
          (err) => Promise.reject(err),
        );
      const snap = { role: 'CLERK', modules: ['SALES'], pages: { items: ['view'], all: ['*'] } };
      const ids = [31, 'u-31', 'ü-€-𝄞', 'x'.repeat(512)];
      for (const id of ids) assert.equal(await cache.permissionCache.setUserPermissions(id, snap), true);
      // perm:user:32 holds a value that is not a snapshot; perm:user:33 holds nothing.
      if (backend.name === 'memory') hooks.memoryStoreSet(backend.url.slice('memory://'.length), 'perm:user:32', '[1]', 600_000);
      else await (backend.server ? backend.server.client() : backend.topology.client()).set('perm:user:32', '[1]', 'PX', 600_000);
      // [method, arguments after the user id, the answer for a user holding `snap`]
      const cases = [
        ['permCheckModule', ['SALES'], true],
        ['permCheckModule', ['PAYROLL'], false],
        ['permCheckPage', ['items', 'view'], true],
        ['permCheckPage', ['items', 'edit'], false],
        ['permCheckPage', ['all', 'delete'], true],
        ['permCheckPage', ['none', 'view'], false],
      ];
      for (const c of [cache, far]) {
        await c.pubsub.subscribe(); // the near cache is trusted once subscribed
        for (const id of [...ids, 32, 33]) {
          for (const [name, args, allowed] of cases) {
            const what = `${name}(${String(id).slice(0, 12)}, ${args.join(', ')}) ${c === far ? 'far' : 'near'}`;
            const fast = await check(c, true, name, id, ...args);
            const slow = await check(c, false, name, id, ...args);
            assert.deepEqual(fast, slow, what);
            // a corrupt value comes back as itself (the façade drops it); no snapshot: null
            assert.equal(fast, id === 32 ? '[1]' : id === 33 ? null : allowed, what);
          }
        }
      }
      for (const [name, extra] of [['permCheckModule', ['SALES']], ['permCheckPage', ['items', 'view']]]) {
        for (const id of ['', 1.5, 'a b', 'k*', 'y'.repeat(513), NaN]) {
          const fast = await outcome(check(cache, true, name, id, ...extra));
          const slow = await outcome(check(cache, false, name, id, ...extra));
          assert.ok(fast.error, `${name} refuses the user id ${JSON.stringify(id).slice(0, 12)}`);
          assert.deepEqual(fast, slow, `${name}(${JSON.stringify(id).slice(0, 12)})`);
        }
      }
      for (const args of [[7, 31], [7, {}, 'SALES'], [7, null, 'SALES'], [7, 31, 5], ['7', 31, 'SALES'], [7, 31, 'items', 9]]) {
        const name = args.length === 4 ? 'permCheckPage' : 'permCheckModule';
        const got = await outcome(cache.ctx.op((n) => n[name](...args), (v) => v, (err) => Promise.reject(err)));
        assert.deepEqual(got, { error: ['TypeError', 'ERR_INVALID_ARG'] }, `${name}(${JSON.stringify(args)})`);
      }
      assert.equal(await cache.permissionCache.hasModulePermission(31, 'SALES'), true, 'the service still answers');
    });
  });
}
