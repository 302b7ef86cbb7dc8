'use strict';
// The general cache (get / set / del / wrap, docs/cache.md) on a real redis-server and on
// memory:// (and on Cluster / Sentinel through `npm run test:topologies`). Two instances on
// one store stand for two app nodes.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { createCache } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { sleep, startRedis } = require('./helpers/redis');

const uid = () => crypto.randomBytes(6).toString('hex');

function deferred() {
  let resolve;
  const promise = new Promise((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

// Polls `fn` until it answers truthy, at most `ms` → its answer (or the last one).
async function until(fn, ms = 3000) {
  const end = Date.now() + ms;
  let v;
  while (Date.now() < end) {
    v = await fn();
    if (v) return v;
    await sleep(10);
  }
  return v;
}

async function rejectsWith(promise, name, code) {
  await assert.rejects(promise, (err) => {
    assert.equal(err.name, name, err.message);
    assert.equal(err.code, code, err.message);
    return true;
  });
}

for (const [name, make] of BACKENDS) {
  describe(`general cache on ${name}`, () => {
    let backend;
    let a; // one node
    let b; // another node on the same store

    before(async () => {
      backend = await make();
      a = createCache({ url: backend.url, nodeId: 'node-a', maxValueBytes: 4096 });
      b = createCache({ url: backend.url, nodeId: 'node-b', maxValueBytes: 4096 });
      assert.equal(await a.pubsub.subscribe(), true);
      assert.equal(await b.pubsub.subscribe(), true);
    });
    after(async () => {
      await a.shutdown();
      await b.shutdown();
      await backend.close();
    });

    it('set needs a TTL; bad keys, TTLs and values are refused with a code, nothing written', async () => {
      const k = `bad:${uid()}`;
      await rejectsWith(a.set(k, 1), 'TypeError', 'ERR_INVALID_ARG');
      await rejectsWith(a.set(k, 1, {}), 'TypeError', 'ERR_INVALID_ARG');
      await rejectsWith(a.set(k, 1, { ttlSec: '5' }), 'TypeError', 'ERR_INVALID_ARG');
      for (const ttlSec of [0, -1, NaN, Infinity, 30 * 24 * 3600 + 1]) {
        await rejectsWith(a.set(k, 1, { ttlSec }), 'RangeError', 'ERR_OUT_OF_RANGE');
      }
      await rejectsWith(a.set(k, () => 1, { ttlSec: 5 }), 'TypeError', 'ERR_INVALID_ARG');
      await rejectsWith(a.set(k, undefined, { ttlSec: 5 }), 'TypeError', 'ERR_INVALID_ARG');
      const cyclic = {};
      cyclic.self = cyclic;
      await rejectsWith(a.set(k, cyclic, { ttlSec: 5 }), 'TypeError', 'ERR_INVALID_ARG');
      for (const key of [42, null, '', 'a\nb', 'tab\there']) {
        await rejectsWith(a.set(key, 1, { ttlSec: 5 }), 'TypeError', 'ERR_INVALID_ARG');
        await rejectsWith(a.get(key), 'TypeError', 'ERR_INVALID_ARG');
      }
      await rejectsWith(a.get('x'.repeat(600)), 'RangeError', 'ERR_VALUE_TOO_LARGE');
      await rejectsWith(a.del([k, 7]), 'TypeError', 'ERR_INVALID_ARG');
      await rejectsWith(a.del(Array.from({ length: 1001 }, (_, i) => `k${i}`)), 'RangeError', 'ERR_VALUE_TOO_LARGE');
      await rejectsWith(a.wrap(k, 'not a function', { ttlSec: 5 }), 'TypeError', 'ERR_INVALID_ARG');
      await rejectsWith(a.wrap(k, async () => 1), 'TypeError', 'ERR_INVALID_ARG');
      await rejectsWith(a.wrap(k, async () => 1, { ttlSec: 5, staleSec: -1 }), 'RangeError', 'ERR_OUT_OF_RANGE');
      await rejectsWith(a.wrap(k, async () => 1, { ttlSec: 5, loaderTimeoutMs: 0 }), 'RangeError', 'ERR_OUT_OF_RANGE');
      await rejectsWith(a.wrap(k, async () => 1, { ttlSec: 5, near: { ttlMs: 6000 } }), 'RangeError', 'ERR_OUT_OF_RANGE');
      assert.equal(await a.get(k), null);
      assert.ok(!(await backend.keys()).some((x) => x.startsWith('bad:')), 'nothing written');
    });

    it('JSON values and Buffers round-trip, with the TTL asked for, under keyPrefix', async () => {
      const k = `rt:${uid()}`;
      const value = { n: 1, s: 'é', list: [1, 'two', null], nested: { ok: true } };
      assert.equal(await a.set(k, value, { ttlSec: 30 }), true);
      assert.deepEqual(await b.get(k), value);
      const pttl = await backend.pttl(k);
      assert.ok(pttl > 25_000 && pttl <= 30_000, `PTTL ${pttl}`);
      const buf = crypto.randomBytes(300);
      assert.equal(await a.set(`${k}:buf`, buf, { ttlSec: 30 }), true);
      const back = await b.get(`${k}:buf`);
      assert.ok(Buffer.isBuffer(back), 'a Buffer comes back a Buffer');
      assert.ok(back.equals(buf));
      for (const v of ['text', 42, true, [1, 2]]) {
        await a.set(`${k}:v`, v, { ttlSec: 5 });
        assert.deepEqual(await a.get(`${k}:v`), v);
      }
      assert.equal(await a.get(`${k}:missing`), null);

      const p = createCache({ url: backend.url, keyPrefix: 'pfx:' });
      try {
        assert.equal(await p.set(k, 'prefixed', { ttlSec: 5 }), true);
        assert.ok((await backend.keys()).includes(`pfx:${k}`), 'stored under keyPrefix');
        assert.equal(await p.get(k), 'prefixed');
      } finally {
        await p.shutdown();
      }
    });

    it('maxValueBytes is enforced on set (RangeError, nothing written)', async () => {
      const k = `big:${uid()}`;
      await rejectsWith(a.set(k, 'x'.repeat(5000), { ttlSec: 5 }), 'RangeError', 'ERR_VALUE_TOO_LARGE');
      await rejectsWith(a.set(k, Buffer.alloc(4000), { ttlSec: 5 }), 'RangeError', 'ERR_VALUE_TOO_LARGE');
      assert.equal(await backend.pttl(k), -2);
      // a loader's value over the bound goes to its caller, uncached
      const before = a.stats().cache.uncacheable;
      assert.equal(await a.wrap(k, async () => 'y'.repeat(5000), { ttlSec: 5 }), 'y'.repeat(5000));
      assert.equal(await backend.pttl(k), -2);
      assert.equal(a.stats().cache.uncacheable, before + 1);
    });

    it('del answers how many keys existed (one key or an array)', async () => {
      const k = `del:${uid()}`;
      for (const i of [1, 2, 3]) await a.set(`${k}:${i}`, i, { ttlSec: 30 });
      assert.equal(await b.del([`${k}:1`, `${k}:2`, `${k}:missing`]), 2);
      assert.equal(await b.del(`${k}:3`), 1);
      assert.equal(await b.del(`${k}:3`), 0);
      assert.equal(await b.del([]), 0);
      assert.equal(await a.get(`${k}:1`), null);
      const many = Array.from({ length: 250 }, (_, i) => `${k}:m${i}`);
      for (const key of many) await a.set(key, 1, { ttlSec: 30 });
      assert.equal(await a.del(many), 250);
    });

    it('wrap: N concurrent misses make one loader call; later calls hit', async () => {
      const k = `sf:${uid()}`;
      let calls = 0;
      const loader = async () => {
        calls++;
        await sleep(50);
        return { id: 7 };
      };
      const out = await Promise.all(Array.from({ length: 25 }, () => a.wrap(k, loader, { ttlSec: 20 })));
      assert.equal(calls, 1, 'one loader call for 25 concurrent callers');
      for (const v of out) assert.deepEqual(v, { id: 7 });
      assert.deepEqual(await a.wrap(k, loader, { ttlSec: 20 }), { id: 7 });
      assert.deepEqual(await b.wrap(k, loader, { ttlSec: 20 }), { id: 7 });
      assert.equal(calls, 1, 'hits on both nodes');
      const pttl = await backend.pttl(k);
      assert.ok(pttl > 15_000 && pttl <= 20_000, `PTTL ${pttl}`);
      // a loader that throws: every caller gets its error, nothing is cached
      const boom = () => Promise.reject(new Error('db down'));
      await assert.rejects(Promise.all([a.wrap(`${k}:e`, boom, { ttlSec: 5 }), a.wrap(`${k}:e`, boom, { ttlSec: 5 })]), /db down/);
      assert.equal(await a.get(`${k}:e`), null);
    });

    it('wrap: a loader past loaderTimeoutMs rejects every caller with ERR_LOADER_TIMEOUT; nothing cached', async () => {
      const k = `to:${uid()}`;
      let calls = 0;
      const slow = async () => {
        calls++;
        await sleep(600);
        return 'late';
      };
      const t0 = Date.now();
      const results = await Promise.allSettled([1, 2, 3].map(() => a.wrap(k, slow, { ttlSec: 5, loaderTimeoutMs: 100 })));
      const ms = Date.now() - t0;
      assert.equal(calls, 1);
      for (const r of results) {
        assert.equal(r.status, 'rejected');
        assert.equal(r.reason.code, 'ERR_LOADER_TIMEOUT');
      }
      assert.ok(ms < 450, `settled in ${ms} ms`);
      console.log(`# loader timeout 100 ms: callers settled in ${ms} ms`);
      await sleep(650);
      assert.equal(await a.get(k), null, 'the late value is not cached');
      assert.ok(a.stats().cache.loaderTimeouts >= 1);
    });

    it('wrap with staleSec: a stale value is served at once while one refresh runs', async () => {
      const k = `stale:${uid()}`;
      let version = 1;
      let calls = 0;
      const loader = async () => {
        calls++;
        await sleep(100);
        return { version };
      };
      const opts = { ttlSec: 0.3, staleSec: 30 };
      assert.deepEqual(await a.wrap(k, loader, opts), { version: 1 });
      const pttl = await backend.pttl(k);
      assert.ok(pttl > 29_000 && pttl <= 30_300, `Redis TTL = ttl + stale (PTTL ${pttl})`);
      await sleep(400); // past fresh, within stale
      version = 2;
      const t0 = Date.now();
      const out = await Promise.all(Array.from({ length: 10 }, () => a.wrap(k, loader, opts)));
      const ms = Date.now() - t0;
      for (const v of out) assert.deepEqual(v, { version: 1 }, 'the stale value, at once');
      assert.ok(ms < 90, `served before the refresh's loader answered (${ms} ms)`);
      const fresh = await until(async () => {
        const v = await a.get(k);
        return v && v.version === 2 ? v : null;
      });
      assert.deepEqual(fresh, { version: 2 }, 'the refresh wrote the new value');
      assert.equal(calls, 2, 'one refresh for ten stale reads');
      assert.ok(a.stats().cache.staleServed >= 10);
      assert.deepEqual(await b.wrap(k, loader, opts), { version: 2 });
    });

    // The revision guard: a revocation after the miss read wins over the fill.
    const revokers = [
      ['del on the same node', (k) => a.del(k)],
      ['del on another node', (k) => b.del(k)],
      ['invalidateKeys on another node', (k) => b.pubsub.invalidateKeys([k])],
      ['invalidatePattern on another node', (k) => b.pubsub.invalidatePattern(`${k.split(':')[0]}:*`)],
    ];
    for (const [label, revoke] of revokers) {
      it(`wrap: a load that began before ${label} is answered but not cached`, async () => {
        const fam = `guard${uid()}`;
        const k = `${fam}:${uid()}`;
        const entered = deferred();
        const release = deferred();
        let calls = 0;
        const loader = async () => {
          calls++;
          if (calls === 1) {
            entered.resolve();
            await release.promise;
            return 'old';
          }
          return 'new';
        };
        const read = a.wrap(k, loader, { ttlSec: 30 });
        await entered.promise;
        await revoke(k);
        // a message reaches node a in milliseconds; give it a moment (invalidate* only)
        await sleep(label.startsWith('invalidate') ? 100 : 0);
        const staleBefore = a.stats().cache.staleFills;
        release.resolve();
        assert.equal(await read, 'old', 'its own caller gets the value');
        assert.equal(await backend.pttl(k), -2, 'not written back');
        assert.equal(await b.get(k), null);
        assert.equal(await a.wrap(k, loader, { ttlSec: 30 }), 'new', 'the next call loads again');
        assert.equal(calls, 2);
        if (label.startsWith('del')) assert.equal(a.stats().cache.staleFills, staleBefore + 1, 'refused by the revision');
      });
    }

    it('near: served from process memory; dropped on another node by invalidateKeys and invalidatePattern, and by a local del/set', async () => {
      const fam = `near${uid()}`;
      const k = `${fam}:${uid()}`;
      let version = 1;
      let calls = 0;
      const loader = async () => {
        calls++;
        return { version };
      };
      const opts = { ttlSec: 60, near: true };
      assert.deepEqual(await a.wrap(k, loader, opts), { version: 1 });
      await b.set(k, { version: 'changed-behind' }, { ttlSec: 60 }); // not an invalidation
      const nearHits = a.stats().cache.nearHits;
      assert.deepEqual(await a.wrap(k, loader, opts), { version: 1 }, 'answered from the near cache');
      assert.equal(a.stats().cache.nearHits, nearHits + 1);

      // invalidateKeys on node b: node a's near entry goes when the message arrives
      version = 2;
      await b.pubsub.invalidateKeys([k]);
      const v2 = await until(async () => {
        const v = await a.wrap(k, loader, opts);
        return v.version === 2 ? v : null;
      });
      assert.deepEqual(v2, { version: 2 });

      // invalidatePattern on node b
      version = 3;
      await b.pubsub.invalidatePattern(`${fam}:*`);
      const v3 = await until(async () => {
        const v = await a.wrap(k, loader, opts);
        return v.version === 3 ? v : null;
      });
      assert.deepEqual(v3, { version: 3 });

      // a local del, then a local set: the next call does not answer the old near entry
      version = 4;
      await a.del(k);
      assert.deepEqual(await a.wrap(k, loader, opts), { version: 4 });
      await a.set(k, { version: 5 }, { ttlSec: 60 });
      assert.deepEqual(await a.wrap(k, loader, opts), { version: 5 });
      assert.ok(a.generalCache.nearSize() <= 1000);
      assert.ok(calls >= 4);
    });

    it('the module exposes get/set/del/wrap on the default instance', () => {
      const mod = require('..');
      for (const f of ['get', 'set', 'del', 'wrap']) assert.equal(typeof mod[f], 'function');
    });
  });
}

describe('general cache while Redis does not answer', () => {
  let server;
  let c;
  before(async () => {
    server = await startRedis();
    c = createCache({ url: server.url, commandTimeoutMs: 200 });
  });
  after(async () => {
    server.resume();
    await c.shutdown();
    await server.stop();
  });

  it('get/set/del/wrap settle within commandTimeoutMs + margin and fall back', async () => {
    const k = `down:${uid()}`;
    assert.equal(await c.set(k, 'v', { ttlSec: 30 }), true);
    server.pause(); // SIGSTOP
    const errors = c.stats().cache.errors;
    const t0 = Date.now();
    const [got, set, del] = await Promise.all([c.get(k), c.set(k, 'w', { ttlSec: 30 }), c.del(k)]);
    const ms = Date.now() - t0;
    assert.equal(got, null);
    assert.equal(set, false);
    assert.equal(del, 0);
    assert.ok(ms < 200 + 600, `settled in ${ms} ms`);
    console.log(`# Redis SIGSTOPped, commandTimeoutMs 200: get/set/del settled in ${ms} ms`);
    let calls = 0;
    const t1 = Date.now();
    assert.equal(await c.wrap(`${k}:w`, async () => ++calls, { ttlSec: 5 }), 1, 'wrap answers the loader');
    assert.ok(Date.now() - t1 < 200 + 600);
    assert.ok(c.stats().cache.errors >= errors + 3, 'counted');
    server.resume();
  });
});

// The snippets of docs/cache.md run as written, on memory://.
describe('docs/cache.md snippets', () => {
  const fs = require('fs');
  const path = require('path');
  const text = fs.readFileSync(path.join(__dirname, '..', 'docs', 'cache.md'), 'utf8');
  const snippets = [...text.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]);
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;

  it('every snippet runs and its assertions hold', async () => {
    assert.ok(snippets.length >= 4, `${snippets.length} snippets`);
    for (const [i, code] of snippets.entries()) {
      const cache = createCache({ url: `memory://docs${uid()}` });
      const db = {
        calls: 0,
        onLoad: () => {},
        dashboardStats: async () => {
          db.calls++;
          return { users: 3 };
        },
        slowPrice: async () => {
          db.onLoad();
          await sleep(50);
          return 100;
        },
        flags: async () => ({ beta: true }),
      };
      try {
        await new AsyncFunction('cache', 'db', 'assert', code)(cache, db, assert);
      } catch (err) {
        err.message = `snippet ${i + 1}: ${err.message}`;
        throw err;
      } finally {
        await cache.shutdown();
      }
    }
  });
});

describe('general cache tracing', () => {
  it("publishes service 'cache' with the key's first segment as keyFamily, never the rest", async () => {
    const dc = require('diagnostics_channel');
    const seen = [];
    const start = (ctx) => seen.push({ ...ctx });
    dc.channel('tracing:bisman-cache:operation:start').subscribe(start);
    const c = createCache({ url: `memory://trace${uid()}` });
    try {
      await c.set('user:42:profile', 1, { ttlSec: 5 });
      await c.get('user:42:profile');
      await c.wrap('9f8e7d:secret', async () => 1, { ttlSec: 5 });
      await c.del(['report:1', 'x']);
    } finally {
      dc.channel('tracing:bisman-cache:operation:start').unsubscribe(start);
      await c.shutdown();
    }
    const mine = seen.filter((x) => x.service === 'cache').map((x) => [x.operation, x.keyFamily]);
    assert.deepEqual(mine, [
      ['set', 'user'],
      ['get', 'user'],
      ['wrap', 'cache'],
      ['del', 'report'],
    ]);
  });
});
