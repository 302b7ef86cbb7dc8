'use strict';
// The JS near cache (lib/near_l1.js), the L1 in front of the Rust near cache: a hit crosses no
// native boundary, and it keeps every guarantee of the Rust near cache: invalidations from
// this instance, from another instance and from another process void it at once, a role
// invalidation voids every user, a disconnect turns it off, it never outlives the Rust entry
// it copies, and a read that raced an invalidation never puts the old value back.
// Against a real redis-server and memory://, plus the L1 alone over fake native calls.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { createCache, permUserKey } = require('..');
const { NearL1 } = require('../lib/near_l1');
const { BACKENDS, redisBackend } = require('./helpers/backends');
const { forkWorker } = require('./helpers/worker');
const { sleep } = require('./helpers/redis');

const uid = () => `u${crypto.randomBytes(6).toString('hex')}`;
const CLERK = { role: 'CLERK', modules: ['INVENTORY'], pages: { items: ['view'] } };
const REPORTS = { role: 'CLERK', modules: ['REPORTS'], pages: { items: ['edit'] } };

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
  const db = { users: new Map(), roles: new Map(), calls: 0 };
  db.loaders = {
    userPermissions: async (userId) => {
      db.calls++;
      const s = db.users.get(String(userId));
      return s ? structuredClone(s) : null;
    },
    rolePermissions: async (roleId) => {
      const s = db.roles.get(String(roleId));
      return s ? structuredClone(s) : null;
    },
  };
  return db;
}

const l1Hits = (c) => c.permissionCache.nearCacheStats().l1.hits;

// Checks until the answer comes from the JS near cache (loader → Redis → Rust near → L1:
// at most four calls), and asserts it does.
async function warm(c, u, module = 'INVENTORY', expected = true) {
  for (let i = 0; i < 6; i++) {
    const before = l1Hits(c);
    assert.equal(await c.permissionCache.hasModulePermission(u, module), expected);
    if (l1Hits(c) === before + 1) return;
  }
  assert.fail(`the JS near cache never answered: ${JSON.stringify(c.permissionCache.nearCacheStats())}`);
}

// Counts the calls `c` makes into its native object while `fn` runs.
async function nativeCalls(c, fn) {
  const native = c.ctx.bridge.native;
  const names = ['permCheckModule', 'permCheckPage', 'permUserGet', 'permRoleGet', 'permUserNear', 'permRoleNear'];
  let calls = 0;
  for (const name of names) {
    const orig = native[name];
    native[name] = function counted(...args) {
      calls++;
      return orig.apply(this, args);
    };
  }
  try {
    await fn();
  } finally {
    for (const name of names) delete native[name];
  }
  return calls;
}

for (const [name, make] of BACKENDS) {
  describe(`the JS near cache on ${name}`, () => {
    let backend;
    let a; // another app node on the same back end
    let b; // the node under test: subscribed, long near TTL (no expiry can hide a bug)
    let plain; // not subscribed: writes behind the near caches' backs (no broadcast)
    let db;

    before(async () => {
      backend = await make();
      db = makeDb();
      a = createCache({ url: backend.url, nodeId: 'node-a', loaders: db.loaders });
      b = createCache({ url: backend.url, nodeId: 'node-b', loaders: db.loaders, nearCacheTtlMs: 30_000 });
      plain = createCache({ url: backend.url, loaders: db.loaders });
      assert.equal(await a.pubsub.subscribe(), true);
      assert.equal(await b.pubsub.subscribe(), true);
    });
    after(async () => {
      await a.shutdown();
      await b.shutdown();
      await plain.shutdown();
      await backend.close();
    });

    it('an L1 hit makes no native call and counts as a permission hit and a near-cache hit', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      await warm(b, u);
      const stats = b.stats().permission.hits;
      const near = b.permissionCache.nearCacheStats().hits;
      const calls = await nativeCalls(b, async () => {
        for (let i = 0; i < 100; i++) {
          assert.equal(await b.permissionCache.hasModulePermission(u, i % 2 ? 'INVENTORY' : 'PAYROLL'), i % 2 === 1);
          assert.equal(await b.permissionCache.hasPagePermission(u, 'items', i % 2 ? 'view' : 'edit'), i % 2 === 1);
        }
      });
      assert.equal(calls, 0, 'no native call');
      assert.equal(b.stats().permission.hits - stats, 200);
      assert.equal(b.permissionCache.nearCacheStats().hits - near, 200);
    });

    it('every read answers from L1 exactly as the native path answers', async () => {
      const superRole = createCache({ url: backend.url, superRoles: ['7', 'BOSS'], nearCacheTtlMs: 30_000 });
      const plainSuper = createCache({ url: backend.url, superRoles: ['7', 'BOSS'] });
      try {
        await superRole.pubsub.subscribe();
        const snaps = [
          CLERK,
          { role: 7, modules: [] },
          { role: 'BOSS' },
          // (malformed snapshots, e.g. a page list that is not an array, are refused on write)
          { modules: ['*'], pages: { p: ['*'], q: [], r: ['1', 'view'] } },
          { role: 'CLERK', modules: ['A', '5', ''], pages: JSON.parse('{"__proto__":["view"]}') },
          {},
        ];
        const questions = [
          ['m', 'A'], ['m', 'INVENTORY'], ['m', '*'], ['m', 'ANY'],
          ['p', 'items', 'view'], ['p', 'items', 'edit'], ['p', 'p', 'x'], ['p', 'q', 'view'], ['p', 'r', 'view'], ['p', '__proto__', 'view'], ['p', 'toString', 'view'],
        ];
        for (const snap of snaps) {
          const u = uid();
          await plainSuper.permissionCache.setUserPermissions(u, snap);
          await warm(superRole, u, 'NOPE', await plainSuper.permissionCache.hasModulePermission(u, 'NOPE'));
          for (const [kind, x, y] of questions) {
            const ask = (c) => (kind === 'm' ? c.permissionCache.hasModulePermission(u, x) : c.permissionCache.hasPagePermission(u, x, y));
            const before = l1Hits(superRole);
            assert.equal(await ask(superRole), await ask(plainSuper), `${JSON.stringify(snap)} ${kind} ${x} ${y}`);
            assert.equal(l1Hits(superRole), before + 1, 'answered from L1');
          }
          const got = await superRole.permissionCache.getUserPermissions(u);
          assert.deepEqual(got, await plainSuper.permissionCache.getUserPermissions(u));
          got.modules = ['MUTATED'];
          assert.notDeepEqual((await superRole.permissionCache.getUserPermissionsWithFallback(u)).modules, ['MUTATED'], 'each caller gets its own copy');
          assert.equal((await superRole.permissionCache.getUserPermissionsWithFallback(u)).source, 'cache');
        }
        const r = uid();
        await plainSuper.permissionCache.setRolePermissions(r, { modules: ['HR'] });
        for (let i = 0; i < 3; i++) await superRole.permissionCache.getRolePermissions(r);
        const before = l1Hits(superRole);
        const calls = await nativeCalls(superRole, async () => {
          assert.deepEqual(await superRole.permissionCache.getRolePermissions(r), { modules: ['HR'] });
          assert.deepEqual(await superRole.permissionCache.getRolePermissionsWithFallback(r), { modules: ['HR'], source: 'cache' });
        });
        assert.equal(calls, 0);
        assert.equal(l1Hits(superRole), before + 2);
      } finally {
        await superRole.shutdown();
        await plainSuper.shutdown();
      }
    });

    it("another instance's invalidateUserPermissions: a check made the moment the message arrives asks the loader", async () => {
      const u = uid();
      db.users.set(u, CLERK);
      await warm(b, u);
      db.users.set(u, REPORTS);
      const calls = db.calls;
      let checked = null;
      const off = b.pubsub.onMessage('permissions:invalidate', (m) => {
        // In the handler itself: Rust applied the message before JS could see it.
        if (m.userId === u) checked = b.permissionCache.hasModulePermission(u, 'INVENTORY');
      });
      try {
        assert.equal(await a.permissionCache.invalidateUserPermissions(u), true);
        await within(1000, () => (checked !== null ? true : undefined), 'the message at B');
        assert.equal(await checked, false);
        assert.equal(db.calls - calls, 1, 'one loader call for the new snapshot');
        assert.equal(await b.permissionCache.hasModulePermission(u, 'REPORTS'), true);
      } finally {
        off();
      }
    });

    it('another instance invalidates: polled checks turn within 1 s, with one loader call', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      await warm(b, u);
      db.users.set(u, { modules: [] });
      const calls = db.calls;
      const t0 = Date.now();
      await a.pubsub.invalidateUserPermissions(u);
      const took = await within(1000, async () => ((await b.permissionCache.hasModulePermission(u, 'INVENTORY')) === false ? Date.now() - t0 : undefined), 'B sees the change');
      assert.ok(took < 1000, `${took} ms`);
      assert.equal(db.calls - calls, 1);
    });

    it('invalidateKeys from another instance (cache:invalidate) voids the entry', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      await warm(b, u);
      await plain.permissionCache.setUserPermissions(u, { modules: [] }); // behind B's back
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), true, 'stale until invalidated (what the near cache is for)');
      let arrived = false;
      const off = b.pubsub.onMessage('cache:invalidate', (m) => (m.keys && m.keys.includes(permUserKey(u)) ? (arrived = true) : 0));
      try {
        // Deleting the key and broadcasting: B must read again (and find nothing: the loader).
        db.users.set(u, REPORTS);
        await a.pubsub.invalidateKeys([permUserKey(u)]);
        await within(1000, () => (arrived ? true : undefined), 'the message at B');
        assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false);
      } finally {
        off();
      }
    });

    it('a local invalidation or write is visible to the very next call', async () => {
      const u = uid();
      db.users.set(u, CLERK);
      await warm(b, u);
      db.users.set(u, REPORTS);
      const calls = db.calls;
      assert.equal(await b.permissionCache.invalidateUserPermissions(u), true);
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false);
      assert.equal(db.calls - calls, 1);
      await warm(b, u, 'REPORTS');
      assert.equal(await b.permissionCache.setUserPermissions(u, CLERK), true);
      assert.deepEqual(await b.permissionCache.getUserPermissions(u), CLERK, 'a write by this node is read back at once');
      assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), true);
      await warm(b, u);
      // Even before the write completes: the near copies go when the call is made.
      const hits = l1Hits(b);
      const write = b.permissionCache.setUserPermissions(u, REPORTS);
      const read = b.permissionCache.hasPagePermission(u, 'items', 'view');
      assert.equal(l1Hits(b), hits, 'not answered from the copy the write replaces');
      await Promise.all([write, read]);
      assert.equal(await b.permissionCache.hasPagePermission(u, 'items', 'view'), false);
    });

    it('a role invalidation on another instance voids every user entry', async () => {
      const users = [uid(), uid(), uid()];
      // Stored by another node: warming B needs no write of its own (which would void L1).
      for (const u of users) await plain.permissionCache.setUserPermissions(u, CLERK);
      for (const u of users) await warm(b, u);
      for (const u of users) await plain.permissionCache.setUserPermissions(u, { modules: [] }); // behind B's back
      const r = uid();
      db.roles.set(r, { modules: ['HR'] });
      await a.permissionCache.setRolePermissions(r, { modules: ['HR'] });
      for (let i = 0; i < 3; i++) assert.deepEqual(await b.permissionCache.getRolePermissions(r), { modules: ['HR'] });
      assert.ok(b.permissionCache.nearCacheStats().l1.size >= 4);
      let arrived = false;
      const off = b.pubsub.onMessage('permissions:invalidate', (m) => (m.roleId === r ? (arrived = true) : 0));
      try {
        await a.pubsub.invalidateRolePermissions(r);
        await within(1000, () => (arrived ? true : undefined), 'the role message at B');
        assert.equal(b.permissionCache.nearCacheStats().l1.size, 0);
        for (const u of users) assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false, 'read again from the store');
        assert.equal(await b.permissionCache.getRolePermissions(r), null);
      } finally {
        off();
      }
    });

    it('an L1 entry lives no longer than the Rust entry it copies (nearCacheTtlMs)', async () => {
      const short = createCache({ url: backend.url, nearCacheTtlMs: 1000 });
      try {
        await short.pubsub.subscribe();
        const u = uid();
        await plain.permissionCache.setUserPermissions(u, CLERK);
        let filled = Date.now();
        assert.equal(await short.permissionCache.hasModulePermission(u, 'INVENTORY'), true); // store read: the Rust entry
        await sleep(700);
        // Copied into L1 with what the Rust entry has left (about 300 ms), not a fresh TTL.
        const fills = short.permissionCache.nearCacheStats().fills;
        const warmedAt = Date.now();
        await warm(short, u);
        // (On a machine so loaded that the Rust entry expired meanwhile, it was read again.)
        if (short.permissionCache.nearCacheStats().fills !== fills) filled = warmedAt;
        await plain.permissionCache.setUserPermissions(u, { modules: [] }); // behind its back
        let answer = true;
        while (answer && Date.now() - filled < 5000) {
          answer = await short.permissionCache.hasModulePermission(u, 'INVENTORY');
          if (answer) await sleep(10);
        }
        const staleFor = Date.now() - filled;
        assert.equal(answer, false);
        // A fresh L1 TTL would have kept it until at least 1700 ms.
        assert.ok(staleFor < 1000 + 500, `stale until ${staleFor} ms after the Rust entry was filled`);
      } finally {
        await short.shutdown();
      }
    });

    it('reads in flight while invalidations land never put an old value back into L1', async () => {
      const u = uid();
      const snaps = [CLERK, REPORTS];
      for (let round = 0; round < 20; round++) {
        const now = snaps[round % 2];
        const next = snaps[(round + 1) % 2];
        db.users.set(u, now);
        await warm(b, u, 'INVENTORY', now === CLERK);
        db.users.set(u, next);
        let arrived = false;
        const off = b.pubsub.onMessage('permissions:invalidate', (m) => (m.userId === u ? (arrived = true) : 0));
        try {
          // Reads of every kind on B around the invalidation on A (and one on B itself).
          const reads = [];
          const burst = () => {
            for (let i = 0; i < 8; i++) {
              reads.push(b.permissionCache.hasModulePermission(u, 'INVENTORY'));
              reads.push(b.permissionCache.getUserPermissions(u));
            }
          };
          burst();
          const inv = (round % 3 === 2 ? b : a).permissionCache.invalidateUserPermissions(u);
          burst();
          await inv;
          burst();
          await Promise.all(reads);
          await within(1000, () => (arrived ? true : undefined), 'the message at B');
          for (let i = 0; i < 4; i++) {
            assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), next === CLERK, `round ${round}, check ${i}`);
          }
          const snap = await b.permissionCache.getUserPermissions(u);
          assert.deepEqual(snap && snap.modules, next.modules, `round ${round}`);
        } finally {
          off();
        }
      }
    });
  });
}

describe('the JS near cache on a Redis that fails', () => {
  let backend;
  before(async () => {
    backend = await redisBackend();
  });
  after(async () => {
    await backend.close();
  });

  it('Redis killed: nothing is answered from L1 while the link is down, and it is empty after the resubscribe', async () => {
    const db = makeDb();
    const u = uid();
    db.users.set(u, CLERK);
    const b = createCache({ url: backend.url, loaders: db.loaders, commandTimeoutMs: 300, connectTimeoutMs: 500, nearCacheTtlMs: 30_000 });
    try {
      assert.equal(await b.pubsub.subscribe(), true);
      await warm(b, u);
      await backend.server.kill();
      db.users.set(u, { modules: [] }); // no invalidation can be broadcast now
      await within(1000, () => (b.pubsub.isConnected() ? undefined : true), 'the loss is noticed');
      const hits = l1Hits(b);
      assert.equal(b.permissionCache.nearCacheStats().l1.size, 0);
      for (let i = 0; i < 5; i++) {
        assert.equal(await b.permissionCache.hasModulePermission(u, 'INVENTORY'), false, 'the loader answers');
      }
      assert.equal(l1Hits(b), hits, 'no L1 answer while the link is down');
      await backend.server.start();
      await within(3000, () => (b.pubsub.isConnected() ? true : undefined), 'resubscribed');
      assert.equal(b.permissionCache.nearCacheStats().l1.size, 0, 'nothing from before the disconnect came back');
      db.users.set(u, REPORTS);
      // Back in use once the command connection is back too (it reconnects on its own).
      await within(3000, async () => {
        await b.permissionCache.invalidateUserPermissions(u);
        return warm(b, u, 'REPORTS').then(() => true, () => undefined);
      }, 'L1 answers again');
    } finally {
      await b.shutdown();
    }
  });
});

describe('the JS near cache across two Node processes on one Redis', () => {
  let backend;
  before(async () => {
    backend = await redisBackend();
  });
  after(async () => {
    await backend.close();
  });

  it("after invalidateUserPermissions in process A, process B's next check after the message asks its loader", async () => {
    const { child, next } = forkWorker('perm-node.js', [backend.url]);
    const check = async (u) => {
      child.send({ cmd: 'check', userId: u, module: 'INVENTORY' });
      return next('checked');
    };
    const a = createCache({ url: backend.url, nodeId: 'node-a' });
    try {
      assert.equal((await next('ready')).subscribed, true);
      const u = uid();
      child.send({ cmd: 'db', userId: u, snapshot: CLERK });
      await next('ok');
      let r;
      for (let i = 0; i < 5; i++) {
        r = await check(u);
        assert.equal(r.allowed, true);
      }
      assert.equal(r.loaderCalls, 1);
      const l1Before = r.near.l1.hits;
      r = await check(u);
      assert.equal(r.near.l1.hits, l1Before + 1, 'B answers from its JS near cache');
      child.send({ cmd: 'db', userId: u, snapshot: REPORTS });
      await next('ok');
      const t0 = Date.now();
      assert.equal(await a.pubsub.invalidateUserPermissions(u), true);
      await next('message', 1000);
      r = await check(u);
      assert.equal(r.allowed, false);
      assert.equal(r.loaderCalls, 2, 'exactly one more loader call');
      assert.ok(Date.now() - t0 < 1000, `${Date.now() - t0} ms`);
      child.send({ cmd: 'exit' });
      assert.equal(await new Promise((resolve) => child.on('exit', resolve)), 0);
    } finally {
      child.kill();
      await a.shutdown();
    }
  });
});

// The L1 alone, over fake native calls and a plain ArrayBuffer standing in for the shared
// words: the interleavings that real timing cannot force.
describe('the JS near cache over fake native calls', () => {
  const SNAP = JSON.stringify(CLERK);
  function setup({ ttlMs = 10_000, max = 100 } = {}) {
    const buf = new ArrayBuffer(8);
    const words = new Int32Array(buf);
    words[1] = 1; // trusted
    const native = {
      calls: 0,
      during: null, // what "Rust" does while the call runs
      permUserNear(id) {
        this.calls++;
        if (this.during) this.during();
        return { json: SNAP, ttlMs, isSuper: id === 'boss' };
      },
      permRoleNear() {
        this.calls++;
        return { json: '{"modules":["HR"]}', ttlMs, isSuper: false };
      },
    };
    const l1 = new NearL1(native, buf, max);
    return { l1, words, native, invalidate: () => Atomics.add(words, 0, 1) };
  }

  it('a snapshot whose generation moved during the native call is never answered from', () => {
    const { l1, native, invalidate } = setup();
    native.during = invalidate;
    assert.ok(l1.fillUser('1'), 'the call itself gets the snapshot Rust had (as fresh as a Rust near hit)');
    assert.equal(l1.get(l1.users, '1'), undefined, 'but the copy belongs to the old generation');
    native.during = null;
    assert.ok(l1.fillUser('1'));
    assert.ok(l1.get(l1.users, '1'), 'a fill in a quiet generation is answered from');
  });

  it('any invalidation voids every entry, users and roles', () => {
    const { l1, invalidate } = setup();
    l1.fillUser('1');
    l1.fillUser('2');
    l1.fillRole('r');
    assert.equal(l1.size(), 3);
    invalidate();
    assert.equal(l1.get(l1.users, '2'), undefined);
    assert.equal(l1.get(l1.roles, 'r'), undefined);
    assert.equal(l1.size(), 0);
  });

  it('untrusted: no native call, no fill; a change of trust voids everything', () => {
    const { l1, words, native } = setup();
    l1.fillUser('1');
    // What Rust does at a disconnect: bump, then distrust.
    Atomics.add(words, 0, 1);
    Atomics.store(words, 1, 0);
    assert.equal(l1.get(l1.users, '1'), undefined);
    const calls = native.calls;
    assert.equal(l1.fillUser('1'), undefined);
    assert.equal(native.calls, calls, 'nothing to ask an untrusted near cache');
    Atomics.store(words, 1, 1); // trusted again, without a bump: still nothing from before
    assert.equal(l1.get(l1.users, '1'), undefined);
  });

  it('an entry expires when the Rust entry it copies would', async () => {
    const { l1 } = setup({ ttlMs: 40 });
    l1.fillUser('1');
    assert.ok(l1.get(l1.users, '1'));
    await sleep(60);
    assert.equal(l1.get(l1.users, '1'), undefined);
  });

  it('bounded by nearCacheMax over users and roles together, the oldest going first', () => {
    const { l1 } = setup({ max: 3 });
    for (const id of ['1', '2', '3', '4']) l1.fillUser(id);
    assert.equal(l1.size(), 3);
    assert.equal(l1.get(l1.users, '1'), undefined);
    assert.ok(l1.get(l1.users, '4'));
    l1.fillRole('r');
    assert.equal(l1.size(), 3);
    assert.equal(l1.get(l1.users, '2'), undefined);
  });

  it('the super-role answer is the one Rust gave', () => {
    const { l1 } = setup();
    const { hasModule, hasPage } = require('../lib/near_l1');
    assert.equal(hasModule(l1.fillUser('boss'), 'ANYTHING'), true);
    assert.equal(hasPage(l1.fillUser('boss'), 'x', 'y'), true);
    assert.equal(hasModule(l1.fillUser('1'), 'ANYTHING'), false);
  });

  it('a detached buffer turns the L1 off instead of throwing', () => {
    const buf = new ArrayBuffer(8);
    const words = new Int32Array(buf);
    words[1] = 1;
    const native = { permUserNear: () => ({ json: SNAP, ttlMs: 10_000, isSuper: false }) };
    const l1 = new NearL1(native, buf, 10);
    l1.fillUser('1');
    structuredClone(buf, { transfer: [buf] });
    assert.equal(l1.get(l1.users, '1'), undefined);
    assert.equal(l1.fillUser('1'), undefined);
  });

  it('the real shared words: handed out once, and moved by an invalidation in Rust', async () => {
    const c = createCache({ url: 'memory://l1-words' });
    try {
      await c.pubsub.subscribe();
      const l1 = c.ctx.nearL1;
      assert.ok(l1, 'the JS near cache is on');
      assert.equal(c.ctx.bridge.native.nearCacheWords(), null, 'a second buffer over the same memory is refused');
      const gen = l1.live();
      assert.ok(!Number.isNaN(gen), 'trusted while subscribed');
      await c.permissionCache.invalidateUserPermissions('someone');
      assert.notEqual(l1.live(), gen);
      await c.pubsub.shutdown();
      assert.ok(Number.isNaN(l1.live()), 'distrusted after the subscription ends');
    } finally {
      await c.shutdown();
    }
    const off = createCache({ url: 'memory://l1-off', nearCacheTtlMs: 0 });
    try {
      await off.pubsub.subscribe();
      assert.equal(off.ctx.nearL1, null, 'no JS near cache when the near cache is off');
    } finally {
      await off.shutdown();
    }
  });
});
