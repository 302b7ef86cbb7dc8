'use strict';
// pubsub against a real redis-server and memory://: channels, receivers, convenience
// invalidations, the near cache across instances and processes, failure and shutdown.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const path = require('path');
const { spawn } = require('child_process');
const hooks = require('./helpers/hooks');
const { createCache, permUserKey, hashToken } = require('..');
const { BACKENDS, redisBackend } = require('./helpers/backends');
const { forkWorker } = require('./helpers/worker');
const { sleep } = require('./helpers/redis');

const WORKERS = path.join(__dirname, 'workers');
const uid = () => `u${crypto.randomBytes(6).toString('hex')}`;
const CLERK = { role: 'CLERK', modules: ['INVENTORY'], pages: { items: ['view'] } };

async function rejectsWith(promise, Class, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Class, `expected ${Class.name}, got ${err && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, code);
    return true;
  });
}

// Resolves with the first value `poll()` returns that is not undefined, within `ms`.
async function within(ms, poll, what) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await poll();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(5);
  }
}

function makeDb() {
  const db = { users: new Map(), calls: 0 };
  db.loaders = {
    userPermissions: async (userId) => {
      db.calls++;
      const s = db.users.get(String(userId));
      return s ? JSON.parse(JSON.stringify(s)) : null;
    },
  };
  return db;
}

// Seeds raw keys (as stored, prefix included) into either back end.
async function seed(backend, keys) {
  if (backend.name === 'memory') {
    const name = backend.url.slice('memory://'.length);
    for (const k of keys) hooks.memoryStoreSet(name, k, 'v', 600_000);
    return;
  }
  if (backend.seed) return backend.seed(keys);
  const c = backend.server.client();
  for (let i = 0; i < keys.length; i += 1000) {
    const p = c.pipeline();
    for (const k of keys.slice(i, i + 1000)) p.set(k, 'v', 'EX', 600);
    await p.exec();
  }
}

// Runs a worker script; resolves { code, stdout, stderr, shutdownToExitMs }.
function runWorker(script, args, timeoutMs = 20000) {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(WORKERS, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let shutdownAt = null;
    child.stdout.on('data', (d) => {
      stdout += d;
      if (shutdownAt === null && stdout.includes('shutdown')) shutdownAt = Date.now();
    });
    child.stderr.on('data', (d) => (stderr += d));
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code, signal) => {
      clearTimeout(killer);
      resolve({ code, signal, stdout, stderr, shutdownToExitMs: shutdownAt === null ? null : Date.now() - shutdownAt });
    });
  });
}

for (const [name, make] of BACKENDS) {
  describe(`pubsub on ${name}`, () => {
    let backend;
    let a;
    let b;
    let db;

    before(async () => {
      backend = await make();
      db = makeDb();
      a = createCache({ url: backend.url, nodeId: 'node-a', loaders: db.loaders });
      b = createCache({ url: backend.url, nodeId: 'node-b', loaders: db.loaders });
      assert.equal(await a.pubsub.subscribe(), true);
      assert.equal(await b.pubsub.subscribe(), true);
    });
    after(async () => {
      await a.shutdown();
      await b.shutdown();
      await backend.close();
    });

    it('subscribe() is idempotent and publish… answers the number of receivers', async () => {
      assert.equal(await a.pubsub.subscribe(), true);
      assert.equal(await a.pubsub.subscribe(), true);
      assert.equal(await a.pubsub.publishPermissionInvalidation({ type: 'role', roleId: 12 }), 2, 'one connection per instance');
      const c = createCache({ url: backend.url });
      try {
        assert.equal(await c.pubsub.publishCacheInvalidation({ keys: ['x'] }), 2, 'a publisher need not subscribe');
        await b.pubsub.shutdown();
        assert.equal(b.pubsub.isConnected(), false);
        // The socket is closed as shutdown() returns; the server notices it a moment later.
        let receivers = 2;
        for (let i = 0; i < 100 && receivers !== 1; i++) {
          receivers = await c.pubsub.publishSessionInvalidation({ type: 'user', userId: 1 });
          if (receivers !== 1) await new Promise((r) => setTimeout(r, 20));
        }
        assert.equal(receivers, 1);
        assert.equal(await b.pubsub.subscribe(), true);
        assert.equal(await c.pubsub.publishSessionInvalidation({ type: 'user', userId: 1 }), 2);
      } finally {
        await c.shutdown();
      }
    });

    it('messages arrive on all three channels as JSON with origin and ts added', async () => {
      const got = [];
      const nonce = uid();
      const offs = ['permissions:invalidate', 'sessions:invalidate', 'cache:invalidate'].map((ch) =>
        b.pubsub.onMessage(ch, (data, channel) => {
          if (data.nonce === nonce) got.push({ data, channel });
        }),
      );
      try {
        const t0 = Date.now();
        await a.pubsub.publishPermissionInvalidation({ type: 'role', roleId: 12, nonce });
        await a.pubsub.publishSessionInvalidation({ type: 'user', userId: 123, nonce });
        await a.pubsub.publishCacheInvalidation({ keys: ['dash:stats:2024-01', 'report:sales:123'], nonce });
        await within(1000, () => (got.length >= 3 ? true : undefined), 'three messages');
        assert.deepEqual(got.map((g) => g.channel), ['permissions:invalidate', 'sessions:invalidate', 'cache:invalidate']);
        // issue 15 (gap detection): every message also carries its sender id and number
        assert.deepEqual(got[0].data, { type: 'role', roleId: 12, nonce, origin: 'node-a', ts: got[0].data.ts, sender: a.pubsub.status().sender, seq: got[0].data.seq });
        assert.ok(Number.isInteger(got[0].data.seq) && got[0].data.seq >= 1);
        assert.deepEqual(got[1].data.userId, 123);
        assert.deepEqual(got[2].data.keys, ['dash:stats:2024-01', 'report:sales:123']);
        for (const g of got) {
          assert.equal(g.data.origin, 'node-a');
          assert.ok(g.data.ts >= t0 && g.data.ts <= Date.now());
        }
      } finally {
        for (const off of offs) off();
      }
    });

    it('onMessage returns a function that removes the handler', async () => {
      let calls = 0;
      let other = 0;
      const nonce = uid();
      const off = b.pubsub.onMessage('cache:invalidate', (m) => (m.nonce === nonce ? calls++ : 0));
      const offOther = b.pubsub.onMessage('cache:invalidate', (m) => (m.nonce === nonce ? other++ : 0));
      await a.pubsub.publishCacheInvalidation({ keys: ['k1'], nonce });
      await within(1000, () => (other === 1 ? true : undefined), 'first message');
      assert.equal(calls, 1);
      assert.equal(off(), true);
      assert.equal(off(), false);
      await a.pubsub.publishCacheInvalidation({ keys: ['k2'], nonce });
      await within(1000, () => (other === 2 ? true : undefined), 'second message');
      assert.equal(calls, 1, 'the removed handler is not called');
      offOther();
    });

    it('onMessage and publish refuse bad input with a TypeError', async () => {
      assert.throws(() => b.pubsub.onMessage('nope', () => {}), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG');
      assert.throws(() => b.pubsub.onMessage('cache:invalidate', 'x'), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG');
      for (const bad of [null, 'x', 5, [1]]) {
        await rejectsWith(a.pubsub.publishCacheInvalidation(bad), TypeError, 'ERR_INVALID_ARG');
      }
      await rejectsWith(a.pubsub.publishCacheInvalidation({ big: 'x'.repeat(513 * 1024) }), RangeError, 'ERR_VALUE_TOO_LARGE');
    });

    it('two instances: after invalidateUserPermissions on A, B answers from the loader once it has the message', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      for (let i = 0; i < 3; i++) assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
      const hitsBefore = b.permissionCache.nearCacheStats().hits;
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
      assert.equal(b.permissionCache.nearCacheStats().hits, hitsBefore + 1, 'B answers from its near cache');
      db.users.set(u, { role: 'CLERK', modules: ['REPORTS'] });
      const callsBefore = db.calls;
      let arrived = null;
      const off = b.pubsub.onMessage('permissions:invalidate', (m) => {
        if (m.userId === u) arrived = Date.now();
      });
      const t0 = Date.now();
      assert.equal(await a.pubsub.invalidateUserPermissions(u), true);
      await within(1000, () => (arrived !== null ? true : undefined), 'the message at B');
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false);
      assert.equal(await b.permissionCache.hasModulePermission(u, 'REPORTS'), true);
      assert.ok(Date.now() - t0 < 1000);
      assert.equal(db.calls - callsBefore, 1, 'one loader call for the new snapshot');
      off();
    });

    it('the same through permissionCache.invalidateUserPermissions: B never answers stale after the message', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      for (let i = 0; i < 3; i++) await b.permissionCache.hasModulePermission(u, 'INVENTORY');
      db.users.set(u, { modules: [] });
      const t0 = Date.now();
      await a.permissionCache.invalidateUserPermissions(u);
      const took = await within(1000, async () => ((await b.permissionCache.hasModulePermission(u, 'INVENTORY')) === false ? Date.now() - t0 : undefined), 'B sees the change');
      assert.ok(took < 1000, `${took} ms`);
    });

    it("a role invalidation on A drops every user snapshot from B's near cache", async () => {
      const u = uid();
      db.users.set(u, CLERK);
      for (let i = 0; i < 3; i++) await b.permissionCache.hasModulePermission(u, 'INVENTORY');
      assert.ok(b.permissionCache.nearCacheStats().size > 0);
      await a.pubsub.invalidateRolePermissions(7);
      await within(1000, () => (b.permissionCache.nearCacheStats().size === 0 ? true : undefined), 'B near cache emptied');
    });

    it('invalidateKeys deletes the keys, answers how many existed, and drops them from every near cache', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      for (let i = 0; i < 3; i++) await b.permissionCache.hasModulePermission(u, 'INVENTORY');
      assert.ok((await backend.keys()).includes(permUserKey(u)));
      const sizeBefore = b.permissionCache.nearCacheStats().size;
      assert.equal(await a.pubsub.invalidateKeys([permUserKey(u), `absent:${uid()}`]), 1);
      assert.ok(!(await backend.keys()).includes(permUserKey(u)));
      await within(1000, () => (b.permissionCache.nearCacheStats().size === sizeBefore - 1 ? true : undefined), 'B dropped the key');
      assert.equal(await a.pubsub.invalidateKeys([]), 0);
      for (const bad of ['k', [1], ['']]) {
        await assert.rejects(a.pubsub.invalidateKeys(bad), (e) => e instanceof TypeError && e.code === 'ERR_INVALID_ARG');
      }
    });

    it("invalidatePattern('dash:*') removes 5,000 matching keys (prefix applied) and no others", async () => {
      const p = createCache({ url: backend.url, keyPrefix: 'erp1:' });
      try {
        await p.pubsub.subscribe();
        let heard = null;
        p.pubsub.onMessage('cache:invalidate', (m) => (heard = m));
        const matching = Array.from({ length: 5000 }, (_, i) => `erp1:dash:${i}`);
        const others = ['erp1:dashboard:1', 'erp1:x:dash:1', 'erp1:dash', 'erp2:dash:1', 'dash:1', 'erp1:Dash:1'];
        await seed(backend, [...matching, ...others]);
        // the revision keys it leaves (one per deleted key, until their TTL: they refuse the
        // fills of loads that began before, src/store/revision.rs) are not data
        const data = (keys) => keys.filter((k) => !k.startsWith('erp1:rev:'));
        const before = data(await backend.keys());
        assert.equal(await p.pubsub.invalidatePattern('dash:*'), 5000);
        const all = await backend.keys();
        const after = new Set(data(all));
        for (const k of others) assert.ok(after.has(k), `${k} must survive`);
        assert.equal(after.size, before.length - 5000);
        assert.equal(matching.filter((k) => after.has(k)).length, 0);
        const revs = new Set(all.filter((k) => k.startsWith('erp1:rev:')));
        assert.equal(matching.filter((k) => !revs.has(`erp1:rev:{${k}}`)).length, 0, 'every deleted key has its revision bumped');
        await within(1000, () => (heard !== null ? true : undefined), 'the pattern message');
        assert.equal(heard.pattern, 'dash:*');
        assert.equal(await p.pubsub.invalidatePattern('dash:*'), 0);
      } finally {
        await p.shutdown();
      }
    });

    it('invalidatePattern refuses empty and all-* patterns (they would wipe the keyspace)', async () => {
      const before = (await backend.keys()).sort();
      for (const bad of ['', '*', '**']) {
        await rejectsWith(a.pubsub.invalidatePattern(bad), TypeError, 'ERR_INVALID_ARG');
      }
      for (const bad of [null, 5, ['dash:*']]) {
        await rejectsWith(a.pubsub.invalidatePattern(bad), TypeError, 'ERR_INVALID_ARG');
      }
      await rejectsWith(a.pubsub.invalidatePattern('x'.repeat(600)), RangeError, 'ERR_VALUE_TOO_LARGE');
      assert.deepEqual((await backend.keys()).sort(), before);
    });

    it('a pattern invalidation drops matching near entries on every node', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      for (let i = 0; i < 3; i++) await b.permissionCache.hasModulePermission(u, 'INVENTORY');
      await a.pubsub.invalidatePattern(`perm:user:${u}*`);
      db.users.set(u, { modules: [] });
      await within(1000, async () => ((await b.permissionCache.hasModulePermission(u, 'INVENTORY')) === false ? true : undefined), 'B sees the change');
    });

    it('invalidateSession and invalidateUserSessions delete, then broadcast on sessions:invalidate', async () => {
      const msgs = [];
      const off = b.pubsub.onMessage('sessions:invalidate', (m) => msgs.push(m));
      const user = uid();
      const h1 = hashToken(`t1-${user}`);
      const h2 = hashToken(`t2-${user}`);
      await a.sessionCache.setSession(h1, { user_id: user });
      await a.sessionCache.setSession(h2, { user_id: user });
      assert.equal(await a.pubsub.invalidateSession(h1), true);
      assert.equal(await a.sessionCache.getSession(h1), null);
      assert.equal(await a.pubsub.invalidateUserSessions(user), 1);
      assert.equal(await a.sessionCache.getSession(h2), null);
      await within(1000, () => (msgs.length >= 2 ? true : undefined), 'two session messages');
      assert.deepEqual([msgs[0].type, msgs[0].sessionId], ['session', h1]);
      assert.deepEqual([msgs[1].type, msgs[1].userId], ['user', user]);
      assert.equal(await a.pubsub.invalidateSession(h1), false);
      await rejectsWith(a.pubsub.invalidateSession('*'), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(a.pubsub.invalidateUserSessions('a b'), TypeError, 'ERR_INVALID_ARG');
      off();
    });

    it('two key prefixes on one back end never hear each other', async () => {
      const x = createCache({ url: backend.url, keyPrefix: 'tenant-x:' });
      const y = createCache({ url: backend.url, keyPrefix: 'tenant-y:' });
      try {
        await x.pubsub.subscribe();
        await y.pubsub.subscribe();
        let yHeard = 0;
        let xHeard = 0;
        y.pubsub.onMessage('cache:invalidate', () => yHeard++);
        x.pubsub.onMessage('cache:invalidate', () => xHeard++);
        assert.equal(await x.pubsub.publishCacheInvalidation({ keys: ['k'] }), 1);
        await within(1000, () => (xHeard === 1 ? true : undefined), 'x hears itself');
        await sleep(100);
        assert.equal(yHeard, 0);
      } finally {
        await x.shutdown();
        await y.shutdown();
      }
    });

    it('a throwing or rejecting handler is reported as an error event and never fatal; later messages arrive', async () => {
      const errors = [];
      const onError = (err, channel) => errors.push([err.message, channel]);
      b.pubsub.on('error', onError);
      let later = 0;
      const nonce = uid();
      const offs = [
        b.pubsub.onMessage('cache:invalidate', (m) => {
          if (m.nonce === nonce) throw new Error('boom');
        }),
        b.pubsub.onMessage('cache:invalidate', async (m) => {
          if (m.nonce === nonce) throw new Error('async boom');
        }),
        b.pubsub.onMessage('cache:invalidate', (m) => (m.nonce === nonce ? later++ : 0)),
      ];
      try {
        await a.pubsub.publishCacheInvalidation({ keys: ['a'], nonce });
        await a.pubsub.publishCacheInvalidation({ keys: ['b'], nonce });
        await within(1000, () => (later === 2 && errors.length === 4 ? true : undefined), 'messages and errors');
        assert.deepEqual(errors.map((e) => e[0]).sort(), ['async boom', 'async boom', 'boom', 'boom']);
        assert.equal(errors[0][1], 'cache:invalidate');
        assert.ok(b.stats().pubsub.handlerErrors >= 4);
      } finally {
        for (const off of offs) off();
        b.pubsub.off('error', onError);
      }
    });

    it("even an 'error' listener that throws is not fatal: every handler still runs and delivery goes on", async () => {
      const nonce = uid();
      const boom = () => {
        throw new Error('listener boom (expected in this test)');
      };
      let seen = 0;
      const offs = [
        b.pubsub.onMessage('cache:invalidate', (m) => {
          if (m.nonce === nonce) throw new Error('handler boom');
        }),
        b.pubsub.onMessage('cache:invalidate', (m) => (m.nonce === nonce ? seen++ : 0)),
      ];
      b.pubsub.on('error', boom);
      try {
        await a.pubsub.publishCacheInvalidation({ keys: ['x'], nonce });
        await within(1000, () => (seen === 1 ? true : undefined), 'first message');
      } finally {
        b.pubsub.off('error', boom);
      }
      await a.pubsub.publishCacheInvalidation({ keys: ['y'], nonce });
      await within(1000, () => (seen === 2 ? true : undefined), 'a later message');
      for (const off of offs) off();
    });

    it('a throwing handler in a child process: the process survives, logs it, and later messages arrive', async () => {
      const r = await runWorker('throwing-handler.js', [backend.url]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.trim(), 'seen 3');
      assert.match(r.stderr, /handler boom/);
      assert.match(r.stderr, /async handler boom/);
    });

    for (const which of ['module', 'pubsub']) {
      it(`a child process that subscribed and then called ${which === 'module' ? 'shutdown()' : 'pubsub.shutdown()'} exits by itself within 2 s`, async () => {
        const r = await runWorker('subscribe-shutdown.js', [backend.url, which]);
        assert.equal(r.code, 0, r.stderr);
        assert.equal(r.stdout.trim(), 'shutdown');
        assert.ok(r.shutdownToExitMs <= 2000, `exited ${r.shutdownToExitMs} ms after shutdown`);
      });
    }
  });
}

describe('pubsub across two Node processes on one Redis', () => {
  let backend;
  before(async () => {
    backend = await redisBackend();
  });
  after(async () => {
    await backend.close();
  });

  it("after invalidateUserPermissions in process A, process B's hasModulePermission reflects the loader within 1 s", async () => {
    const { child, next } = forkWorker('perm-node.js', [backend.url]);
    const a = createCache({ url: backend.url, nodeId: 'node-a' });
    try {
      assert.equal((await next('ready')).subscribed, true);
      const u = uid();
      child.send({ cmd: 'db', userId: u, snapshot: CLERK });
      await next('ok');
      let r;
      for (let i = 0; i < 3; i++) {
        child.send({ cmd: 'check', userId: u, module: 'INVENTORY' });
        r = await next('checked');
        assert.equal(r.allowed, true);
      }
      assert.equal(r.loaderCalls, 1);
      assert.ok(r.near.hits >= 1, 'B answers from its near cache');
      child.send({ cmd: 'db', userId: u, snapshot: { role: 'CLERK', modules: ['REPORTS'] } });
      await next('ok');
      const t0 = Date.now();
      assert.equal(await a.pubsub.invalidateUserPermissions(u), true);
      const msg = await next('message', 1000);
      assert.equal(msg.data.userId, u);
      assert.equal(msg.data.origin, 'node-a');
      child.send({ cmd: 'check', userId: u, module: 'INVENTORY' });
      r = await next('checked');
      assert.equal(r.allowed, false);
      assert.equal(r.loaderCalls, 2, 'exactly one more loader call');
      assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
      child.send({ cmd: 'exit' });
      const code = await new Promise((resolve) => child.on('exit', resolve));
      assert.equal(code, 0);
    } finally {
      child.kill();
      await a.shutdown();
    }
  });
});

describe('pubsub on a Redis that fails', () => {
  let backend;
  before(async () => {
    backend = await redisBackend();
  });
  after(async () => {
    await backend.close();
  });

  it('Redis killed and restarted on the same port: the subscriber resubscribes by itself, and no near-cache answer outlives the disconnect', async () => {
    const db = makeDb();
    const u = uid();
    db.users.set(u, CLERK);
    const b = createCache({ url: backend.url, loaders: db.loaders, commandTimeoutMs: 300, connectTimeoutMs: 500 });
    const a = createCache({ url: backend.url });
    try {
      assert.equal(await b.pubsub.subscribe(), true);
      for (let i = 0; i < 3; i++) assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
      assert.equal(b.permissionCache.nearCacheStats().size, 1);

      // The database changes while Redis is gone: no invalidation can be broadcast.
      await backend.server.kill();
      const killed = Date.now();
      db.users.set(u, { modules: [] });
      await within(1000, () => (b.pubsub.isConnected() ? undefined : true), 'the loss is noticed');
      const noticedMs = Date.now() - killed;
      const near = b.permissionCache.nearCacheStats();
      assert.equal(near.trusted, false);
      assert.equal(near.size, 0, 'cleared at the disconnect');
      const hits = near.hits;
      for (let i = 0; i < 5; i++) {
        assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false, 'the loader answers while Redis is down');
      }
      assert.equal(b.permissionCache.nearCacheStats().hits, hits, 'no near-cache answer while the link is down');

      const startAt = Date.now();
      await backend.server.start();
      const readyAt = Date.now();
      await within(3000, () => (b.pubsub.isConnected() ? true : undefined), 'resubscribed');
      const upAt = Date.now();
      console.log(`# resubscribe after restart: ${upAt - readyAt} ms after redis-server answered PING (${upAt - startAt} ms after it was started); loss noticed ${noticedMs} ms after the kill`);
      assert.ok(b.pubsub.status().resubscribes >= 1);
      assert.equal(b.permissionCache.nearCacheStats().size, 0, 'nothing from before the disconnect came back');

      let got = null;
      b.pubsub.onMessage('permissions:invalidate', (m) => (got = m));
      const sent = Date.now();
      assert.equal(await a.pubsub.publishPermissionInvalidation({ type: 'user', userId: 'after-restart' }), 1);
      await within(3000, () => (got !== null ? true : undefined), 'a message published after the restart');
      assert.equal(got.userId, 'after-restart');
      assert.ok(Date.now() - sent < 3000);
    } finally {
      await a.shutdown();
      await b.shutdown();
    }
  });

  it('a hung Redis (SIGSTOP) is noticed by the ping: the near cache is distrusted within 3 s', async () => {
    const db = makeDb();
    const u = uid();
    db.users.set(u, CLERK);
    const b = createCache({ url: backend.url, loaders: db.loaders, commandTimeoutMs: 300, connectTimeoutMs: 500 });
    try {
      assert.equal(await b.pubsub.subscribe(), true);
      for (let i = 0; i < 3; i++) await b.permissionCache.hasModulePermission(u, 'INVENTORY');
      assert.equal(b.permissionCache.nearCacheStats().trusted, true);
      backend.server.pause();
      try {
        await within(3000, () => (b.permissionCache.nearCacheStats().trusted ? undefined : true), 'distrusted');
        db.users.set(u, { modules: [] });
        assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false, 'the loader answers');
      } finally {
        backend.server.resume();
      }
      await within(5000, () => (b.pubsub.isConnected() ? true : undefined), 'resubscribed after resume');
    } finally {
      await b.shutdown();
    }
  });
});

describe('pubsub and configure()', () => {
  it('a subscription follows configure() to the new back end, with its handlers', async () => {
    const c = createCache({ url: 'memory://cfg-one' });
    try {
      assert.equal(await c.pubsub.subscribe(), true);
      const got = [];
      c.pubsub.onMessage('cache:invalidate', (m) => got.push(m.keys[0]));
      c.configure({ url: 'memory://cfg-two' });
      await within(1000, () => (c.pubsub.isConnected() ? true : undefined), 'subscribed again');
      const other = createCache({ url: 'memory://cfg-two' });
      assert.equal(await other.pubsub.publishCacheInvalidation({ keys: ['after-configure'] }), 1);
      await within(1000, () => (got.length === 1 ? true : undefined), 'the message');
      assert.deepEqual(got, ['after-configure']);
      await other.shutdown();
      await c.pubsub.shutdown();
      assert.equal(c.pubsub.isConnected(), false);
      c.configure({ url: 'memory://cfg-one' });
      await sleep(50);
      assert.equal(c.pubsub.isConnected(), false, 'pubsub.shutdown() ends the wish to be subscribed');
    } finally {
      await c.shutdown();
    }
  });
});

describe('pub/sub message text', () => {
  // buildMessage's fast path (a plain object without reserved fields: its JSON with origin and
  // ts appended, no copy of the object) gives exactly the text of the copy it replaces.
  it('is the JSON of the fields plus origin and ts, whichever path builds it', () => {
    const { buildMessage } = require('../lib/pubsub');
    const ctx = { options: { nodeId: 'node-"1"\u00e9' } };
    const realNow = Date.now;
    Date.now = () => 1765000000123;
    try {
      const copy = (m) => {
        const { sender, seq, ...fields } = m;
        return JSON.stringify({ ...fields, origin: ctx.options.nodeId, ts: Date.now() });
      };
      const plain = [
        {},
        { sessionId: 'abc' },
        { type: 'user', userId: 42, nested: { a: [1, 'x', null, { b: true }] } },
        { keys: ['a', 'b\u2028c', '\ud83d\ude00'], pattern: 'dash:*' },
        { skipped: undefined, fn: () => 1, n: NaN, big: 1e21 },
        Object.assign(Object.create(null), { x: 1 }),
      ];
      const reserved = [{ origin: 'forged', a: 1 }, { ts: 1, a: 1 }, { sender: 'x', seq: 9, a: 1 }, { toJSON: () => ({ swapped: true }) }, new (class Msg { constructor() { this.k = 1; } })()];
      for (const m of [...plain, ...reserved]) assert.equal(buildMessage(ctx, m), copy(m), JSON.stringify(m));
      assert.deepEqual(JSON.parse(buildMessage(ctx, {})), { origin: ctx.options.nodeId, ts: 1765000000123 });
      // the tail follows a new configuration
      ctx.options = { nodeId: 'node-2' };
      assert.equal(buildMessage(ctx, { a: 1 }), '{"a":1,"origin":"node-2","ts":1765000000123}');
    } finally {
      Date.now = realNow;
    }
  });
});
