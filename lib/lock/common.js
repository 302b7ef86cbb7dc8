'use strict';
// What locks and semaphores share: option checks, their errors, the cancellable wait and the
// attempt loop (retries with jitter, `waitMs`, an AbortSignal).

const { typeError, rangeError } = require('../errors');
const { CODES, LOCK_MAX_TTL_MS } = require('../rules');

const DEFAULT_TTL_SEC = 30;
const MAX_TTL_SEC = LOCK_MAX_TTL_MS / 1000;
const DEFAULT_RETRY_DELAY_MS = 50;
const MAX_RETRY_DELAY_MS = 60_000;
const MAX_RETRIES = 100_000;
const MAX_WAIT_MS = 3_600_000;

// A monotonic clock: deadlines and lock validity must not move when the wall clock jumps.
const now = () => performance.now();

// A delay spread over [0.5, 1.5) × `ms`, so waiters that collided do not retry in step.
const jitter = (ms) => ms * (0.5 + Math.random());

// Waits `ms`; with a signal, rejects with its reason as soon as it aborts (the timer is cleared).
function sleep(ms, signal) {
  if (signal === undefined) return new Promise((resolve) => setTimeout(resolve, ms));
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// What `promise` settles with, or a rejection with `signal.reason` as soon as `signal` aborts;
// a value that arrives after the abort goes to `late` (so a grant nobody waits for any more is
// given back). Every path handles `promise`: nothing becomes an unhandled rejection.
function raceAbort(promise, signal, late) {
  if (signal === undefined) return promise;
  return new Promise((resolve, reject) => {
    let done = false;
    const onAbort = () => {
      done = true;
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        if (done) late(v);
        else resolve(v);
      },
      (err) => {
        signal.removeEventListener('abort', onAbort);
        if (!done) reject(err);
      },
    );
  });
}

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

// An AbortSignal or undefined, as Node's own APIs accept it.
function signalOption(signal) {
  if (signal === undefined) return undefined;
  if (signal === null || typeof signal !== 'object' || typeof signal.aborted !== 'boolean' || typeof signal.addEventListener !== 'function') {
    throw typeError(`signal must be an AbortSignal (got ${signal === null ? 'null' : typeof signal})`);
  }
  return signal;
}

// { ttlSec, retries, retryDelayMs, waitMs, signal } → validated, with TTL in ms.
function lockOptions(options, defaults = {}) {
  if (options == null) options = {};
  if (typeof options !== 'object') throw typeError('options must be an object');
  const ttlSec = options.ttlSec === undefined ? defaults.ttlSec || DEFAULT_TTL_SEC : options.ttlSec;
  return {
    ttlMs: ttlMsOf(ttlSec),
    retries: numberOption(options, 'retries', 0, 0, MAX_RETRIES, true),
    retryDelayMs: numberOption(options, 'retryDelayMs', DEFAULT_RETRY_DELAY_MS, 0, MAX_RETRY_DELAY_MS, false),
    waitMs: numberOption(options, 'waitMs', defaults.waitMs || 0, 0, MAX_WAIT_MS, false),
    signal: signalOption(options.signal),
  };
}

function checkFn(fn) {
  if (typeof fn !== 'function') throw typeError(`fn must be a function (got ${fn === null ? 'null' : typeof fn})`);
}

function lockedError(what, busy, fields) {
  const e = new Error(`${what} is held by ${busy.heldBy}`);
  e.code = 'ELOCKED';
  e.heldBy = busy.heldBy;
  e.ttl = busy.ttl;
  return Object.assign(e, fields);
}

// Not granted: ELOCKED when someone holds it (`busy(answer)` makes that error), else the back
// end's failure (the lock is refused, never assumed).
function notAcquired(what, r, busy, fields) {
  if (r.error === undefined) return busy(r);
  const e = new Error(`${what} not acquired: ${r.error}`);
  e.code = r.code;
  return Object.assign(e, fields);
}

// Attempts until granted, out of retries and past `waitMs`, the back end is gone for good, or
// `o.signal` aborts (then it rejects with the signal's reason, and a grant that arrives after
// the abort is given back through `giveBack(owner)`). `attempt()` answers { acquired, … }
// and never rejects for an outage. → [answer of the last attempt, now() when it was sent].
async function take(attempt, giveBack, o, stats) {
  const { signal } = o;
  const late = (r) => {
    if (r.acquired) giveBack(r.owner).catch(() => false);
  };
  const deadline = o.waitMs > 0 ? now() + o.waitMs : 0;
  for (let n = 0; ; n++) {
    if (signal !== undefined) signal.throwIfAborted();
    const sent = now();
    const r = await raceAbort(attempt(), signal, late);
    if (r.acquired || r.code === CODES.disabled || r.code === CODES.closed) return [r, sent];
    const t = now();
    if (n >= o.retries && !(deadline > t)) return [r, sent];
    stats.waits++;
    let delay = jitter(o.retryDelayMs);
    if (deadline > t) delay = Math.min(delay, deadline - t);
    await sleep(delay, signal);
  }
}

module.exports = {
  DEFAULT_TTL_SEC,
  now,
  sleep,
  raceAbort,
  secondsLeft,
  numberOption,
  ttlMsOf,
  lockOptions,
  checkFn,
  lockedError,
  notAcquired,
  take,
};
