'use strict';
// The general cache's options: set's { ttlSec } and wrap's { ttlSec, staleSec, near,
// loaderTimeoutMs, lock }, checked (TypeError/RangeError with a code) before anything is written.

const { typeError, rangeError } = require('../errors');

const MAX_TTL_SEC = 30 * 24 * 3600;
const DEFAULT_LOADER_TIMEOUT_MS = 10000;
const MAX_LOADER_TIMEOUT_MS = 10 * 60 * 1000;
const DEFAULT_NEAR_TTL_MS = 5000;
// wrap's lock: the lease outlives its holder's loader (loaderTimeoutMs) by this much (its
// fill).
const LEASE_MARGIN_MS = 2000;

function checkSeconds(v, name, { required, max = MAX_TTL_SEC, zero = false }) {
  if (v === undefined || v === null) {
    if (required) throw typeError(`${name} is required (a number of seconds: nothing is cached forever)`);
    return 0;
  }
  if (typeof v !== 'number') throw typeError(`${name} must be a number of seconds (got ${typeof v})`);
  if (!Number.isFinite(v) || v > max || v < 0 || (!zero && v === 0)) {
    throw rangeError(`${name} must be ${zero ? '0' : 'more than 0'} to ${max} seconds (got ${v})`);
  }
  return v;
}

function checkOptions(opts, name) {
  if (opts === undefined || opts === null) throw typeError(`${name} needs options { ttlSec } (nothing is cached forever)`);
  if (typeof opts !== 'object') throw typeError(`${name} options must be an object`);
  return opts;
}

// The options of set → TTL in ms.
function setTtlMs(opts) {
  checkOptions(opts, 'set');
  return Math.ceil(checkSeconds(opts.ttlSec, 'ttlSec', { required: true }) * 1000);
}

// The options of wrap, checked → { ttlMs, staleMs, nearTtlMs (0: off), loaderTimeoutMs,
// lock: null or { timeoutMs, leaseMs } }.
function wrapOptions(opts) {
  checkOptions(opts, 'wrap');
  const ttlSec = checkSeconds(opts.ttlSec, 'ttlSec', { required: true });
  const staleSec = checkSeconds(opts.staleSec, 'staleSec', { required: false, zero: true, max: MAX_TTL_SEC - ttlSec });
  let nearTtlMs = 0;
  const near = opts.near;
  if (near === true) nearTtlMs = Math.min(DEFAULT_NEAR_TTL_MS, ttlSec * 1000);
  else if (near !== undefined && near !== null && near !== false) {
    if (typeof near !== 'object' || typeof near.ttlMs !== 'number') throw typeError('near must be a boolean or { ttlMs }');
    if (!Number.isFinite(near.ttlMs) || near.ttlMs <= 0 || near.ttlMs > ttlSec * 1000) {
      throw rangeError(`near.ttlMs must be more than 0 and at most ttlSec × 1000 (got ${near.ttlMs})`);
    }
    nearTtlMs = near.ttlMs;
  }
  let loaderTimeoutMs = DEFAULT_LOADER_TIMEOUT_MS;
  if (opts.loaderTimeoutMs !== undefined && opts.loaderTimeoutMs !== null) {
    const v = opts.loaderTimeoutMs;
    if (typeof v !== 'number') throw typeError(`loaderTimeoutMs must be a number (got ${typeof v})`);
    if (!Number.isFinite(v) || v <= 0 || v > MAX_LOADER_TIMEOUT_MS) throw rangeError(`loaderTimeoutMs must be more than 0 to ${MAX_LOADER_TIMEOUT_MS} (got ${v})`);
    loaderTimeoutMs = v;
  }
  return { ttlMs: Math.ceil(ttlSec * 1000), staleMs: Math.ceil(staleSec * 1000), nearTtlMs, loaderTimeoutMs, lock: lockOptions(opts.lock, loaderTimeoutMs) };
}

// wrap's `lock`: true (wait as long as the lease can last) or { timeoutMs } → null (off) or
// { timeoutMs: how long a caller waits for another node's load, leaseMs }.
function lockOptions(lock, loaderTimeoutMs) {
  if (lock === undefined || lock === null || lock === false) return null;
  const leaseMs = loaderTimeoutMs + LEASE_MARGIN_MS;
  if (lock === true) return { timeoutMs: leaseMs, leaseMs };
  if (typeof lock !== 'object' || typeof lock.timeoutMs !== 'number') throw typeError('lock must be a boolean or { timeoutMs }');
  const v = lock.timeoutMs;
  if (!Number.isFinite(v) || v <= 0 || v > MAX_LOADER_TIMEOUT_MS) throw rangeError(`lock.timeoutMs must be more than 0 to ${MAX_LOADER_TIMEOUT_MS} (got ${v})`);
  return { timeoutMs: v, leaseMs };
}

module.exports = { setTtlMs, wrapOptions };
