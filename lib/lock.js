'use strict';
// distributedLock: owner-checked, fenced locks on `lock:{resource}:{id}`. One native call per
// attempt (SET NX PX + fence in one script); the retries, the watchdog of withLock and mutex
// live here. Without a working back end no lock is ever granted.

const { typeError, rangeError, checkIdType, checkString, isBackendFailure } = require('./errors');
const { CODES, LOCK_MAX_TTL_MS } = require('./rules');

const DEFAULT_TTL_SEC = 30;
const MAX_TTL_SEC = LOCK_MAX_TTL_MS / 1000;
const DEFAULT_RETRY_DELAY_MS = 50;
const MAX_RETRY_DELAY_MS = 60_000;
const MAX_RETRIES = 100_000;
const MAX_WAIT_MS = 3_600_000;
const MUTEX_WAIT_MS = 10_000;

// A monotonic clock: deadlines and lock validity must not move when the wall clock jumps.
const now = () => performance.now();

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A delay spread over [0.5, 1.5) × `ms`, so waiters that collided do not retry in step.
const jitter = (ms) => ms * (0.5 + Math.random());

// Whole seconds left, as `isLocked` reports them (a live lock never shows 0); -1: no expiry.
const secondsLeft = (pttl) => (pttl < 0 ? -1 : Math.ceil(pttl / 1000));

function numberOption(o, name, dflt, min, max, integer) {
  const v = o[name];
  if (v === undefined) return dflt;
  if (typeof v !== 'number') throw typeError(`${name} must be a number (got ${v === null ? 'null' : typeof v})`);
  if (!Number.isFinite(v) || v < min || v > max || (integer && !Number.isInteger(v))) {
    throw rangeError(`${name} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max} (got ${v})`);
  }
  return v;
}

function ttlMsOf(ttlSec) {
  if (typeof ttlSec !== 'number') throw typeError(`ttlSec must be a number of seconds (got ${ttlSec === null ? 'null' : typeof ttlSec})`);
  if (!Number.isFinite(ttlSec) || ttlSec <= 0 || ttlSec > MAX_TTL_SEC) {
    throw rangeError(`ttlSec must be more than 0 and at most ${MAX_TTL_SEC} (got ${ttlSec})`);
  }
  return Math.max(1, Math.round(ttlSec * 1000));
}

// { ttlSec, retries, retryDelayMs, waitMs } → validated, with TTL in ms.
function lockOptions(options, defaults = {}) {
  if (options == null) options = {};
  if (typeof options !== 'object') throw typeError('options must be an object');
  const ttlSec = options.ttlSec === undefined ? defaults.ttlSec || DEFAULT_TTL_SEC : options.ttlSec;
  return {
    ttlMs: ttlMsOf(ttlSec),
    retries: numberOption(options, 'retries', 0, 0, MAX_RETRIES, true),
    retryDelayMs: numberOption(options, 'retryDelayMs', DEFAULT_RETRY_DELAY_MS, 0, MAX_RETRY_DELAY_MS, false),
    waitMs: numberOption(options, 'waitMs', defaults.waitMs || 0, 0, MAX_WAIT_MS, false),
  };
}

const DEFAULTS = Object.freeze(lockOptions());

function lockedError(resource, id, busy) {
  const e = new Error(`lock ${resource}:${id} is held by ${busy.heldBy}`);
  e.code = 'ELOCKED';
  e.heldBy = busy.heldBy;
  e.ttl = busy.ttl;
  e.resource = resource;
  e.id = id;
  return e;
}

// Not granted: ELOCKED when someone holds it, else the back end's failure (the lock is
// refused, never assumed).
function notAcquired(resource, id, r) {
  if (r.error === undefined) return lockedError(resource, id, r);
  const e = new Error(`lock ${resource}:${id} not acquired: ${r.error}`);
  e.code = r.code;
  e.resource = resource;
  e.id = id;
  return e;
}

function lockLost(resource, id, why) {
  const e = new Error(`lock ${resource}:${id} was lost: ${why}`);
  e.code = 'ELOCKLOST';
  e.resource = resource;
  e.id = id;
  return e;
}

function checkFn(fn) {
  if (typeof fn !== 'function') throw typeError(`fn must be a function (got ${fn === null ? 'null' : typeof fn})`);
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
        if (r[0] === '1') {
          this.stats.hits++;
          return { acquired: true, owner: r[1], fence: Number(r[2]), ttl: ttlMs / 1000 };
        }
        this.stats.misses++;
        const pttl = Number(r[2]);
        return { acquired: false, heldBy: r[1], ttl: secondsLeft(pttl), ttlMs: pttl };
      },
      (err) => {
        this.ctx.failed('lock', err);
        return { acquired: false, error: err.message, code: err.code };
      },
    );
  }

  // Attempts until granted, out of retries and past `waitMs`, or the back end is gone for
  // good. → [answer of the last attempt, now() when that attempt was sent].
  async take(resource, id, o) {
    const deadline = o.waitMs > 0 ? now() + o.waitMs : 0;
    for (let n = 0; ; n++) {
      const sent = now();
      const r = await this.attempt(resource, id, o.ttlMs);
      if (r.acquired || r.code === CODES.disabled || r.code === CODES.closed) return [r, sent];
      const t = now();
      if (n >= o.retries && !(deadline > t)) return [r, sent];
      this.stats.waits++;
      let delay = jitter(o.retryDelayMs);
      if (deadline > t) delay = Math.min(delay, deadline - t);
      await sleep(delay);
    }
  }

  // → { acquired: true, owner, fence, ttl } or { acquired: false, heldBy, ttl } or
  // { acquired: false, error } when the back end is down or disabled. Never throws for an
  // outage; bad input rejects with a TypeError/RangeError.
  acquire(resource, id, options) {
    let o;
    try {
      o = options === undefined ? DEFAULTS : lockOptions(options);
    } catch (err) {
      return Promise.reject(err);
    }
    // the common case, one attempt, without the retry loop's promises
    if (o.retries === 0 && o.waitMs === 0) return this.attempt(resource, id, o.ttlMs);
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
  async extend(resource, id, owner, ttlSec = DEFAULT_TTL_SEC) {
    const ttlMs = ttlMsOf(ttlSec);
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
        if (r.length === 0) return { locked: false };
        const pttl = Number(r[1]);
        return { locked: true, owner: r[0], ttl: secondsLeft(pttl), ttlMs: pttl };
      },
      (err) => {
        this.ctx.failed('lock', err);
        return { locked: false, error: err.message, code: err.code };
      },
    );
  }

  // Runs `fn({ signal, owner, fence })` under the lock → { result, owner, fence, lost }.
  // Throws ELOCKED (with heldBy) when the lock stays busy, and rethrows what `fn` throws.
  async withLock(resource, id, fn, options) {
    checkFn(fn);
    const o = lockOptions(options);
    const [lock, sent] = await this.take(resource, id, o);
    if (!lock.acquired) throw notAcquired(resource, id, lock);
    return this.runHeld(resource, id, lock, sent, o.ttlMs, fn);
  }

  // Waits its turn (jittered retries for up to `waitMs`, default 10 s) on `lock:mutex:{name}`
  // and runs `fn` → what `fn` returns. ELOCKED after `waitMs`.
  async mutex(name, fn, options) {
    checkIdType(name, 'name');
    checkFn(fn);
    const o = lockOptions(options, { waitMs: MUTEX_WAIT_MS });
    const [lock, sent] = await this.take('mutex', name, o);
    if (!lock.acquired) throw notAcquired('mutex', name, lock);
    const { result } = await this.runHeld('mutex', name, lock, sent, o.ttlMs, fn);
    return result;
  }

  // The watchdog: extends the lock every ttl/3 while `fn` runs; aborts `signal` when an
  // extension finds the lock gone (or when it expired while Redis did not answer); stops
  // extending, then releases, whatever `fn` did. Every promise here is handled: a lost lock
  // never becomes an unhandled rejection, and no timer outlives `fn`.
  async runHeld(resource, id, lock, sentAt, ttlMs, fn) {
    const { owner, fence } = lock;
    const ctrl = new AbortController();
    const period = Math.max(1, Math.floor(ttlMs / 3));
    // Conservative: the TTL counts from before the acquire was sent, less a margin for the
    // clock drift between this process and Redis (redlock's: 1 % of the TTL + 2 ms).
    const margin = Math.floor(ttlMs / 100) + 2;
    let validUntil = sentAt + ttlMs;
    let timer = null;
    let inFlight = null;
    let stopped = false;
    // The lease as known here: fires at validUntil − margin unless an extension confirmed
    // later first, so `signal` aborts when the lease ends even if Redis never answers (a
    // hung server holds the extension until commandTimeoutMs, well after the lease).
    let leaseTimer = null;

    const lose = (why) => {
      if (ctrl.signal.aborted) return;
      this.stats.lost++;
      ctrl.abort(lockLost(resource, id, why));
    };
    const armLease = () => {
      if (leaseTimer !== null) clearTimeout(leaseTimer);
      leaseTimer = null;
      if (stopped || ctrl.signal.aborted) return;
      leaseTimer = setTimeout(() => {
        leaseTimer = null;
        if (!stopped) lose('its lease ran out before an extension was confirmed');
      }, Math.max(0, validUntil - margin - now()));
    };
    armLease();
    const schedule = (ms) => {
      if (!stopped && !ctrl.signal.aborted) timer = setTimeout(tick, ms);
    };
    const tick = () => {
      timer = null;
      const sent = now();
      inFlight = this.renew(resource, id, owner, ttlMs).then(
        (held) => {
          inFlight = null;
          if (stopped || ctrl.signal.aborted) return;
          if (!held) return lose('another owner holds it or it expired');
          validUntil = sent + ttlMs;
          armLease();
          schedule(period);
        },
        (err) => {
          inFlight = null;
          if (stopped || ctrl.signal.aborted) return;
          if (!isBackendFailure(err)) return lose(err.message);
          const left = validUntil - now();
          if (left <= 0) return lose(`it expired while Redis did not answer (${err.message})`);
          schedule(Math.min(period, left));
        },
      );
    };
    schedule(period);

    const finish = async () => {
      stopped = true;
      if (timer !== null) {
        clearTimeout(timer);
        timer = null;
      }
      if (leaseTimer !== null) {
        clearTimeout(leaseTimer);
        leaseTimer = null;
      }
      if (inFlight !== null) await inFlight;
      await this.release(resource, id, owner).catch(() => false);
    };

    let result;
    try {
      result = await fn({ signal: ctrl.signal, owner, fence });
    } catch (err) {
      await finish();
      throw err;
    }
    await finish();
    return { result, owner, fence, lost: ctrl.signal.aborted };
  }
}

module.exports = { DistributedLock };
