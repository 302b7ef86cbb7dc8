'use strict';
// The watchdog of a held lock or semaphore permit, and the "run fn while held" step of
// withLock, mutex and withPermit.

const { isBackendFailure } = require('../errors');
const { now, raceAbort } = require('./common');

// Extends the grant every ttl/3 while it is held; aborts `signal` when an extension finds it
// gone (or when it expired while Redis did not answer); `end()` stops extending, then
// releases. Every promise here is handled: a lost grant never becomes an unhandled rejection,
// and no timer outlives `end()`.
//   renew() → Promise<boolean> (rejects when the back end failed), release() → Promise<boolean>,
//   lostError(why) → the abort reason, onLost() counts a loss.
class Lease {
  constructor({ ttlMs, sentAt, renew, release, lostError, onLost }) {
    this.ttlMs = ttlMs;
    this.renew = renew;
    this.releaseFn = release;
    this.lostError = lostError;
    this.onLost = onLost;
    this.ctrl = new AbortController();
    this.signal = this.ctrl.signal;
    this.lost = false;
    this.period = Math.max(1, Math.floor(ttlMs / 3));
    // Conservative: the TTL counts from before the acquire was sent, less a margin for the
    // clock drift between this process and Redis (redlock's: 1 % of the TTL + 2 ms).
    this.margin = Math.floor(ttlMs / 100) + 2;
    this.validUntil = sentAt + ttlMs;
    this.timer = null;
    // The lease as known here: fires at validUntil − margin unless an extension confirmed
    // later first, so `signal` aborts when the lease ends even if Redis never answers (a hung
    // server holds the extension until commandTimeoutMs, well after the lease).
    this.leaseTimer = null;
    this.inFlight = null;
    this.stopped = false;
    this.ended = null;
  }

  start() {
    this.armLease();
    this.schedule(this.period);
    return this;
  }

  get active() {
    return !this.stopped && !this.signal.aborted;
  }

  lose(why) {
    if (this.signal.aborted) return;
    this.lost = true;
    this.onLost();
    this.ctrl.abort(this.lostError(why));
  }

  // Cancelled by the caller: `signal` aborts with `reason` and the extensions stop (the grant
  // is released by `end()`, or frees itself at its TTL).
  cancel(reason) {
    if (!this.signal.aborted) this.ctrl.abort(reason);
    this.clearTimers();
  }

  armLease() {
    if (this.leaseTimer !== null) clearTimeout(this.leaseTimer);
    this.leaseTimer = null;
    if (!this.active) return;
    this.leaseTimer = setTimeout(() => {
      this.leaseTimer = null;
      if (!this.stopped) this.lose('its lease ran out before an extension was confirmed');
    }, Math.max(0, this.validUntil - this.margin - now()));
  }

  schedule(ms) {
    if (this.active) this.timer = setTimeout(() => this.tick(), ms);
  }

  tick() {
    this.timer = null;
    const sent = now();
    this.inFlight = this.renew(this.ttlMs).then(
      (held) => {
        this.inFlight = null;
        if (!this.active) return;
        if (!held) return this.lose('another owner holds it or it expired');
        this.validUntil = sent + this.ttlMs;
        this.armLease();
        this.schedule(this.period);
      },
      (err) => {
        this.inFlight = null;
        if (!this.active) return;
        if (!isBackendFailure(err)) return this.lose(err.message);
        const left = this.validUntil - now();
        if (left <= 0) return this.lose(`it expired while Redis did not answer (${err.message})`);
        this.schedule(Math.min(this.period, left));
      },
    );
  }

  clearTimers() {
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.leaseTimer !== null) clearTimeout(this.leaseTimer);
    this.timer = null;
    this.leaseTimer = null;
  }

  // Stops extending, waits for an extension in flight, releases → true if this call freed
  // the grant. Idempotent: later calls answer false.
  end() {
    if (this.ended !== null) return this.ended.then(() => false);
    this.stopped = true;
    this.clearTimers();
    const inFlight = this.inFlight || Promise.resolve();
    this.ended = inFlight.then(() => this.releaseFn().catch(() => false));
    return this.ended;
  }
}

// Runs `fn({ signal, owner, fence })` while `lease` is held → { result, owner, fence, lost };
// always ends the lease after `fn` settles, rethrows what `fn` throws. When `callerSignal`
// aborts, `fn`'s signal aborts with the same reason, the extensions stop, and the call
// rejects with that reason at once; the grant is released as soon as `fn` settles.
function runHeld(lease, owner, fence, fn, callerSignal) {
  lease.start();
  let work;
  try {
    work = Promise.resolve(fn({ signal: lease.signal, owner, fence }));
  } catch (err) {
    work = Promise.reject(err);
  }
  const settled = work.then(
    (result) => lease.end().then(() => ({ result, owner, fence, lost: lease.lost })),
    (err) => lease.end().then(() => {
      throw err;
    }),
  );
  if (callerSignal === undefined) return settled;
  const onAbort = () => lease.cancel(callerSignal.reason);
  callerSignal.addEventListener('abort', onAbort, { once: true });
  const done = () => callerSignal.removeEventListener('abort', onAbort);
  settled.then(done, done);
  return raceAbort(settled, callerSignal, () => {});
}

module.exports = { Lease, runHeld };
