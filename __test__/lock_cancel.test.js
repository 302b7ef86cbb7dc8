'use strict';
// distributedLock cancellation and handles, on a real redis-server and on memory://: the
// `signal` option of acquire/withLock/mutex (before, while waiting, while an attempt is in
// flight), and lock() handles (lifecycle, ELOCKED, disposal, watchdog, lost lease).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const crypto = require('crypto');
const vm = require('vm');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawnSync } = require('child_process');
const { createCache } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { startRedis, sleep } = require('./helpers/redis');
const { isBackendFailure } = require('../lib/errors');

const uid = () => crypto.randomBytes(8).toString('hex');

// Counts the attempts a DistributedLock sends (each is one acquire script on the back end).
function countAttempts(lock) {
  const counter = { n: 0 };
  const attempt = lock.attempt;
  lock.attempt = function (...args) {
    counter.n++;
    return attempt.apply(this, args);
  };
  counter.restore = () => delete lock.attempt;
  return counter;
}

// Asserts that `promise` rejects with exactly `reason` (the same object), within `withinMs`
// of `since` (a performance.now() reading).
async function rejectsWithReason(promise, reason, since, withinMs) {
  let caught = null;
  try {
    await promise;
  } catch (err) {
    caught = err;
  }
  const took = performance.now() - since;
  assert.equal(caught, reason, `rejected with ${caught && caught.message}`);
  assert.ok(took < withinMs, `rejected after ${took.toFixed(0)} ms`);
  return took;
}

// The lock's status once it is free, or after 1 s (bounded polling).
async function freed(lock, resource, id) {
  let status;
  for (let i = 0; i < 100; i++) {
    status = await lock.isLocked(resource, id);
    if (!status.locked) break;
    await sleep(10);
  }
  return status;
}

// `await using` needs a parser that knows it (Node 24's V8): compiled with vm when this Node
// parses it; false on Node 20 and 22.
function parsesAwaitUsing() {
  try {
    new vm.Script('(async () => { await using x = null; })');
    return true;
  } catch (err) {
    if (err instanceof SyntaxError) return false;
    throw err;
  }
}

// `await using` as TypeScript compiles it for an ES2022 target (Node 20 cannot parse the
// statement): tsc's own __addDisposableResource/__disposeResources helpers, which look the
// method up as Symbol.asyncDispose. Compiled once, on first use.
let compiled = null;
function awaitUsingModule() {
  if (compiled) return compiled;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-await-using-'));
  try {
    fs.writeFileSync(
      path.join(dir, 'using.ts'),
      [
        'export async function holdThenThrow(take: () => Promise<any>, seen: unknown[], boom: Error): Promise<void> {',
        '  await using l = await take();',
        '  seen.push(l.owner);',
        '  throw boom;',
        '}',
        'export async function holdThenReturn(take: () => Promise<any>, seen: unknown[]): Promise<string> {',
        '  await using l = await take();',
        '  seen.push(l.owner);',
        '  return l.owner;',
        '}',
        '',
      ].join('\n'),
    );
    const tsc = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
    const r = spawnSync(process.execPath, [tsc, '--target', 'es2022', '--module', 'commonjs', '--lib', 'esnext', '--outDir', dir, path.join(dir, 'using.ts')], { encoding: 'utf8', timeout: 120000 });
    assert.equal(r.status, 0, `tsc failed: ${r.stdout}${r.stderr}`);
    const js = fs.readFileSync(path.join(dir, 'using.js'), 'utf8');
    assert.match(js, /__addDisposableResource/, 'tsc lowered `await using`');
    compiled = require(path.join(dir, 'using.js'));
    return compiled;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

for (const [name, make] of BACKENDS) {
  describe(`distributedLock signal and lock() handles on ${name}`, () => {
    let backend;
    let cache;
    let other; // a second app node on the same back end
    let lock;

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

    // An already-aborted signal rejects with its reason (the default AbortError DOMException)
    // before any attempt reaches the back end, on acquire, withLock, mutex, lock() and the helpers.
    it('an already-aborted signal rejects with signal.reason before any Redis call', async () => {
      const ctrl = new AbortController();
      ctrl.abort();
      assert.equal(ctrl.signal.reason.name, 'AbortError');
      const attempts = countAttempts(lock);
      let fnCalls = 0;
      const fn = () => fnCalls++;
      try {
        const id = uid();
        for (const p of [
          lock.acquire('payment', id, { signal: ctrl.signal }),
          lock.acquirePaymentLock(id, { signal: ctrl.signal }),
          lock.acquireTaskLock(id, { signal: ctrl.signal, retries: 3 }),
          lock.withLock('payment', id, fn, { signal: ctrl.signal }),
          lock.mutex(id, fn, { signal: ctrl.signal }),
          lock.lock('payment', id, { signal: ctrl.signal }),
        ]) {
          await rejectsWithReason(p, ctrl.signal.reason, performance.now(), 1000);
        }
        const custom = new AbortController();
        const reason = new Error('shutting down');
        custom.abort(reason);
        await rejectsWithReason(lock.acquire('payment', id, { signal: custom.signal }), reason, performance.now(), 1000);
        assert.equal(attempts.n, 0, 'no attempt was sent');
        assert.equal(fnCalls, 0);
        assert.deepEqual(await lock.isLocked('payment', id), { locked: false });
      } finally {
        attempts.restore();
      }
      await assert.rejects(lock.acquire('payment', uid(), { signal: 'no' }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
      await assert.rejects(lock.acquire('payment', uid(), { signal: null }), { name: 'TypeError', code: 'ERR_INVALID_ARG' });
    });

    // Waiting on a lock another node holds: abort() ends the wait at once (the retry timer is
    // cleared), nothing is left held, and the holder keeps its lock.
    it('aborting while waiting on a busy lock rejects at once and leaves nothing held', async () => {
      const id = uid();
      const held = await other.distributedLock.acquire('task', id, { ttlSec: 10 });
      assert.equal(held.acquired, true);
      const attempts = countAttempts(lock);
      try {
        for (const call of [
          (signal) => lock.acquire('task', id, { waitMs: 5000, retryDelayMs: 40, signal }),
          (signal) => lock.withLock('task', id, () => assert.fail('fn ran without the lock'), { waitMs: 5000, retryDelayMs: 40, signal }),
          (signal) => lock.lock('task', id, { waitMs: 5000, retryDelayMs: 40, signal }),
        ]) {
          const ctrl = new AbortController();
          const p = call(ctrl.signal);
          await sleep(150);
          const t = performance.now();
          ctrl.abort();
          const took = await rejectsWithReason(p, ctrl.signal.reason, t, 100);
          console.log(`# ${name}: wait aborted, rejected ${took.toFixed(1)} ms after abort()`);
        }
        assert.ok(attempts.n >= 3, `it was retrying (${attempts.n} attempts)`);
        const n = attempts.n;
        await sleep(150);
        assert.equal(attempts.n, n, 'no attempt after the abort');
      } finally {
        attempts.restore();
      }
      // mutex waits by default; its name is its id under 'mutex'
      const m = await other.distributedLock.acquire('mutex', id, { ttlSec: 10 });
      const ctrl = new AbortController();
      const p = lock.mutex(id, () => assert.fail('fn ran'), { signal: ctrl.signal });
      setTimeout(() => ctrl.abort(new Error('request closed')), 100);
      await assert.rejects(p, { message: 'request closed' });
      const status = await lock.isLocked('task', id);
      assert.equal(status.owner, held.owner, 'the holder keeps its lock');
      assert.ok(await other.distributedLock.release('task', id, held.owner));
      assert.ok(await other.distributedLock.release('mutex', id, m.owner));
      assert.deepEqual(await lock.isLocked('task', id), { locked: false });
    });

    // The abort arrives after the attempt was sent and before its answer: the call rejects at
    // once, and the grant that then arrives is released (the lock is free, the grant counted).
    it('aborting while an attempt is in flight rejects, and the late grant is released at once', async () => {
      for (const call of [
        (id, signal) => lock.acquire('approval', id, { signal }),
        (id, signal) => lock.withLock('approval', id, () => assert.fail('fn ran'), { signal }),
        (id, signal) => lock.lock('approval', id, { signal }),
      ]) {
        const id = uid();
        const ctrl = new AbortController();
        const hits = cache.stats().lock.hits;
        const p = call(id, ctrl.signal); // the attempt is submitted synchronously
        ctrl.abort();
        await rejectsWithReason(p, ctrl.signal.reason, performance.now(), 1000);
        for (let i = 0; i < 100 && cache.stats().lock.hits === hits; i++) await sleep(10);
        assert.equal(cache.stats().lock.hits, hits + 1, 'the attempt was granted after the abort');
        assert.deepEqual(await freed(lock, 'approval', id), { locked: false }, 'the late grant was released');
      }
    });

    // withLock: aborting while fn runs aborts fn's signal with the caller's reason and rejects
    // at once; the lock is released when fn settles.
    it('withLock: aborting while fn runs aborts fn\'s signal, rejects at once, releases after fn', async () => {
      const id = uid();
      const ctrl = new AbortController();
      let fnSignal;
      let finishFn;
      const fnDone = new Promise((resolve) => (finishFn = resolve));
      const p = lock.withLock('payment', id, async ({ signal }) => {
        fnSignal = signal;
        await fnDone;
        return 'late';
      }, { signal: ctrl.signal, ttlSec: 5 });
      for (let i = 0; i < 100 && fnSignal === undefined; i++) await sleep(5);
      assert.ok(fnSignal, 'fn started');
      assert.equal((await lock.isLocked('payment', id)).locked, true);
      const reason = new Error('client went away');
      const t = performance.now();
      ctrl.abort(reason);
      await rejectsWithReason(p, reason, t, 100);
      assert.equal(fnSignal.aborted, true);
      assert.equal(fnSignal.reason, reason);
      assert.equal((await lock.isLocked('payment', id)).locked, true, 'held while fn still runs');
      finishFn();
      assert.deepEqual(await freed(lock, 'payment', id), { locked: false }, 'released once fn settled');
      assert.equal(cache.stats().lock.lost, 0, 'a cancellation is not a lost lock');
    });

    // lock(): the handle's fields, the lock held under its owner, release() true once and
    // false after (idempotent), and ELOCKED (heldBy, ttl) for a second taker.
    it('lock() returns a handle; release() is idempotent; a busy lock rejects with ELOCKED', async () => {
      const id = uid();
      const h = await lock.lock('payment', id, { ttlSec: 5 });
      assert.equal(h.resource, 'payment');
      assert.equal(h.id, id);
      assert.match(h.owner, /^node1:\d+:[0-9a-f]{32}$/);
      assert.ok(Number.isSafeInteger(h.fence) && h.fence > 0);
      assert.equal(h.ttl, 5);
      assert.ok(h.signal instanceof AbortSignal);
      assert.equal(h.signal.aborted, false);
      assert.equal(typeof h[Symbol.asyncDispose], 'function');
      assert.equal((await lock.isLocked('payment', id)).owner, h.owner);
      await assert.rejects(other.distributedLock.lock('payment', id), (err) => {
        assert.equal(err.code, 'ELOCKED');
        assert.equal(err.heldBy, h.owner);
        assert.ok(err.ttl >= 4 && err.ttl <= 5, String(err.ttl));
        return true;
      });
      const [a, b] = await Promise.all([h.release(), h.release()]);
      assert.deepEqual([a, b], [true, false], 'one release freed it');
      assert.equal(await h.release(), false);
      assert.deepEqual(await lock.isLocked('payment', id), { locked: false });
      const again = await other.distributedLock.lock('payment', id);
      assert.ok(again.fence > h.fence, 'the next grant has a larger fence');
      assert.equal(await again.release(), true);
    });

    // Symbol.asyncDispose releases (the protocol `await using` runs); with a parser that knows
    // `await using` (Node 24) the statement itself is run through vm, else the desugared form
    // is (what TypeScript emits for older targets: the dispose method in a finally).
    it('disposal releases the lock: Symbol.asyncDispose and `await using`', async () => {
      assert.equal(typeof Symbol.asyncDispose, 'symbol');
      if (Number(process.versions.node.split('.')[0]) < 24) {
        assert.equal(Symbol.asyncDispose, Symbol.for('nodejs.asyncDispose'));
      }
      const id = uid();
      const h = await lock.lock('task', id);
      assert.equal(await h[Symbol.asyncDispose](), undefined);
      assert.deepEqual(await lock.isLocked('task', id), { locked: false });

      const source = parsesAwaitUsing()
        ? `(async () => {
             { await using l = await lock.lock('task', id); seen.push((await lock.isLocked('task', id)).owner === l.owner); throw boom; }
           })()`
        : `(async () => {
             const l = await lock.lock('task', id);
             try { seen.push((await lock.isLocked('task', id)).owner === l.owner); throw boom; }
             finally { await l[Symbol.asyncDispose](); }
           })()`;
      const seen = [];
      const boom = new Error('work failed');
      const run = new vm.Script(source).runInNewContext({ lock, id, seen, boom, Symbol });
      await assert.rejects(run, (err) => err === boom);
      assert.deepEqual(seen, [true], 'held inside the block');
      assert.deepEqual(await lock.isLocked('task', id), { locked: false }, 'released when the block threw');
      console.log(`# ${name}: Node ${process.versions.node} ${parsesAwaitUsing() ? 'parses `await using`' : 'does not parse `await using`; desugared form run'}`);
    });

    // `await using l = await distributedLock.lock(…)` compiled by tsc: the lock is held inside
    // the block and released when the block returns and when it throws.
    it('`await using` (TypeScript\'s ES2022 emit) releases at the end of the block', async () => {
      const { holdThenThrow, holdThenReturn } = awaitUsingModule();
      const id = uid();
      const seen = [];
      const take = async () => {
        const l = await lock.lock('payment', id);
        seen.push((await lock.isLocked('payment', id)).owner === l.owner);
        return l;
      };
      const owner = await holdThenReturn(take, seen);
      assert.deepEqual(seen, [true, owner]);
      assert.deepEqual(await lock.isLocked('payment', id), { locked: false }, 'released on return');
      const boom = new Error('work failed');
      await assert.rejects(holdThenThrow(take, seen, boom), (err) => err === boom);
      assert.equal(seen.length, 4);
      assert.deepEqual(await lock.isLocked('payment', id), { locked: false }, 'released on throw');
    });

    // The watchdog extends a held handle past its TTL (0.6 s lock held for 1.5 s), and stops
    // on release (no timer left, the lock free).
    it('a lock() handle is kept alive by the watchdog past its TTL', async () => {
      const id = uid();
      const h = await lock.lock('approval', id, { ttlSec: 0.6 });
      await sleep(1500);
      assert.equal(h.signal.aborted, false);
      const status = await lock.isLocked('approval', id);
      assert.equal(status.owner, h.owner, 'still held after 2.5 TTLs');
      assert.ok(status.ttlMs > 0 && status.ttlMs <= 600, String(status.ttlMs));
      assert.equal(await h.release(), true);
      await sleep(400);
      assert.deepEqual(await lock.isLocked('approval', id), { locked: false }, 'no extension after release');
    });

    // The lock is removed behind the handle's back: its signal aborts with ELOCKLOST within
    // one extension period (ttl/3), and release() then answers false.
    it('a lost lease aborts the handle\'s signal (ELOCKLOST)', async () => {
      const id = uid();
      const h = await lock.lock('payment', id, { ttlSec: 0.9 });
      const lost = cache.stats().lock.lost;
      const t = performance.now();
      if (backend.server) {
        const c = backend.server.client();
        await c.del(`lock:payment:${id}`);
        c.disconnect();
      } else {
        assert.equal(await other.distributedLock.release('payment', id, h.owner), true);
      }
      await new Promise((resolve) => h.signal.addEventListener('abort', resolve, { once: true }));
      const took = performance.now() - t;
      assert.equal(h.signal.reason.code, 'ELOCKLOST');
      assert.ok(took < 600, `noticed after ${took.toFixed(0)} ms`);
      assert.equal(cache.stats().lock.lost, lost + 1);
      assert.equal(await h.release(), false, 'nothing left to free');
      console.log(`# ${name}: lost lease noticed ${took.toFixed(0)} ms after the delete (ttl 900 ms)`);
    });
  });
}

describe('distributedLock.lock() when Redis fails', () => {
  // A back end that does not answer: lock() rejects with the back end's code (never a grant,
  // never ELOCKED), acquire() with a signal still answers { acquired: false, error }.
  it('rejects with the back end\'s code', async () => {
    const server = await startRedis();
    const cache = createCache({ url: server.url, commandTimeoutMs: 300, connectTimeoutMs: 300 });
    try {
      await server.stop();
      await assert.rejects(cache.distributedLock.lock('payment', uid()), (err) => {
        assert.ok(isBackendFailure(err), `${err.code}: ${err.message}`);
        assert.equal(err.heldBy, undefined);
        return true;
      });
      const r = await cache.distributedLock.acquire('payment', uid(), { signal: new AbortController().signal });
      assert.equal(r.acquired, false);
      assert.ok(isBackendFailure(r), r.code);
    } finally {
      await cache.shutdown();
      await server.stop();
    }
  });
});
