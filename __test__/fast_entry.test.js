'use strict';
// The hand-written Node-API entry of the hottest call (src/api/fast.rs): the bridge installs it
// in place of napi-rs' `sessionGetByToken` method. It must answer exactly what the method
// answers: the same session for every token (short, multi-byte, at and past its stack buffer,
// the largest allowed), the same errors with the same class and code for tokens the method
// refuses, and a typed error (not a crash) for arguments of the wrong type.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache, hashToken } = require('..');
const { SESSION_MAX_TOKEN_BYTES } = require('../lib/rules');
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

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url });
      native = cache.ctx.bridge.native;
      method = Object.getPrototypeOf(native).sessionGetByToken;
    });

    after(async () => {
      await cache.shutdown();
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
  });
}
