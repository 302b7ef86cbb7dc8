'use strict';
// distributedLock.semaphore on a real redis-server and on memory://: at most N holders under
// many concurrent contenders on two app nodes, expiry of crashed holders, fences, owner
// checks, the keys it writes, bad input, and withPermit/permit() with the watchdog.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const { createCache } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { sleep } = require('./helpers/redis');

const uid = () => crypto.randomBytes(8).toString('hex');
const strictlyIncreasing = (xs) => xs.every((x, i) => i === 0 || x > xs[i - 1]);

for (const [name, make] of BACKENDS) {
  describe(`distributedLock.semaphore on ${name}`, () => {
    let backend;
    let cache;
    let other; // a second app node on the same back end

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url, nodeId: 'node1' });
      other = createCache({ url: backend.url, nodeId: 'node2' });
    });
    after(async () => {
      await cache.shutdown();
      await other.shutdown();
      await backend.close();
    });

    // 50 contenders (25 per node) for 3 permits, each holding for 20 ms and waiting up to 20 s:
    // never more than 3 run at once, all 50 run, and every fence is distinct.
    it('admits at most N holders among 50 concurrent contenders on two nodes', async () => {
      const semName = `reports-${uid()}`;
      const N = 3;
      const sems = [cache.distributedLock.semaphore(semName, N), other.distributedLock.semaphore(semName, N)];
      let running = 0;
      let peak = 0;
      const fences = [];
      const t = performance.now();
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) =>
          sems[i % 2].withPermit(
            async ({ fence, signal }) => {
              running++;
              peak = Math.max(peak, running);
              fences.push(fence);
              await sleep(20);
              assert.equal(signal.aborted, false);
              running--;
              return i;
            },
            { waitMs: 20_000, retryDelayMs: 10, ttlSec: 5 },
          ),
        ),
      );
      const took = performance.now() - t;
      assert.deepEqual(results.map((r) => r.result), Array.from({ length: 50 }, (_, i) => i));
      assert.ok(peak <= N, `peak ${peak} holders`);
      assert.equal(peak, N, 'the permits were all used');
      assert.equal(new Set(fences).size, 50, 'every grant has its own fence');
      assert.equal((await sems[0].status()).held, 0, 'every permit was returned');
      console.log(`# ${name}: 50 contenders, 3 permits, 20 ms each: peak ${peak}, all done in ${took.toFixed(0)} ms`);
    });

    // Holders that never release (a crashed process) free their permits when their TTL ends:
    // while they live the semaphore is full and says when the first frees; afterwards it grants.
    it('expired holders free their permits', async () => {
      const sem = cache.distributedLock.semaphore(`crash-${uid()}`, 2, { ttlSec: 0.4 });
      const a = await sem.acquire();
      const b = await other.distributedLock.semaphore(sem.name, 2).acquire({ ttlSec: 0.4 });
      assert.equal(a.acquired, true);
      assert.equal(b.acquired, true);
      assert.equal(b.held, 2);
      const full = await sem.acquire();
      assert.equal(full.acquired, false);
      assert.equal(full.held, 2);
      assert.ok(full.retryInMs >= 0 && full.retryInMs <= 400, String(full.retryInMs));
      assert.equal(full.error, undefined);
      await sleep(500);
      assert.deepEqual(await sem.status(), { held: 0, permits: 2, nextExpiryMs: -1 });
      const c = await sem.acquire();
      assert.equal(c.acquired, true, 'granted once the crashed holders expired');
      assert.equal(c.held, 1);
      assert.equal(await a.release(), false, 'an expired holder frees nothing');
      assert.equal(await c.release(), true);
    });

    // Fences grow with every grant of one semaphore, whoever gets it, and survive release.
    it('fence tokens strictly increase per semaphore', async () => {
      const semName = `fence-${uid()}`;
      const sems = [cache.distributedLock.semaphore(semName, 2), other.distributedLock.semaphore(semName, 2)];
      const fences = [];
      for (let i = 0; i < 12; i++) {
        const p = await sems[i % 2].acquire();
        assert.equal(p.acquired, true);
        fences.push(p.fence);
        if (i % 3 !== 0) assert.equal(await p.release(), true);
        else assert.equal(await sems[i % 2].release(p.owner), true);
      }
      assert.ok(strictlyIncreasing(fences), fences.join(' '));
      assert.ok(fences.every(Number.isSafeInteger));
    });

    // release() only frees the caller's own live permit: a made-up owner, another semaphore's
    // owner, and a second release all answer false, and the holder keeps its permit.
    it('a release by a non-holder is refused', async () => {
      const sem = cache.distributedLock.semaphore(`owner-${uid()}`, 1);
      const p = await sem.acquire({ ttlSec: 5 });
      assert.equal(p.acquired, true);
      const elsewhere = await cache.distributedLock.semaphore(`owner-${uid()}`, 1).acquire();
      assert.equal(await sem.release(`node9:1:${'ab'.repeat(16)}`), false);
      assert.equal(await sem.release(elsewhere.owner), false);
      assert.equal(await other.distributedLock.semaphore(sem.name, 1).extend(elsewhere.owner, 5), false);
      assert.equal((await sem.status()).held, 1, 'the holder keeps its permit');
      assert.equal((await sem.acquire()).acquired, false);
      assert.equal(await p.release(), true);
      assert.equal(await p.release(), false, 'the second release frees nothing');
      assert.equal(await elsewhere.release(), true);
    });

    // The holders set and the fence counter share the semaphore's hash tag, carry TTLs, and
    // leave no holders set behind when the last permit is returned.
    it('writes sem:{name} and sem:{name}:fence with TTLs', async () => {
      const semName = `keys-${uid()}`;
      const sem = cache.distributedLock.semaphore(semName, 2);
      const p = await sem.acquire({ ttlSec: 3 });
      const keys = (await backend.keys()).filter((k) => k.includes(semName)).sort();
      assert.deepEqual(keys, [`sem:{${semName}}`, `sem:{${semName}}:fence`]);
      const holdersTtl = await backend.pttl(`sem:{${semName}}`);
      assert.ok(holdersTtl > 2000 && holdersTtl <= 3000, String(holdersTtl));
      const fenceTtl = await backend.pttl(`sem:{${semName}}:fence`);
      assert.ok(fenceTtl > 6 * 24 * 3600 * 1000, String(fenceTtl));
      assert.equal(await p.release(), true);
      // the emptied holders set is gone (Redis drops it by itself); the fence counter stays
      assert.deepEqual((await backend.keys()).filter((k) => k.includes(semName)), [`sem:{${semName}}:fence`]);
    });

    // Bad input is refused with a TypeError/RangeError and a code, and nothing is written.
    it('refuses bad names, permit counts and options', async () => {
      const dl = cache.distributedLock;
      assert.throws(() => dl.semaphore('r', 0), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => dl.semaphore('r', 1.5), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      assert.throws(() => dl.semaphore('r', '3'), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      assert.throws(() => dl.semaphore({}, 3), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      assert.throws(() => dl.semaphore('r', 3, { ttlSec: -1 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      const tagged = uid();
      const big = uid();
      await assert.rejects(dl.semaphore(`bad{${tagged}}`, 2).acquire(), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      await assert.rejects(dl.semaphore('a b', 2).acquire(), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      await assert.rejects(dl.semaphore(`big-${big}`, 1e9).acquire(), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      await assert.rejects(dl.semaphore('r', 2).acquire({ retries: -1 }), { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
      await assert.rejects(dl.semaphore('r', 2).withPermit('no'), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      const keys = await backend.keys();
      assert.ok(!keys.some((k) => k.includes(tagged) || k.includes(big)), keys.join());
    });

    // withPermit: all permits taken → ELOCKED (with held/permits); the watchdog keeps a 0.6 s
    // permit through 1.5 s of work; a permit removed behind its holder aborts fn's signal.
    it('withPermit and permit(): ELOCKED when full, watchdog extends, a lost permit aborts', async () => {
      const sem = cache.distributedLock.semaphore(`wp-${uid()}`, 1, { ttlSec: 0.6 });
      const { result } = await sem.withPermit(async ({ signal }) => {
        await assert.rejects(other.distributedLock.semaphore(sem.name, 1).withPermit(() => assert.fail('ran')), (err) => {
          assert.equal(err.code, 'ELOCKED');
          assert.equal(err.held, 1);
          assert.equal(err.permits, 1);
          return true;
        });
        await sleep(1500);
        assert.equal(signal.aborted, false, 'extended past its TTL');
        return (await sem.status()).held;
      });
      assert.equal(result, 1);
      assert.equal((await sem.status()).held, 0, 'returned after fn');

      const h = await sem.permit();
      assert.equal(h.semaphore, sem.name);
      assert.equal(typeof h[Symbol.asyncDispose], 'function');
      if (backend.server) {
        const c = backend.server.client();
        await c.zrem(`sem:{${sem.name}}`, h.owner);
        c.disconnect();
      } else {
        assert.equal(await sem.release(h.owner), true);
      }
      await new Promise((resolve) => h.signal.addEventListener('abort', resolve, { once: true }));
      assert.equal(h.signal.reason.code, 'ELOCKLOST');
      assert.equal(await h.release(), false);
      const d = await sem.permit();
      await d[Symbol.asyncDispose]();
      assert.equal((await sem.status()).held, 0, 'disposal returned the permit');
    });

    // A signal cancels the wait for a permit; the waiting call leaves nothing held.
    it('a signal cancels waiting for a permit', async () => {
      const sem = cache.distributedLock.semaphore(`sig-${uid()}`, 1);
      const held = await sem.acquire({ ttlSec: 5 });
      const ctrl = new AbortController();
      const p = sem.withPermit(() => assert.fail('ran'), { waitMs: 5000, retryDelayMs: 20, signal: ctrl.signal });
      await sleep(100);
      ctrl.abort();
      await assert.rejects(p, (err) => err === ctrl.signal.reason);
      const q = sem.acquire({ signal: ctrl.signal });
      await assert.rejects(q, (err) => err === ctrl.signal.reason);
      assert.equal((await sem.status()).held, 1);
      assert.equal(await held.release(), true);
    });
  });
}
