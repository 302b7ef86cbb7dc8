'use strict';
// A fenced counting semaphore: at most `permits` holders of `sem:{name}` at once, across every
// process on the back end. One native call per attempt (one Lua script on Redis: drop expired
// holders, count, add, next fence); holders expire by their TTL, so a crashed holder frees its
// permit; the watchdog of withPermit/permit() extends a held permit.

const { typeError, rangeError, checkIdType, checkString, isBackendFailure } = require('../errors');
const C = require('./common');
const replies = require('../replies');
const { Lease, runHeld } = require('./lease');
const { Held } = require('./handle');

function fullError(sem, r) {
  const e = new Error(`semaphore ${sem.name} has all ${sem.permits} permits taken`);
  e.code = 'ELOCKED';
  return Object.assign(e, { semaphore: sem.name, held: r.held, permits: sem.permits, retryInMs: r.retryInMs });
}

function permitLost(sem, why) {
  const e = new Error(`a permit of semaphore ${sem.name} was lost: ${why}`);
  e.code = 'ELOCKLOST';
  e.semaphore = sem.name;
  return e;
}

class Semaphore {
  // `permits`: an integer of at least 1 (the native side bounds it, MAX_SEM_PERMITS in
  // src/lock.rs); `options.ttlSec` and `options.waitMs`: the defaults of every acquire
  // (30 s, no waiting).
  constructor(locks, name, permits, options) {
    checkIdType(name, 'name');
    if (typeof permits !== 'number') throw typeError(`permits must be a number (got ${permits === null ? 'null' : typeof permits})`);
    if (!Number.isInteger(permits) || permits < 1) throw rangeError(`permits must be an integer of at least 1 (got ${permits})`);
    const o = C.lockOptions(options);
    this.defaults = { ttlSec: o.ttlMs / 1000, waitMs: o.waitMs };
    this.name = name;
    this.permits = permits;
    Object.defineProperty(this, 'locks', { value: locks });
  }

  get ctx() {
    return this.locks.ctx;
  }

  // One attempt → { acquired: true, owner, fence, held, ttl } | { acquired: false, held,
  // retryInMs } | { acquired: false, error, code }.
  attempt(ttlMs) {
    const stats = this.locks.stats;
    return this.ctx.op(
      (n, opId) => n.semAcquire(opId, this.name, this.ctx.options.nodeId, this.permits, ttlMs),
      (r) => {
        const a = replies.semAcquired(r);
        if (a.granted) {
          stats.hits++;
          return { acquired: true, owner: a.owner, fence: a.fence, held: a.held, ttl: ttlMs / 1000 };
        }
        stats.misses++;
        return { acquired: false, held: a.held, retryInMs: Math.max(0, a.retryMs) };
      },
      (err) => {
        this.ctx.failed('lock', err);
        return { acquired: false, error: err.message, code: err.code };
      },
    );
  }

  take(o) {
    return C.take(() => this.attempt(o.ttlMs), (owner) => this.release(owner), o, this.locks.stats);
  }

  async takeGranted(o) {
    if (o.signal !== undefined) o.signal.throwIfAborted();
    const [r, sent] = await this.take(o);
    if (!r.acquired) throw C.notAcquired(`a permit of semaphore ${this.name}`, r, () => fullError(this, r), { semaphore: this.name });
    if (o.signal !== undefined && o.signal.aborted) {
      await this.release(r.owner);
      throw o.signal.reason;
    }
    return [r, sent];
  }

  options(options) {
    return C.lockOptions(options, this.defaults);
  }

  // → { acquired: true, owner, fence, held, ttl, release(), extend(ttlSec) } (held: permits
  // taken with this one), { acquired: false, held, retryInMs } when all are taken, or
  // { acquired: false, error, code } when the back end failed. No watchdog: the permit frees
  // itself at its TTL unless extended or released.
  async acquire(options) {
    const o = this.options(options);
    if (o.signal !== undefined) o.signal.throwIfAborted();
    const [r] = await this.take(o);
    if (r.acquired) {
      r.release = () => this.release(r.owner);
      r.extend = (ttlSec) => this.extend(r.owner, ttlSec);
    }
    return r;
  }

  // → true only if `owner` held a live permit and this call freed it; false too when Redis failed.
  release(owner) {
    return this.ctx.op(
      (n, opId) => {
        checkString(owner, 'owner');
        n.semRelease(opId, this.name, owner);
      },
      undefined,
      this.ctx.soft('lock', false),
    );
  }

  // Moves a live holder's expiry → true if `owner` still holds a permit; rejects when the back
  // end failed. The watchdog's primitive.
  renew(owner, ttlMs) {
    return this.ctx.op(
      (n, opId) => {
        checkString(owner, 'owner');
        n.semExtend(opId, this.name, owner, ttlMs);
      },
      undefined,
      (err) => {
        this.ctx.failed('lock', err);
        throw err;
      },
    );
  }

  // → true only if `owner` still holds a permit; it now expires `ttlSec` from now.
  async extend(owner, ttlSec = this.defaults.ttlSec) {
    const ttlMs = C.ttlMsOf(ttlSec);
    try {
      return await this.renew(owner, ttlMs);
    } catch (err) {
      if (isBackendFailure(err)) return false;
      throw err;
    }
  }

  // → { held, permits, nextExpiryMs } (live holders; ms until the earliest expires, -1: none),
  // or { held: 0, permits, error, code } when the back end could not say.
  status() {
    return this.ctx.op(
      (n, opId) => n.semStatus(opId, this.name),
      (r) => {
        const st = replies.semStatus(r);
        return { held: st.held, permits: this.permits, nextExpiryMs: st.nextExpiryMs };
      },
      (err) => {
        this.ctx.failed('lock', err);
        return { held: 0, permits: this.permits, error: err.message, code: err.code };
      },
    );
  }

  lease(r, sentAt, ttlMs) {
    return new Lease({
      ttlMs,
      sentAt,
      renew: (ms) => this.renew(r.owner, ms),
      release: () => this.release(r.owner),
      lostError: (why) => permitLost(this, why),
      onLost: () => this.locks.stats.lost++,
    });
  }

  // Runs `fn({ signal, owner, fence })` holding a permit → { result, owner, fence, lost }, as
  // withLock does: extended every ttl/3, always released, ELOCKED when none is free (after
  // `waitMs`), the back end's code when it failed; `options.signal` cancels.
  async withPermit(fn, options) {
    C.checkFn(fn);
    const o = this.options(options);
    const [r, sent] = await this.takeGranted(o);
    return runHeld(this.lease(r, sent, o.ttlMs), r.owner, r.fence, fn, o.signal);
  }

  // A permit as a handle, like distributedLock.lock(): { semaphore, owner, fence, ttl, signal,
  // release(), [Symbol.asyncDispose]() }, extended by the watchdog while held.
  async permit(options) {
    const o = this.options(options);
    const [r, sent] = await this.takeGranted(o);
    const lease = this.lease(r, sent, o.ttlMs).start();
    return new Held({ semaphore: this.name, owner: r.owner, fence: r.fence, ttl: r.ttl }, lease);
  }
}

module.exports = { Semaphore };
