'use strict';
// distributedLock: owner-checked, fenced locks on `lock:{resource}:{id}`. One native call per
// attempt (SET NX PX + fence in one script); the retries, the cancellation, the watchdog of
// withLock and lock(), and mutex live here. Without a working back end no lock is ever granted.

const { checkIdType, checkString, isBackendFailure } = require('../errors');
const C = require('./common');
const replies = require('../replies');
const { Lease, runHeld } = require('./lease');
const { Held } = require('./handle');
const { Semaphore } = require('./semaphore');

const MUTEX_WAIT_MS = 10_000;
const DEFAULTS = Object.freeze(C.lockOptions());

const fields = (resource, id) => ({ resource, id });

function lockLost(resource, id, why) {
  const e = new Error(`lock ${resource}:${id} was lost: ${why}`);
  e.code = 'ELOCKLOST';
  return Object.assign(e, fields(resource, id));
}

function notAcquired(resource, id, r) {
  const what = `lock ${resource}:${id}`;
  return C.notAcquired(what, r, (busy) => C.lockedError(what, busy, fields(resource, id)), fields(resource, id));
}

class DistributedLock {
  constructor(ctx) {
    this.ctx = ctx;
    this.stats = ctx.stats.lock;
    // metrics(): attempts that had to wait for another try, and locks found lost while held.
    this.stats.waits = 0;
    this.stats.lost = 0;
  }

  // One attempt → { acquired: true, owner, fence, ttl } | { acquired: false, heldBy, ttl, ttlMs }
  // | { acquired: false, error, code } (back end failed or disabled).
  attempt(resource, id, ttlMs) {
    return this.ctx.op(
      (n, opId) => {
        checkIdType(resource, 'resource');
        checkIdType(id, 'id');
        n.lockAcquire(opId, resource, id, this.ctx.options.nodeId, ttlMs);
      },
      (r) => {
        const a = replies.lockAcquired(r);
        if (a.granted) {
          this.stats.hits++;
          return { acquired: true, owner: a.owner, fence: a.fence, ttl: ttlMs / 1000 };
        }
        this.stats.misses++;
        return { acquired: false, heldBy: a.holder, ttl: C.secondsLeft(a.pttlMs), ttlMs: a.pttlMs };
      },
      (err) => {
        this.ctx.failed('lock', err);
        return { acquired: false, error: err.message, code: err.code };
      },
    );
  }

  // The attempt loop (see common.take) on one lock; a grant that arrives after `o.signal`
  // aborted is released at once.
  take(resource, id, o) {
    return C.take(
      () => this.attempt(resource, id, o.ttlMs),
      (owner) => this.release(resource, id, owner),
      o,
      this.stats,
    );
  }

  // A take whose answer must be a grant: ELOCKED or the back end's code otherwise, and a
  // grant that raced with the abort of `o.signal` is released and the call rejects.
  async takeGranted(resource, id, o) {
    const [lock, sent] = await this.take(resource, id, o);
    if (!lock.acquired) throw notAcquired(resource, id, lock);
    if (o.signal !== undefined && o.signal.aborted) {
      await this.release(resource, id, lock.owner).catch(() => false);
      throw o.signal.reason;
    }
    return [lock, sent];
  }

  // → { acquired: true, owner, fence, ttl } or { acquired: false, heldBy, ttl } or
  // { acquired: false, error } when the back end is down or disabled. Never throws for an
  // outage; bad input rejects with a TypeError/RangeError; an aborted `signal` rejects with
  // its reason (before any Redis call when it is already aborted).
  acquire(resource, id, options) {
    let o;
    try {
      o = options === undefined ? DEFAULTS : C.lockOptions(options);
      if (o.signal !== undefined) o.signal.throwIfAborted();
    } catch (err) {
      return Promise.reject(err);
    }
    // the common case, one attempt, without the retry loop's promises
    if (o.retries === 0 && o.waitMs === 0 && o.signal === undefined) return this.attempt(resource, id, o.ttlMs);
    return this.take(resource, id, o).then(([r]) => r);
  }

  acquireTaskLock(id, options) {
    return this.acquire('task', id, options);
  }

  acquireApprovalLock(id, options) {
    return this.acquire('approval', id, options);
  }

  acquirePaymentLock(id, options) {
    return this.acquire('payment', id, options);
  }

  // → true only if `owner` held the lock (compare-and-delete); false too when Redis failed.
  release(resource, id, owner) {
    return this.ctx.op(
      (n, opId) => {
        checkIdType(resource, 'resource');
        checkIdType(id, 'id');
        checkString(owner, 'owner');
        n.lockRelease(opId, resource, id, owner);
      },
      undefined,
      this.ctx.soft('lock', false),
    );
  }

  // Compare-and-pexpire → true if `owner` still holds it, false if not; rejects when the back
  // end failed (the answer is unknown). The watchdog's primitive.
  renew(resource, id, owner, ttlMs) {
    return this.ctx.op(
      (n, opId) => {
        checkIdType(resource, 'resource');
        checkIdType(id, 'id');
        checkString(owner, 'owner');
        n.lockExtend(opId, resource, id, owner, ttlMs);
      },
      undefined,
      (err) => {
        this.ctx.failed('lock', err);
        throw err;
      },
    );
  }

  // → true only if `owner` still holds the lock; its TTL becomes `ttlSec` (default 30).
  async extend(resource, id, owner, ttlSec = C.DEFAULT_TTL_SEC) {
    const ttlMs = C.ttlMsOf(ttlSec);
    try {
      return await this.renew(resource, id, owner, ttlMs);
    } catch (err) {
      if (isBackendFailure(err)) return false;
      throw err;
    }
  }

  // → { locked: false } or { locked: true, owner, ttl, ttlMs }; `error` is set (and `locked`
  // false) when the back end could not say.
  isLocked(resource, id) {
    return this.ctx.op(
      (n, opId) => {
        checkIdType(resource, 'resource');
        checkIdType(id, 'id');
        n.lockStatus(opId, resource, id);
      },
      (r) => {
        const h = replies.lockHolder(r);
        if (h === null) return { locked: false };
        return { locked: true, owner: h.owner, ttl: C.secondsLeft(h.pttlMs), ttlMs: h.pttlMs };
      },
      (err) => {
        this.ctx.failed('lock', err);
        return { locked: false, error: err.message, code: err.code };
      },
    );
  }

  // The watchdog of one held lock (see Lease).
  lease(resource, id, lock, sentAt, ttlMs) {
    return new Lease({
      ttlMs,
      sentAt,
      renew: (ms) => this.renew(resource, id, lock.owner, ms),
      release: () => this.release(resource, id, lock.owner),
      lostError: (why) => lockLost(resource, id, why),
      onLost: () => this.stats.lost++,
    });
  }

  // Runs `fn({ signal, owner, fence })` under the lock → { result, owner, fence, lost }.
  // Throws ELOCKED (with heldBy) when the lock stays busy, and rethrows what `fn` throws;
  // `options.signal` cancels the wait and, while `fn` runs, aborts `fn`'s signal.
  async withLock(resource, id, fn, options) {
    C.checkFn(fn);
    const o = C.lockOptions(options);
    if (o.signal !== undefined) o.signal.throwIfAborted();
    const [lock, sent] = await this.takeGranted(resource, id, o);
    return runHeld(this.lease(resource, id, lock, sent, o.ttlMs), lock.owner, lock.fence, fn, o.signal);
  }

  // Waits its turn (jittered retries for up to `waitMs`, default 10 s) on `lock:mutex:{name}`
  // and runs `fn` → what `fn` returns. ELOCKED after `waitMs`.
  async mutex(name, fn, options) {
    checkIdType(name, 'name');
    C.checkFn(fn);
    const o = C.lockOptions(options, { waitMs: MUTEX_WAIT_MS });
    if (o.signal !== undefined) o.signal.throwIfAborted();
    const [lock, sent] = await this.takeGranted('mutex', name, o);
    const { result } = await runHeld(this.lease('mutex', name, lock, sent, o.ttlMs), lock.owner, lock.fence, fn, o.signal);
    return result;
  }

  // The lock as a handle held until release() or `await using` ends: { resource, id, owner,
  // fence, ttl, signal, release(), [Symbol.asyncDispose]() }; the watchdog extends it while it
  // is held and `signal` aborts (ELOCKLOST) if it is lost. Busy: rejects with ELOCKED; back
  // end failure: rejects with its code; `options.signal` cancels the wait.
  async lock(resource, id, options) {
    const o = C.lockOptions(options);
    if (o.signal !== undefined) o.signal.throwIfAborted();
    const [lock, sent] = await this.takeGranted(resource, id, o);
    const lease = this.lease(resource, id, lock, sent, o.ttlMs).start();
    return new Held({ resource, id, owner: lock.owner, fence: lock.fence, ttl: lock.ttl }, lease);
  }

  // A fenced counting semaphore of `permits` on `sem:{name}` (see ./semaphore.js).
  semaphore(name, permits, options) {
    return new Semaphore(this, name, permits, options);
  }
}

module.exports = { DistributedLock };
