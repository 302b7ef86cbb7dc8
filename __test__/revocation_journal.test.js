'use strict';
// Issue 15 item 2, the revocation journal (lib/journal.js): a revocation that could not reach
// Redis is kept and replayed first when Redis answers again; until then this node treats it as
// revoked (its reads skip the cache and the near caches and ask the loader, whose answer is not
// cached) and reports itself unhealthy. Bounded by revocationJournalMax (overflow: counted,
// every read of this node fails closed to the loaders until the replay).
//
// Redis "refusing the revocations but answering the reads" is made real with ACLs on every data
// node (the default user loses @write and @scripting: every revocation, a script or a DEL, is
// refused with NOPERM; GET and PING still answer), as a Redis does that refuses writes (a
// read-only replica, OOM): the stale values stay readable, so a read that served them would be
// seen. On 38acc57 the failed revocation was forgotten: every read below answered from the
// cache (source 'cache', the revoked snapshot's modules) and isEnabled() stayed true.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { createCache, hashToken, sessionKey, sessionUserKey, permUserKey, permRoleKey } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { sleep } = require('./helpers/redis');

const uid = () => crypto.randomBytes(6).toString('hex');
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();

// The redis-server processes that hold data (not the sentinels).
function dataServers(backend) {
  if (backend.name === 'cluster') return backend.cluster.nodes.filter((n) => n.proc);
  if (backend.name === 'sentinel') return backend.setup.servers.filter((n) => n.proc);
  return [backend.server];
}

// Every data node refuses writes and scripts to the default user (the cache's user); reads,
// PING, pub/sub, replication and the ACL command itself still work.
async function refuseWrites(backend) {
  for (const s of dataServers(backend)) await s.client().call('ACL', 'SETUSER', 'default', '-@write', '-@scripting');
}
async function allowWrites(backend) {
  for (const s of dataServers(backend)) await s.client().call('ACL', 'SETUSER', 'default', '+@all');
}

async function until(what, fn, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(25);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// A fixture: one cache node with loaders that answer the database's truth (a different marker
// than the cached values, so each answer says where it came from).
function makeNode(backend, extra = {}) {
  const calls = { session: 0, user: 0, role: 0 };
  const cache = createCache({
    url: backend.url,
    commandTimeoutMs: 300,
    circuitThreshold: 0, // refused writes must not open the circuit (reads would fall back anyway)
    nodeId: `n-${uid()}`,
    loaders: {
      session: async (token) => {
        calls.session++;
        return { user_id: `db-${token}`, from: 'db', expires_at: inAnHour() };
      },
      userPermissions: async () => {
        calls.user++;
        return { modules: ['db-module'] };
      },
      rolePermissions: async () => {
        calls.role++;
        return { modules: ['db-role-module'] };
      },
    },
    ...extra,
  });
  return { cache, calls };
}

for (const [name, make] of BACKENDS) {
  describe(`revocation journal on ${name}`, () => {
    let backend;
    before(async () => {
      backend = await make();
    });
    after(async () => {
      await backend.close();
    });

    it('Journal 0: with nothing pending, reads, revocations, health and stats answer as before', async () => {
      const { cache, calls } = makeNode(backend);
      try {
        const token = `tok-${uid()}`;
        const hash = hashToken(token);
        assert.equal(await cache.sessionCache.setSession(hash, { user_id: 'u1', from: 'cache', expires_at: inAnHour() }), true);
        assert.equal((await cache.getSessionWithFallback(token)).source, 'cache');
        assert.equal((await cache.sessionCache.getSession(hash)).from, 'cache');
        assert.equal(await cache.invalidateSession(hash), true);
        assert.equal(await cache.sessionCache.getSession(hash), null);
        assert.equal(calls.session, 0);
        const r = cache.stats().revocation;
        assert.deepEqual([r.pending, r.recorded, r.journalOverflow, r.overflowed, r.max], [0, 0, 0, false, 10_000]);
        assert.equal(cache.isEnabled(), true);
        assert.equal((await cache.ping()).enabled, true);
        assert.match(cache.metrics(), /^bisman_cache_revocations_pending 0$/m);
      } finally {
        await cache.shutdown();
      }
    });

    it('Journal 0b: revocationJournalMax is validated (TypeError/RangeError with a code), also by configure', async () => {
      for (const [value, Class, code] of [
        ['10', TypeError, 'ERR_INVALID_ARG'],
        [-1, RangeError, 'ERR_OUT_OF_RANGE'],
        [1.5, RangeError, 'ERR_OUT_OF_RANGE'],
        [NaN, RangeError, 'ERR_OUT_OF_RANGE'],
        [2_000_000, RangeError, 'ERR_OUT_OF_RANGE'],
      ]) {
        assert.throws(() => createCache({ url: backend.url, revocationJournalMax: value }), (err) => err instanceof Class && err.code === code);
      }
      const cache = createCache({ url: backend.url, revocationJournalMax: 0 });
      try {
        assert.equal(cache.stats().revocation.max, 0);
        assert.throws(() => cache.configure({ url: backend.url, revocationJournalMax: 'x' }), (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG');
        cache.configure({ url: backend.url, revocationJournalMax: 5 });
        assert.equal(cache.stats().revocation.max, 5);
      } finally {
        await cache.shutdown();
      }
    });

    if (name === 'memory') {
      it('Journal 0c: a disabled cache (no Redis) keeps nothing: there is nothing to revoke from', async () => {
        const cache = createCache({ url: '' });
        try {
          assert.equal(await cache.invalidateSession(hashToken('t')), false);
          assert.equal(await cache.permissionCache.invalidateUserPermissions(1), false);
          assert.equal(cache.stats().revocation.pending, 0);
        } finally {
          await cache.shutdown();
        }
      });
      return;
    }

    it('Journal 1: a revocation Redis refused is kept; this node skips the cache for it and is unhealthy until the replay removes it', async () => {
      const { cache, calls } = makeNode(backend);
      const other = makeNode(backend).cache; // a node that never revoked anything
      const inspect = backend.server ? backend.server.client() : backend.topology.client();
      try {
        assert.equal(await cache.pubsub.subscribe(), true); // the near caches are trusted
        const [t1, t2, t3] = [`a-${uid()}`, `b-${uid()}`, `c-${uid()}`];
        const [h1, h2, h3] = [t1, t2, t3].map((t) => hashToken(t));
        const [user, user2, role] = [`u-${uid()}`, `v-${uid()}`, `r-${uid()}`];
        await cache.sessionCache.setSession(h1, { user_id: user, from: 'cache', expires_at: inAnHour() });
        await cache.sessionCache.setSession(h2, { user_id: user2, from: 'cache', expires_at: inAnHour() });
        await cache.sessionCache.setSession(h3, { user_id: user2, from: 'cache', expires_at: inAnHour() });
        await cache.permissionCache.setUserPermissions(user, { modules: ['revoked-module'] });
        await cache.permissionCache.setRolePermissions(role, { modules: ['revoked-role-module'] });
        // warm both near caches with the snapshot about to be revoked
        for (let i = 0; i < 3; i++) assert.equal(await cache.permissionCache.hasModulePermission(user, 'revoked-module'), true);
        assert.equal((await cache.permissionCache.getRolePermissionsWithFallback(role)).source, 'cache');

        await refuseWrites(backend);
        try {
          // the revocations fail on the back end: answered as before (false / 0), but kept
          assert.equal(await cache.sessionCache.invalidateSession(h1), false);
          assert.equal(await cache.pubsub.invalidateUserSessions(user2), 0);
          assert.equal(await cache.permissionCache.invalidateUserPermissions(user), false);
          assert.equal(await cache.permissionCache.invalidateRolePermissions(role), false);
          assert.equal(await cache.invalidateSession(h1), false); // de-duplicated

          // the test is real: Redis still holds every revoked value, and answers reads
          assert.notEqual(await inspect.get(sessionKey(h1)), null);
          assert.notEqual(await inspect.get(sessionKey(h2)), null);
          assert.notEqual(await inspect.get(permUserKey(user)), null);
          assert.notEqual(await inspect.get(permRoleKey(role)), null);
          assert.equal((await other.getSessionWithFallback(t1)).source, 'cache');

          // this node treats them as revoked: no read answers from the cache
          assert.equal(await cache.sessionCache.getSession(h1), null);
          const s1 = await cache.getSessionWithFallback(t1);
          assert.deepEqual([s1.source, s1.from], ['database', 'db']);
          assert.equal((await cache.getSessionWithFallback(t2)).source, 'database'); // user2's sessions
          assert.equal((await cache.getSessionWithFallback(t3)).source, 'database');
          assert.equal(await cache.sessionCache.getSession(h3), null);
          const p = await cache.permissionCache.getUserPermissionsWithFallback(user);
          assert.deepEqual([p.source, p.modules], ['database', ['db-module']]);
          assert.equal(await cache.permissionCache.getUserPermissions(user), null);
          assert.equal(await cache.permissionCache.hasModulePermission(user, 'revoked-module'), false);
          assert.equal(await cache.permissionCache.hasPagePermission(user, 'p', 'read'), false);
          assert.equal(await cache.permissionCache.getRolePermissions(role), null);
          const rp = await cache.permissionCache.getRolePermissionsWithFallback(role);
          assert.deepEqual([rp.source, rp.modules], ['database', ['db-role-module']]);
          assert.ok(calls.session >= 3 && calls.user >= 3 && calls.role >= 1, JSON.stringify(calls));
          // bad input is still refused on the journal's path
          await assert.rejects(cache.permissionCache.hasModulePermission(user, 42), (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG');
          await assert.rejects(cache.permissionCache.getUserPermissions('a b'), (err) => err instanceof TypeError && err.code === 'ERR_INVALID_ARG');

          // kept (de-duplicated), counted
          const r = cache.stats().revocation;
          assert.deepEqual([r.pending, r.sessions, r.userSessions, r.userPermissions, r.rolePermissions], [4, 1, 1, 1, 1]);
          assert.match(cache.metrics(), /^bisman_cache_revocations_pending 4$/m);

          // unhealthy until the replay
          assert.equal(cache.isEnabled(), false);
          assert.equal(cache.stats().enabled, false);
          const ping = await cache.ping();
          assert.equal(ping.enabled, false);
          assert.equal(ping.pong, null);
          assert.equal(ping.error, 'revocations pending replay');
          assert.equal(ping.pendingRevocations, 4);
          assert.equal(cache.stats().revocation.pending, 4); // a refused replay keeps them
          assert.ok(cache.stats().revocation.replayFailures >= 1);
        } finally {
          await allowWrites(backend);
        }

        // Redis accepts writes again: the journal replays by itself (its timer), bounded
        const t0 = Date.now();
        await until('the replay', () => cache.stats().revocation.pending === 0);
        console.log(`Journal 1 (${name}): replayed ${cache.stats().revocation.replayed} revocations ${Date.now() - t0} ms after Redis accepted writes again`);
        for (const k of [sessionKey(h1), sessionKey(h2), sessionKey(h3), sessionUserKey(user2), permUserKey(user), permRoleKey(role)]) {
          assert.equal(await inspect.exists(k), 0, `${k} is gone`);
        }
        assert.equal(cache.isEnabled(), true);
        assert.equal((await cache.ping()).enabled, true);
        // the other node no longer finds the revoked session either
        assert.equal((await other.getSessionWithFallback(t1)).source, 'database');
      } finally {
        await allowWrites(backend).catch(() => {});
        await cache.shutdown();
        await other.shutdown();
      }
    });

    it('Journal 2: overflow is counted and fails closed: every read of this node asks the loader until the replay', async () => {
      const { cache, calls } = makeNode(backend, { revocationJournalMax: 2 });
      try {
        const bystander = `z-${uid()}`;
        const hb = hashToken(bystander);
        await cache.sessionCache.setSession(hb, { user_id: 'bystander', from: 'cache', expires_at: inAnHour() });
        await cache.permissionCache.setUserPermissions('bystander', { modules: ['m'] });
        assert.equal((await cache.getSessionWithFallback(bystander)).source, 'cache');
        await refuseWrites(backend);
        try {
          for (let i = 0; i < 3; i++) await cache.invalidateSession(hashToken(`gone-${i}-${uid()}`));
          const r = cache.stats().revocation;
          assert.deepEqual([r.pending, r.journalOverflow, r.overflowed], [2, 1, true]);
          assert.match(cache.metrics(), /^bisman_cache_revocation_journal_overflow_total 1$/m);
          // a session and a user nobody revoked: still not read from the cache (fail closed)
          assert.equal((await cache.getSessionWithFallback(bystander)).source, 'database');
          assert.equal(await cache.sessionCache.getSession(hb), null);
          assert.equal((await cache.permissionCache.getUserPermissionsWithFallback('bystander')).source, 'database');
          assert.ok(calls.session >= 1 && calls.user >= 1);
          assert.equal(cache.isEnabled(), false);
        } finally {
          await allowWrites(backend);
        }
        await until('the replay', () => cache.stats().revocation.overflowed === false);
        assert.equal(cache.stats().revocation.pending, 0);
        assert.equal(cache.isEnabled(), true);
        assert.equal((await cache.getSessionWithFallback(bystander)).source, 'cache');
      } finally {
        await allowWrites(backend).catch(() => {});
        await cache.shutdown();
      }
    });

    it('Journal 4: while a revocation is pending, the loader\'s answer is not written to the cache even where Redis accepts the write', async () => {
      const { cache } = makeNode(backend);
      const inspect = backend.server ? backend.server.client() : backend.topology.client();
      const user = `w-${uid()}`;
      try {
        await cache.permissionCache.setUserPermissions(user, { modules: ['revoked-module'] });
        // deletes and scripts refused, plain SET (a snapshot fill) still accepted
        for (const sv of dataServers(backend)) await sv.client().call('ACL', 'SETUSER', 'default', '-@write', '-@scripting', '+set');
        try {
          assert.equal(await cache.permissionCache.invalidateUserPermissions(user), false);
          assert.equal(cache.stats().revocation.userPermissions, 1);
          for (let i = 0; i < 2; i++) assert.equal((await cache.permissionCache.getUserPermissionsWithFallback(user)).source, 'database');
          await sleep(100);
          // not overwritten by the loader's answer: no fill was written while pending
          assert.deepEqual(JSON.parse(await inspect.get(permUserKey(user))).modules, ['revoked-module']);
        } finally {
          await allowWrites(backend);
        }
        await until('the replay', () => cache.stats().revocation.pending === 0);
        assert.equal(await inspect.exists(permUserKey(user)), 0);
      } finally {
        await allowWrites(backend).catch(() => {});
        await cache.shutdown();
      }
    });

    if (name === 'redis') {
      it('Journal 3: Redis paused (SIGSTOP): the timed-out revocation is kept and replayed once Redis answers', async () => {
        const { cache } = makeNode(backend);
        const inspect = backend.server.client();
        try {
          const token = `p-${uid()}`;
          const hash = hashToken(token);
          await cache.sessionCache.setSession(hash, { user_id: 'paused', from: 'cache', expires_at: inAnHour() });
          backend.server.pause();
          let resumed = false;
          try {
            assert.equal(await cache.invalidateSession(hash), false);
            assert.equal(cache.stats().revocation.pending, 1);
            assert.equal((await cache.getSessionWithFallback(token)).source, 'database');
            assert.equal(cache.isEnabled(), false);
            backend.server.resume();
            resumed = true;
            const t0 = Date.now();
            await until('the replay', () => cache.stats().revocation.pending === 0);
            console.log(`Journal 3: replayed ${Date.now() - t0} ms after SIGCONT`);
          } finally {
            if (!resumed) backend.server.resume();
          }
          assert.equal(await inspect.get(sessionKey(hash)), null);
          assert.equal(cache.isEnabled(), true);
        } finally {
          await cache.shutdown();
        }
      });
    }
  });
}
