'use strict';
// distributedLock against a real redis-server and against memory://: every behaviour of API.md
// and issue 5. The multi-process tests run against Redis only (memory:// is per process).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { execFile } = require('child_process');
const { createCache } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { startRedis, sleep } = require('./helpers/redis');

const uid = () => crypto.randomBytes(8).toString('hex');
const OWNER = /^([^:\s]+):(\d+):([0-9a-f]{32})$/;
const FENCE_TTL_MS = 7 * 24 * 3600 * 1000;
const WORKER = path.join(__dirname, 'workers', 'lock-worker.js');
const scriptSha = (name) =>
  crypto.createHash('sha1').update(fs.readFileSync(path.join(__dirname, '..', 'src', 'store', 'scripts', name))).digest('hex');

async function rejectsWith(promise, Class, code) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof Class, `expected ${Class.name}, got ${err && err.constructor.name}: ${err && err.message}`);
    assert.equal(err.code, code);
    return true;
  });
}

// Records the watchdog's extensions and the releases of one DistributedLock, in call order.
function spy(lock) {
  const events = [];
  const renew = lock.renew;
  const release = lock.release;
  lock.renew = function (...args) {
    events.push({ op: 'renew', id: args[1], at: Date.now() });
    return renew.apply(this, args);
  };
  lock.release = function (...args) {
    events.push({ op: 'release', id: args[1], at: Date.now() });
    return release.apply(this, args);
  };
  return {
    events,
    restore: () => {
      delete lock.renew;
      delete lock.release;
    },
  };
}

// Counts unhandled rejections while `fn` runs (and a little after).
async function noUnhandledRejections(fn) {
  const seen = [];
  const onUnhandled = (reason) => seen.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    const r = await fn();
    await sleep(50);
    return r;
  } finally {
    process.off('unhandledRejection', onUnhandled);
    assert.deepEqual(seen, [], 'no unhandled rejection');
  }
}

function runWorker(args, timeout = 120_000) {
  return new Promise((resolve, reject) => {
    execFile(process.execPath, [WORKER, ...args], { timeout }, (err, stdout, stderr) => {
      if (err) reject(new Error(`worker ${args[0]} failed: ${stderr || err.message}`));
      else resolve(JSON.parse(stdout));
    });
  });
}

const strictlyIncreasing = (xs) => xs.every((x, i) => i === 0 || x > xs[i - 1]);

for (const [name, make] of BACKENDS) {
  describe(`distributedLock on ${name}`, () => {
    let backend;
    let cache;
    let other; // a second app node on the same back end
    let lock;

    // Deletes a lock key behind its holder's back.
    const steal = async (resource, id, owner) => {
      if (backend.server) {
        const c = backend.server.client();
        await c.del(`lock:${resource}:${id}`);
        c.disconnect();
      } else {
        assert.equal(await other.distributedLock.release(resource, id, owner), true);
      }
    };

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url, nodeId: 'node1' });
      other = createCache({ url: backend.url, nodeId: 'node2' });
      lock = cache.distributedLock;
    });
    after(async () => {
      await cache.shutdown();
      await other.shutdown();
      await backend.close();
    });

    it('acquire grants lock:{resource}:{id} to nodeId:pid:<128 random bits> with a fence and the TTL', async () => {
      const id = uid();
      const l = await lock.acquire('payment', id);
      assert.equal(l.acquired, true);
      const m = OWNER.exec(l.owner);
      assert.ok(m, l.owner);
      assert.equal(m[1], 'node1');
      assert.equal(Number(m[2]), process.pid);
      assert.equal(typeof l.fence, 'number');
      assert.ok(Number.isSafeInteger(l.fence) && l.fence > 0, String(l.fence));
      assert.equal(l.ttl, 30);
      const pttl = await backend.pttl(`lock:payment:${id}`);
      assert.ok(pttl > 29_000 && pttl <= 30_000, `pttl ${pttl}`);
      const second = await lock.acquire('payment', uid());
      assert.notEqual(second.owner, l.owner, 'every grant gets its own owner token');
      assert.ok(await lock.release('payment', id, l.owner));
    });

    it('the fence counter shares the lock key\'s hash slot and expires a week after the last grant', async () => {
      const id = uid();
      const l = await lock.acquire('task', id, { ttlSec: 5 });
      const keys = await backend.keys();
      assert.ok(keys.includes(`lock:task:${id}`));
      assert.ok(keys.includes(`lock-fence:{lock:task:${id}}`), keys.filter((k) => k.includes(id)).join());
      const fencePttl = await backend.pttl(`lock-fence:{lock:task:${id}}`);
      assert.ok(fencePttl > FENCE_TTL_MS - 60_000 && fencePttl <= FENCE_TTL_MS, `fence pttl ${fencePttl}`);
      assert.ok(await lock.release('task', id, l.owner));
    });

    it('a busy lock answers heldBy and the holder\'s TTL, and changes nothing', async () => {
      const id = uid();
      const held = await lock.acquire('approval', id, { ttlSec: 20 });
      const { hits, misses } = other.stats().lock;
      const busy = await other.distributedLock.acquire('approval', id);
      assert.deepEqual([other.stats().lock.hits, other.stats().lock.misses], [hits, misses + 1], 'stats count a busy answer as a miss');
      assert.equal(busy.acquired, false);
      assert.equal(busy.heldBy, held.owner);
      assert.equal(busy.ttl, 20);
      assert.equal(busy.owner, undefined);
      assert.equal(busy.fence, undefined);
      const status = await lock.isLocked('approval', id);
      assert.equal(status.owner, held.owner);
      assert.ok(status.ttlMs > 19_000 && status.ttlMs <= 20_000);
      assert.ok(await lock.release('approval', id, held.owner));
    });

    it('retries wait (with jitter) for a lock that frees up, and give up after the last retry', async () => {
      const id = uid();
      await lock.acquire('task', id, { ttlSec: 0.3 });
      const started = Date.now();
      const won = await other.distributedLock.acquire('task', id, { retries: 40, retryDelayMs: 50 });
      assert.equal(won.acquired, true);
      assert.ok(Date.now() - started >= 200, 'it had to wait for the expiry');
      const t0 = Date.now();
      const lost = await lock.acquire('task', id, { retries: 3, retryDelayMs: 20 });
      assert.equal(lost.acquired, false);
      assert.equal(lost.heldBy, won.owner);
      const took = Date.now() - t0;
      assert.ok(took >= 30 && took < 2000, `3 jittered retries of 20 ms took ${took} ms`);
      assert.ok(await other.distributedLock.release('task', id, won.owner));
    });

    it('release is compare-and-delete: a wrong owner gets false and the lock stays', async () => {
      const id = uid();
      const l = await lock.acquire('payment', id);
      const almost = l.owner.slice(0, -1) + (l.owner.endsWith('0') ? '1' : '0');
      assert.equal(await lock.release('payment', id, almost), false, 'one hex digit off');
      assert.equal(await other.distributedLock.release('payment', id, 'node2:1:abc'), false);
      assert.equal((await lock.isLocked('payment', id)).owner, l.owner);
      assert.equal(await lock.release('payment', id, l.owner), true);
      assert.ok(!(await backend.keys()).includes(`lock:payment:${id}`));
      assert.equal(await lock.release('payment', id, l.owner), false, 'a second release finds nothing');
    });

    it('extend is compare-and-expire: the owner gets the new TTL, anyone else false', async () => {
      const id = uid();
      const l = await lock.acquire('payment', id, { ttlSec: 5 });
      assert.equal(await lock.extend('payment', id, l.owner, 60), true);
      const pttl = await backend.pttl(`lock:payment:${id}`);
      assert.ok(pttl > 59_000 && pttl <= 60_000, `pttl ${pttl}`);
      assert.equal(await lock.extend('payment', id, 'node2:1:abc', 120), false);
      assert.ok((await backend.pttl(`lock:payment:${id}`)) <= 60_000);
      assert.equal(await lock.extend('payment', id, l.owner), true, 'ttlSec defaults to 30');
      assert.ok((await backend.pttl(`lock:payment:${id}`)) <= 30_000);
      assert.ok(await lock.release('payment', id, l.owner));
      assert.equal(await lock.extend('payment', id, l.owner, 60), false, 'a released lock is not revived');
      assert.ok(!(await backend.keys()).includes(`lock:payment:${id}`));
    });

    it('a holder whose lock expired and was taken by another can neither release nor extend it', async () => {
      const id = uid();
      const a = await lock.acquire('payment', id, { ttlSec: 0.2 });
      assert.equal(a.acquired, true);
      await sleep(350);
      const b = await other.distributedLock.acquire('payment', id, { ttlSec: 10 });
      assert.equal(b.acquired, true);
      assert.ok(b.fence > a.fence);
      assert.equal(await lock.release('payment', id, a.owner), false);
      assert.equal(await lock.extend('payment', id, a.owner, 60), false);
      const status = await lock.isLocked('payment', id);
      assert.equal(status.owner, b.owner);
      assert.ok(status.ttlMs <= 10_000);
      assert.ok(await other.distributedLock.release('payment', id, b.owner));
    });

    it('isLocked → { locked: false } or { locked, owner, ttl } in whole seconds', async () => {
      const id = uid();
      assert.deepEqual(await lock.isLocked('task', id), { locked: false });
      const l = await lock.acquire('task', id, { ttlSec: 25 });
      const s = await lock.isLocked('task', id);
      assert.equal(s.locked, true);
      assert.equal(s.owner, l.owner);
      assert.equal(s.ttl, 25);
      assert.ok(await lock.release('task', id, l.owner));
      assert.deepEqual(await lock.isLocked('task', id), { locked: false });
    });

    it('acquireTaskLock, acquireApprovalLock and acquirePaymentLock lock task:, approval:, payment:', async () => {
      const id = uid();
      const locks = {
        task: await lock.acquireTaskLock(id),
        approval: await lock.acquireApprovalLock(id),
        payment: await lock.acquirePaymentLock(id, { ttlSec: 10 }),
      };
      for (const [resource, l] of Object.entries(locks)) {
        assert.equal(l.acquired, true, resource);
        assert.equal((await lock.isLocked(resource, id)).owner, l.owner);
        assert.ok((await backend.keys()).includes(`lock:${resource}:${id}`));
      }
      assert.equal((await other.distributedLock.acquirePaymentLock(id)).acquired, false);
      assert.ok((await backend.pttl(`lock:payment:${id}`)) <= 10_000);
      for (const [resource, l] of Object.entries(locks)) assert.ok(await lock.release(resource, id, l.owner));
    });

    it('fences strictly increase across 1,000 grants from two app nodes', async () => {
      const id = uid();
      const fences = [];
      for (let i = 0; i < 1000; i++) {
        const node = i % 2 === 0 ? lock : other.distributedLock;
        const l = await node.acquire('fenced', id, { ttlSec: 5 });
        assert.equal(l.acquired, true);
        fences.push(l.fence);
        assert.ok(await node.release('fenced', id, l.owner));
      }
      assert.ok(strictlyIncreasing(fences));
      assert.equal(new Set(fences).size, 1000);
    });

    it('withLock runs fn({ signal, owner, fence }) under the lock and releases → { result, owner, fence }', async () => {
      const id = uid();
      let seen;
      const out = await lock.withLock('approval', id, async (arg) => {
        seen = arg;
        assert.equal((await lock.isLocked('approval', id)).owner, arg.owner);
        return { approved: id };
      });
      assert.deepEqual(out.result, { approved: id });
      assert.equal(out.owner, seen.owner);
      assert.equal(out.fence, seen.fence);
      assert.equal(out.lost, false);
      assert.ok(OWNER.test(out.owner));
      assert.ok(seen.signal instanceof AbortSignal);
      assert.equal(seen.signal.aborted, false);
      assert.deepEqual(await lock.isLocked('approval', id), { locked: false });
      assert.equal((await lock.withLock('approval', id, () => 7)).result, 7, 'a sync fn works too');
    });

    it('the watchdog keeps a 3 × TTL job alive, stops extending before it releases, and sends nothing after', async () => {
      const id = uid();
      const key = `lock:job:${id}`;
      const s = spy(lock);
      let monitor = null;
      const sent = [];
      if (backend.server) {
        monitor = await backend.server.client().monitor();
        monitor.on('monitor', (time, args) => {
          if (args.includes(key)) sent.push(args);
        });
      }
      try {
        const pttls = [];
        const ttlSec = 1.2; // extended every 400 ms
        const out = await lock.withLock('job', id, async () => {
          const end = Date.now() + 3 * ttlSec * 1000;
          while (Date.now() < end) {
            pttls.push(await backend.pttl(key));
            await sleep(20);
          }
          return 'done';
        }, { ttlSec });
        assert.equal(out.result, 'done');
        assert.equal(out.lost, false);
        assert.ok(pttls.length > 30, `${pttls.length} samples`);
        assert.ok(pttls.every((p) => p > 0), `the key's TTL stayed above 0: min ${Math.min(...pttls)}`);
        assert.ok(!(await backend.keys()).includes(key), 'the key is gone after release');
        await sleep(1300); // more than 3 extension periods
        const mine = s.events.filter((e) => e.id === id);
        const releaseAt = mine.findIndex((e) => e.op === 'release');
        assert.ok(releaseAt > 0, 'released');
        assert.ok(mine.slice(0, releaseAt).filter((e) => e.op === 'renew').length >= 5, 'extended while fn ran (9 periods)');
        assert.deepEqual(mine.slice(releaseAt).map((e) => e.op), ['release'], 'no extension after the release');
        if (monitor) {
          const [releaseSha, extendSha] = [scriptSha('lock_release.lua'), scriptSha('lock_extend.lua')];
          const ops = sent.map((a) => (a[1] === releaseSha ? 'release' : a[1] === extendSha ? 'extend' : a[0]));
          assert.ok(ops.filter((o) => o === 'extend').length >= 5, ops.join());
          assert.equal(ops.lastIndexOf('extend') < ops.indexOf('release'), true, `Redis saw: ${ops.join()}`);
        }
      } finally {
        s.restore();
        if (monitor) monitor.disconnect();
      }
    });

    it('deleting the key while withLock runs fires signal within one extension period, never an unhandled rejection', async () => {
      await noUnhandledRejections(async () => {
        const id = uid();
        const ttlSec = 1.5; // extended every 500 ms
        let stolenAt = 0;
        let abortedAt = 0;
        const out = await lock.withLock('job', id, async ({ signal, owner }) => {
          signal.addEventListener('abort', () => {
            abortedAt = Date.now();
          });
          await sleep(120);
          await steal('job', id, owner);
          stolenAt = Date.now();
          const end = Date.now() + 3000;
          while (!signal.aborted && Date.now() < end) await sleep(5);
          assert.equal(signal.reason.code, 'ELOCKLOST');
          assert.ok(signal.reason instanceof Error);
          return 'noticed';
        }, { ttlSec });
        assert.equal(out.result, 'noticed');
        assert.equal(out.lost, true);
        assert.ok(abortedAt > 0, 'signal fired');
        const lag = abortedAt - stolenAt;
        assert.ok(lag <= 500 + 250, `signal fired ${lag} ms after the key was deleted (period 500 ms)`);
      });
    });

    it('a lost lock is not extended again and a new holder keeps it', async () => {
      const id = uid();
      const s = spy(lock);
      try {
        let newHolder;
        const out = await lock.withLock('job', id, async ({ signal, owner }) => {
          await steal('job', id, owner);
          newHolder = await other.distributedLock.acquire('job', id, { ttlSec: 10 });
          assert.equal(newHolder.acquired, true);
          while (!signal.aborted) await sleep(5);
          await sleep(300); // three more periods
        }, { ttlSec: 0.3 });
        assert.equal(out.lost, true);
        assert.equal(s.events.filter((e) => e.op === 'renew' && e.id === id).length, 1, 'one extension found it lost');
        assert.equal((await lock.isLocked('job', id)).owner, newHolder.owner, 'the release did not free the new holder');
        assert.ok(await other.distributedLock.release('job', id, newHolder.owner));
      } finally {
        s.restore();
      }
    });

    it('withLock on a busy lock throws ELOCKED with heldBy and never calls fn', async () => {
      const id = uid();
      const held = await other.distributedLock.acquire('approval', id, { ttlSec: 10 });
      let called = false;
      await assert.rejects(
        lock.withLock('approval', id, () => {
          called = true;
        }),
        (err) => {
          assert.equal(err.code, 'ELOCKED');
          assert.equal(err.heldBy, held.owner);
          assert.ok(err.message.includes(held.owner));
          return true;
        },
      );
      const t0 = Date.now();
      await assert.rejects(lock.withLock('approval', id, () => {}, { retries: 2, retryDelayMs: 10 }), { code: 'ELOCKED' });
      assert.ok(Date.now() - t0 < 2000);
      assert.equal(called, false);
      assert.equal((await lock.isLocked('approval', id)).owner, held.owner, 'the holder keeps it');
      assert.ok(await other.distributedLock.release('approval', id, held.owner));
    });

    it('withLock rethrows what fn throws (sync or async) and still releases', async () => {
      const syncBoom = new Error('sync boom');
      const asyncBoom = new Error('async boom');
      for (const [fn, thrown] of [
        [() => {
          throw syncBoom;
        }, syncBoom],
        [async () => {
          await sleep(5);
          throw asyncBoom;
        }, asyncBoom],
      ]) {
        const id = uid();
        await assert.rejects(lock.withLock('payment', id, fn), (err) => err === thrown);
        assert.deepEqual(await lock.isLocked('payment', id), { locked: false });
        const next = await other.distributedLock.acquire('payment', id);
        assert.equal(next.acquired, true);
        assert.ok(await other.distributedLock.release('payment', id, next.owner));
      }
    });

    it('mutex runs concurrent callers one at a time and returns what fn returns', async () => {
      const name = `report-${uid()}`;
      let active = 0;
      let maxActive = 0;
      const order = [];
      const results = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          (i % 2 ? other : cache).distributedLock.mutex(name, async () => {
            active++;
            maxActive = Math.max(maxActive, active);
            order.push(i);
            await sleep(30);
            active--;
            return i * 10;
          }, { retryDelayMs: 10 }),
        ),
      );
      assert.deepEqual(results, [0, 10, 20, 30, 40]);
      assert.equal(maxActive, 1);
      assert.equal(order.length, 5);
      assert.deepEqual(await lock.isLocked('mutex', name), { locked: false });
    });

    it('mutex throws ELOCKED after waitMs when the holder keeps it', async () => {
      const name = `report-${uid()}`;
      const held = await other.distributedLock.acquire('mutex', name, { ttlSec: 10 });
      let called = false;
      const t0 = Date.now();
      await assert.rejects(
        lock.mutex(name, () => {
          called = true;
        }, { waitMs: 300 }),
        (err) => err.code === 'ELOCKED' && err.heldBy === held.owner,
      );
      const took = Date.now() - t0;
      assert.ok(took >= 280 && took < 2000, `gave up after ${took} ms`);
      assert.equal(called, false);
      assert.ok(await other.distributedLock.release('mutex', name, held.owner));
    });

    it('8 concurrent workers × 40 withLock read-yield-write increments lose no update', async () => {
      const id = uid();
      let counter = 0;
      let holders = 0;
      let maxHolders = 0;
      const worker = async (w) => {
        const node = w % 2 ? other.distributedLock : lock;
        for (let i = 0; i < 40; i++) {
          await node.withLock('counter', id, async () => {
            holders++;
            maxHolders = Math.max(maxHolders, holders);
            const v = counter;
            await new Promise((r) => setImmediate(r));
            counter = v + 1;
            holders--;
          }, { waitMs: 30_000, retryDelayMs: 1 });
        }
      };
      await Promise.all(Array.from({ length: 8 }, (_, w) => worker(w)));
      assert.equal(counter, 320);
      assert.equal(maxHolders, 1);
    });

    it('keyPrefix applies to the lock key and to its fence counter', async () => {
      const prefixed = createCache({ url: backend.url, keyPrefix: 'erp:test:' });
      try {
        const id = uid();
        const l = await prefixed.distributedLock.acquire('payment', id);
        assert.equal(l.acquired, true);
        const keys = (await backend.keys()).filter((k) => k.includes(id)).sort();
        assert.deepEqual(keys, [`erp:test:lock-fence:{erp:test:lock:payment:${id}}`, `erp:test:lock:payment:${id}`]);
        assert.equal((await lock.acquire('payment', id)).acquired, true, 'another prefix is another namespace');
        assert.equal(await prefixed.distributedLock.release('payment', id, l.owner), true);
      } finally {
        await prefixed.shutdown();
      }
    });

    it('bad input is refused with a typed error and writes nothing', async () => {
      const before = (await backend.keys()).sort();
      const l = lock;
      for (const bad of ['', '*', 'a*', 'a b', 'x\n', '[x]', 'a?', null, undefined, {}, 1.5, NaN]) {
        await rejectsWith(l.acquire(bad, 1), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(l.acquire('r', bad), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(l.release('r', bad, 'n:1:a'), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(l.extend(bad, 1, 'n:1:a', 5), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(l.isLocked('r', bad), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(l.withLock(bad, 1, () => {}), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(l.mutex(bad, () => {}), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(l.acquirePaymentLock(bad), TypeError, 'ERR_INVALID_ARG');
      }
      for (const owner of ['', 'a b', 42, null, undefined]) {
        await rejectsWith(l.release('r', 1, owner), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(l.extend('r', 1, owner, 5), TypeError, 'ERR_INVALID_ARG');
      }
      for (const ttlSec of [0, -1, NaN, Infinity, 86401]) {
        await rejectsWith(l.acquire('r', 1, { ttlSec }), RangeError, 'ERR_OUT_OF_RANGE');
        await rejectsWith(l.extend('r', 1, 'n:1:a', ttlSec), RangeError, 'ERR_OUT_OF_RANGE');
        await rejectsWith(l.withLock('r', 1, () => {}, { ttlSec }), RangeError, 'ERR_OUT_OF_RANGE');
      }
      await rejectsWith(l.acquire('r', 1, { ttlSec: '30' }), TypeError, 'ERR_INVALID_ARG');
      await rejectsWith(l.acquire('r', 1, 'fast'), TypeError, 'ERR_INVALID_ARG');
      for (const retries of [-1, 1.5, 1e9]) {
        await rejectsWith(l.acquire('r', 1, { retries }), RangeError, 'ERR_OUT_OF_RANGE');
      }
      await rejectsWith(l.acquire('r', 1, { retryDelayMs: -5 }), RangeError, 'ERR_OUT_OF_RANGE');
      await rejectsWith(l.mutex('m', () => {}, { waitMs: -1 }), RangeError, 'ERR_OUT_OF_RANGE');
      for (const fn of [null, undefined, 'fn', {}]) {
        await rejectsWith(l.withLock('r', 1, fn), TypeError, 'ERR_INVALID_ARG');
        await rejectsWith(l.mutex('m', fn), TypeError, 'ERR_INVALID_ARG');
      }
      await rejectsWith(l.acquire('r', 'x'.repeat(600)), RangeError, 'ERR_VALUE_TOO_LARGE');
      assert.deepEqual((await backend.keys()).sort(), before);
    });
  });
}

describe('distributedLock without a working Redis: no lock is ever granted', () => {
  it('disabled (no URL): acquire answers { acquired: false, error }, withLock and mutex never run fn', async () => {
    const cache = createCache({ url: '' });
    const lock = cache.distributedLock;
    const r = await lock.acquire('payment', 1);
    assert.equal(r.acquired, false);
    assert.equal(typeof r.error, 'string');
    assert.equal(r.code, 'ECACHEDISABLED');
    assert.equal(r.owner, undefined);
    let called = false;
    await assert.rejects(lock.withLock('payment', 1, () => (called = true)), { code: 'ECACHEDISABLED' });
    await assert.rejects(lock.mutex('m', () => (called = true)), { code: 'ECACHEDISABLED' });
    assert.equal(called, false);
    assert.equal((await lock.acquirePaymentLock(1, { retries: 5 })).acquired, false);
    assert.equal(await lock.release('payment', 1, 'n:1:a'), false);
    assert.equal(await lock.extend('payment', 1, 'n:1:a', 5), false);
    assert.equal((await lock.isLocked('payment', 1)).locked, false);
    assert.ok(cache.stats().lock.errors >= 5);
    await cache.shutdown();
  });

  it('Redis down: acquire answers { acquired: false, error } within the timeout and works again after a restart', async () => {
    const server = await startRedis();
    const cache = createCache({ url: server.url, commandTimeoutMs: 300, connectTimeoutMs: 300 });
    const lock = cache.distributedLock;
    try {
      const warm = await lock.acquire('task', 'warm');
      assert.equal(warm.acquired, true);
      await server.kill();
      for (let i = 0; i < 3; i++) {
        const t0 = Date.now();
        const r = await lock.acquire('task', `down${i}`);
        assert.equal(r.acquired, false);
        assert.equal(typeof r.error, 'string');
        assert.ok(Date.now() - t0 < 1500);
      }
      assert.equal(await lock.release('task', 'warm', warm.owner), false);
      assert.equal(await lock.extend('task', 'warm', warm.owner, 5), false);
      const status = await lock.isLocked('task', 'warm');
      assert.equal(status.locked, false);
      assert.equal(typeof status.error, 'string');
      let called = false;
      await assert.rejects(lock.withLock('task', 'down', () => (called = true)), (e) => e.code !== 'ELOCKED' && !!e.code);
      assert.equal(called, false);
      await server.start();
      let again = null;
      for (let i = 0; i < 50 && !(again && again.acquired); i++) {
        again = await lock.acquire('task', 'back');
        if (!again.acquired) await sleep(100);
      }
      assert.equal(again.acquired, true);
    } finally {
      await cache.shutdown();
      await server.stop();
    }
  });

  it('a timed-out acquire whose SET reached Redis leaves no phantom lock behind (paused Redis)', async () => {
    const server = await startRedis();
    const probe = server.client();
    const cache = createCache({ url: server.url, commandTimeoutMs: 250 });
    const lock = cache.distributedLock;
    try {
      // load the scripts first, so the paused acquire is one EVALSHA already on the wire
      const warm = await lock.acquire('payment', 'warm');
      assert.ok(await lock.release('payment', 'warm', warm.owner));
      await probe.ping();
      server.pause();
      const r = await lock.acquire('payment', 'phantom', { ttlSec: 30 });
      assert.equal(r.acquired, false);
      assert.equal(r.code, 'ETIMEDOUT');
      await sleep(100);
      server.resume();
      let exists = 1;
      for (let i = 0; i < 40 && exists; i++) {
        exists = await probe.exists('lock:payment:phantom');
        if (exists) await sleep(50);
      }
      // the acquire did run (its fence counter exists) but its lock was removed
      assert.equal(await probe.exists('lock-fence:{lock:payment:phantom}'), 1, 'the SET reached Redis');
      assert.equal(exists, 0, 'no phantom lock');
      const next = await lock.acquire('payment', 'phantom');
      assert.equal(next.acquired, true, 'the resource is free at once, not after 30 s');
    } finally {
      await cache.shutdown();
      await server.stop();
    }
  });

  it('Redis dying under withLock: signal fires once the TTL has run out unconfirmed', async () => {
    const server = await startRedis();
    const cache = createCache({ url: server.url, commandTimeoutMs: 200, connectTimeoutMs: 200 });
    try {
      await noUnhandledRejections(async () => {
        let killedAt = 0;
        let abortedAt = 0;
        const ttlMs = 900;
        const out = await cache.distributedLock.withLock('job', 'dying', async ({ signal }) => {
          signal.addEventListener('abort', () => {
            abortedAt = Date.now();
          });
          await sleep(50);
          await server.kill();
          killedAt = Date.now();
          const end = Date.now() + 5000;
          while (!signal.aborted && Date.now() < end) await sleep(10);
          return signal.reason.code;
        }, { ttlSec: ttlMs / 1000 });
        assert.equal(out.result, 'ELOCKLOST');
        assert.equal(out.lost, true);
        const after = abortedAt - killedAt;
        assert.ok(after >= ttlMs - 300 && after <= ttlMs + 600, `signal fired ${after} ms after Redis died`);
      });
    } finally {
      await cache.shutdown();
      await server.stop();
    }
  });
});

describe('withLock on a hung Redis (Hardening 4)', () => {
  // Hardening 4: the signal fired only after an extension had failed, i.e. commandTimeoutMs
  // after the lease had already ended (on 38acc57: ≈ 3,300 ms here for a 900 ms lease). It
  // fires when the lease ends as known locally (last confirmed grant + TTL − margin), even
  // when Redis never answers.
  it('Redis hung (SIGSTOP) under withLock: signal fires at the lease end, not commandTimeoutMs later', async () => {
    const server = await startRedis();
    const cache = createCache({ url: server.url, commandTimeoutMs: 3000, connectTimeoutMs: 500 });
    try {
      await noUnhandledRejections(async () => {
        const ttlMs = 900;
        let startedAt = 0;
        let abortedAt = 0;
        const out = await cache.distributedLock.withLock('job', 'hung', async ({ signal }) => {
          startedAt = performance.now();
          signal.addEventListener('abort', () => {
            abortedAt = performance.now();
          });
          server.pause();
          const end = Date.now() + 6000;
          while (!signal.aborted && Date.now() < end) await sleep(5);
          server.resume(); // so the release in the background answers
          return signal.aborted ? signal.reason.code : 'not aborted';
        }, { ttlSec: ttlMs / 1000 });
        const after = abortedAt - startedAt;
        console.log(`Hardening 4: withLock, lease 900 ms, Redis hung, commandTimeoutMs 3000: signal after ${after.toFixed(0)} ms`);
        assert.equal(out.result, 'ELOCKLOST');
        assert.equal(out.lost, true);
        assert.ok(after <= ttlMs, `signal fired ${after.toFixed(0)} ms into a ${ttlMs} ms lease`);
        assert.ok(after >= ttlMs - 300, `not too early: ${after.toFixed(0)} ms`);
      });
    } finally {
      server.resume();
      await cache.shutdown();
      await server.stop();
    }
  });
});

describe('distributedLock across processes (Redis)', () => {
  let server;
  let client;
  before(async () => {
    server = await startRedis();
    client = server.client();
  });
  after(async () => {
    await server.stop();
  });

  it('mutual exclusion: 8 processes × 1,250 withLock read-sleep-write increments end at exactly 10,000', { timeout: 180_000 }, async () => {
    await client.flushall();
    const t0 = Date.now();
    const outs = await Promise.all(Array.from({ length: 8 }, (_, i) => runWorker(['counter', server.url, '1250', String(i)], 170_000)));
    const took = Date.now() - t0;
    assert.equal(await client.get('counter'), '10000');
    for (const o of outs) {
      assert.equal(o.maxGauge, 1, 'the holder gauge never exceeded 1');
      assert.equal(o.lost, 0);
    }
    assert.equal(await client.get('holders'), '0');
    const fences = (await client.lrange('counter-fences', 0, -1)).map(Number);
    assert.equal(fences.length, 10_000);
    assert.ok(strictlyIncreasing(fences), 'fences grow in grant order');
    assert.deepEqual(await client.keys('lock:*'), [], 'every lock was released');
    console.log(`# 8 processes × 1,250 withLock increments: ${took} ms`);
  });

  it('fences strictly increase across 1,000 grants from 4 processes', { timeout: 120_000 }, async () => {
    await client.flushall();
    const outs = await Promise.all(Array.from({ length: 4 }, (_, i) => runWorker(['fence', server.url, '250', String(i)])));
    assert.deepEqual(outs.map((o) => o.grants), [250, 250, 250, 250]);
    const fences = (await client.lrange('fences', 0, -1)).map(Number);
    assert.equal(fences.length, 1000);
    assert.ok(strictlyIncreasing(fences));
  });

  it('a lost fence counter restarts above every fence handed out before', async () => {
    const cache = createCache({ url: server.url });
    try {
      const first = await cache.distributedLock.acquire('fenced', 'lost');
      assert.ok(await cache.distributedLock.release('fenced', 'lost', first.owner));
      await client.del('lock-fence:{lock:fenced:lost}');
      const second = await cache.distributedLock.acquire('fenced', 'lost');
      assert.ok(second.fence > first.fence, `${second.fence} > ${first.fence}`);
      assert.ok(await cache.distributedLock.release('fenced', 'lost', second.owner));
    } finally {
      await cache.shutdown();
    }
  });

  it('a process whose withLock finished exits by itself: no watchdog timer is left behind', async () => {
    const t0 = Date.now();
    const out = await runWorker(['exit', server.url, '30'], 8000); // a leaked timer would wait 10 s
    assert.deepEqual(out, { result: 'done' });
    assert.ok(Date.now() - t0 < 5000, `exited after ${Date.now() - t0} ms`);
    assert.deepEqual(await client.keys('lock:exit:*'), []);
  });
});
