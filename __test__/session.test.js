'use strict';
// sessionCache against a real redis-server and against memory://: every behaviour of API.md.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { createCache, hashToken } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { sleep } = require('./helpers/redis');

const uid = () => crypto.randomBytes(8).toString('hex');
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();

async function rejectsWith(promise, Class, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Class, `expected ${Class.name}, got ${err && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, code);
    return true;
  });
}

for (const [name, make] of BACKENDS) {
  describe(`sessionCache on ${name}`, () => {
    let backend;
    let cache;
    let loaderCalls;
    const db = new Map(); // the "database" behind loaders.session

    before(async () => {
      backend = await make();
      cache = createCache({
        url: backend.url,
        loaders: {
          session: async (token) => {
            loaderCalls++;
            await sleep(20);
            return db.has(token) ? { ...db.get(token) } : null;
          },
        },
      });
    });
    after(async () => {
      await cache.shutdown();
      await backend.close();
    });

    it('setSession stores the JSON under session:{hash} and getSession reads it back', async () => {
      const h = uid();
      const data = { user_id: 123, tenant_id: 'tenant-uuid', role: 'HUB_INCHARGE', expires_at: inAnHour() };
      assert.equal(await cache.sessionCache.setSession(h, data), true);
      assert.deepEqual(await cache.sessionCache.getSession(h), data);
      assert.ok((await backend.keys()).includes(`session:${h}`));
    });

    it('non-ASCII data comes back exactly (ASCII replies take a one-byte fast path)', async () => {
      const h = uid();
      const data = { user_id: 7, name: 'Zoë Ørsted 日本 😀', note: 'latin1 ÿ and \u0000 and \u2028', ascii: 'plain' };
      assert.equal(await cache.sessionCache.setSession(h, data), true);
      assert.deepEqual(await cache.sessionCache.getSession(h), data);
      const plain = uid();
      assert.equal(await cache.sessionCache.setSession(plain, { user_id: 8, name: 'plain ascii ~' }), true);
      assert.deepEqual(await cache.sessionCache.getSession(plain), { user_id: 8, name: 'plain ascii ~' });
    });

    it('the TTL is one hour at most, and the time left to expires_at when sooner', async () => {
      const far = uid();
      await cache.sessionCache.setSession(far, { user_id: 1, expires_at: new Date(Date.now() + 86400_000).toISOString() });
      const farTtl = await backend.pttl(`session:${far}`);
      assert.ok(farTtl > 3590_000 && farTtl <= 3600_000, `ttl ${farTtl}`);
      const none = uid();
      await cache.sessionCache.setSession(none, { user_id: 1 });
      const noneTtl = await backend.pttl(`session:${none}`);
      assert.ok(noneTtl > 3590_000 && noneTtl <= 3600_000, `ttl ${noneTtl}`);
      const soon = uid();
      await cache.sessionCache.setSession(soon, { user_id: 1, expires_at: new Date(Date.now() + 5000).toISOString() });
      const soonTtl = await backend.pttl(`session:${soon}`);
      assert.ok(soonTtl > 4000 && soonTtl <= 5000, `ttl ${soonTtl}`);
    });

    it('a session expires with expires_at', async () => {
      const h = uid();
      await cache.sessionCache.setSession(h, { user_id: 2, expires_at: new Date(Date.now() + 300).toISOString() });
      assert.notEqual(await cache.sessionCache.getSession(h), null);
      await sleep(450);
      assert.equal(await cache.sessionCache.getSession(h), null);
    });

    it('setSession with a past expires_at returns false and stores nothing', async () => {
      const before = (await backend.keys()).length;
      const h = uid();
      assert.equal(await cache.sessionCache.setSession(h, { user_id: 3, expires_at: '2001-01-01T00:00:00Z' }), false);
      assert.equal(await cache.sessionCache.setSession(h, { userId: 3, expiresAt: new Date(Date.now() - 1) }), false);
      assert.equal((await backend.keys()).length, before);
      assert.equal(await cache.sessionCache.getSession(h), null);
    });

    it('the user set names the session, under user_id or userId, and outlives its newest session', async () => {
      const user = `u${uid()}`;
      const a = uid();
      const b = uid();
      await cache.sessionCache.setSession(a, { user_id: user, expires_at: new Date(Date.now() + 10_000).toISOString() });
      await cache.sessionCache.setSession(b, { userId: user });
      assert.deepEqual((await cache.sessionCache.getUserSessions(user)).sort(), [a, b].sort());
      const setTtl = await backend.pttl(`session:user:${user}`);
      const newest = await backend.pttl(`session:${b}`);
      assert.ok(setTtl >= newest - 50, `set ttl ${setTtl} < session ttl ${newest}`);
      assert.ok(setTtl > 0, 'the set always carries a TTL');
    });

    it('expired members of a user set are pruned, never returned', async () => {
      const user = `u${uid()}`;
      const short = uid();
      const long = uid();
      await cache.sessionCache.setSession(short, { user_id: user, expires_at: new Date(Date.now() + 200).toISOString() });
      await cache.sessionCache.setSession(long, { user_id: user });
      await sleep(350);
      assert.deepEqual(await cache.sessionCache.getUserSessions(user), [long]);
      const third = uid();
      await cache.sessionCache.setSession(third, { user_id: user });
      if (backend.server) {
        // the index is a sorted set scored by expiry (issue 14 item 13)
        const client = backend.server.client();
        try {
          assert.deepEqual((await client.zrange(`session:user:${user}`, 0, -1)).sort(), [long, third].sort());
        } finally {
          client.disconnect();
        }
      }
      assert.equal(await cache.sessionCache.invalidateUserSessions(user), 2);
    });

    it('getSession of an unknown hash is null', async () => {
      assert.equal(await cache.sessionCache.getSession(uid()), null);
    });

    it('getSessionWithFallback: a miss asks the loader with the raw token, caches, and says database', async () => {
      const token = `raw-${uid()}`;
      db.set(token, { user_id: 77, role: 'CLERK', expires_at: inAnHour() });
      loaderCalls = 0;
      const first = await cache.getSessionWithFallback(token);
      assert.equal(first.source, 'database');
      assert.equal(first.user_id, 77);
      assert.equal(loaderCalls, 1);
      const second = await cache.getSessionWithFallback(token);
      assert.deepEqual(second, { ...db.get(token), source: 'cache' });
      assert.equal(loaderCalls, 1);
      assert.deepEqual(await cache.sessionCache.getSession(hashToken(token)), db.get(token));
    });

    it('getSessionWithFallback of an unknown token is null, and an expired row is not a session', async () => {
      assert.equal(await cache.getSessionWithFallback(`nobody-${uid()}`), null);
      const token = `old-${uid()}`;
      db.set(token, { user_id: 5, expires_at: '2001-01-01T00:00:00Z' });
      assert.equal(await cache.getSessionWithFallback(token), null);
    });

    it('50 concurrent misses of one token make exactly one loader call', async () => {
      const token = `burst-${uid()}`;
      db.set(token, { user_id: 9, expires_at: inAnHour() });
      loaderCalls = 0;
      const results = await Promise.all(Array.from({ length: 50 }, () => cache.getSessionWithFallback(token)));
      assert.equal(loaderCalls, 1);
      for (const r of results) assert.equal(r.user_id, 9);
      assert.equal(results.filter((r) => r.source === 'database').length, 50);
      results[0].mutated = true;
      assert.equal(results[1].mutated, undefined, 'each caller gets its own object');
    });

    it('the raw token never appears in any key', async () => {
      const token = `secret-token-${uid()}`;
      db.set(token, { user_id: 10, expires_at: inAnHour() });
      await cache.getSessionWithFallback(token);
      await cache.getSessionWithFallback(token);
      const keys = await backend.keys();
      assert.ok(keys.includes(`session:${hashToken(token)}`));
      assert.equal(keys.filter((k) => k.includes(token)).length, 0);
    });

    it('invalidateSession removes the session and its entry in the user set', async () => {
      const user = `u${uid()}`;
      const h = uid();
      const other = uid();
      await cache.sessionCache.setSession(h, { user_id: user });
      await cache.sessionCache.setSession(other, { user_id: user });
      assert.equal(await cache.sessionCache.invalidateSession(h), true);
      assert.equal(await cache.sessionCache.getSession(h), null);
      assert.deepEqual(await cache.sessionCache.getUserSessions(user), [other]);
      assert.equal(await cache.sessionCache.invalidateSession(h), false);
    });

    it('invalidateUserSessions removes all of a user\'s sessions and returns the count', async () => {
      const user = 4242;
      const hashes = [uid(), uid(), uid()];
      for (const h of hashes) await cache.sessionCache.setSession(h, { user_id: user });
      const bystander = uid();
      await cache.sessionCache.setSession(bystander, { user_id: 4243 });
      assert.equal(await cache.sessionCache.invalidateUserSessions(user), 3);
      for (const h of hashes) assert.equal(await cache.sessionCache.getSession(h), null);
      assert.deepEqual(await cache.sessionCache.getUserSessions(user), []);
      assert.ok(!(await backend.keys()).includes('session:user:4242'));
      assert.notEqual(await cache.sessionCache.getSession(bystander), null);
      assert.equal(await cache.sessionCache.invalidateUserSessions(user), 0);
    });

    it('bad input is refused with a typed error and writes nothing', async () => {
      const before = (await backend.keys()).sort();
      const s = cache.sessionCache;
      for (const bad of ['', '*', 'a*', 'a b', 'x\n', '[x]', 'a?']) {
        await rejectsWith(s.setSession(bad, { user_id: 1 }), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(s.getSession(bad), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(s.invalidateSession(bad), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(s.invalidateUserSessions(bad), TypeError, 'ERR_INVALID_ARG');
      }
      for (const bad of [null, undefined, 42, {}, []]) {
        await rejectsWith(s.setSession(bad, { user_id: 1 }), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(s.getSessionWithFallback(bad), TypeError, 'ERR_INVALID_ARG');
      }
      // An empty token comes from a request: it is no session (null), not an error.
      assert.equal(await s.getSessionWithFallback(''), null);
      await rejectsWith(s.invalidateUserSessions(1.5), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(s.invalidateUserSessions(null), TypeError, 'ERR_INVALID_ARG');
      for (const data of [null, 'x', 5, [1]]) {
        await rejectsWith(s.setSession(uid(), data), TypeError, 'ERR_INVALID_ARG');
      }
      await rejectsWith(s.setSession(uid(), { user_id: '*' }), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(s.setSession(uid(), { user_id: 'a b' }), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(s.setSession(uid(), { user_id: {} }), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(s.setSession(uid(), { expires_at: 'not a date' }), TypeError, 'ERR_INVALID_ARG');
      const cyclic = { user_id: 1 };
      cyclic.self = cyclic;
      await rejectsWith(s.setSession(uid(), cyclic), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(s.setSession(uid(), { user_id: 1, big: 'x'.repeat(513 * 1024) }), RangeError, 'ERR_VALUE_TOO_LARGE');
      await rejectsWith(s.setSession('h'.repeat(600), { user_id: 1 }), RangeError, 'ERR_VALUE_TOO_LARGE');
      assert.deepEqual((await backend.keys()).sort(), before);
    });
  });
}
