'use strict';
// `@bisman/cache/express-rate-limit`: a Store for express-rate-limit v8, counting on this
// module's rate limiter (one atomic script per hit in Redis, the same in memory://), so every
// process on the same Redis shares one count per client.
//
//   const { rateLimit } = require('express-rate-limit');
//   const { RateLimitStore } = require('@bisman/cache/express-rate-limit');
//   app.use(rateLimit({ windowMs: 60_000, limit: 100, store: new RateLimitStore({ prefix: 'api' }) }));
//
// Failure policy: when Redis fails (down, hung past commandTimeoutMs, circuit open, no back end)
// increment() rejects within commandTimeoutMs, and express-rate-limit's own `passOnStoreError`
// decides: false (its default) sends the error to Express's error handler (fail closed), true
// lets the request through (fail open). decrement() and resetKey() never reject for a back-end
// failure (a lost undo only makes the limit stricter); get() answers undefined then.

const { typeError, rangeError } = require('../errors');
const { RATE_LIMIT_MAX: MAX_LIMIT, RATE_LIMIT_MAX_WINDOW_SEC: MAX_WINDOW_SEC } = require('../rules');
const { safeKey } = require('../rate_limit/keys');

const PREFIX = /^[A-Za-z0-9_.:-]{1,64}$/;

let defaultCache = null;
function moduleCache() {
  if (defaultCache === null) defaultCache = require('../../index.js');
  return defaultCache;
}

class RateLimitStore {
  /**
   * @param {{ cache?: { rateLimiter: object }, prefix?: string }} [options] `cache`: the module
   *   (default) or a createCache() instance; `prefix` (default 'erl'): the counter's name, one per
   *   express-rate-limit limiter (keys `rate:{client key}:~{prefix}`).
   */
  constructor(options = {}) {
    if (options === null || typeof options !== 'object') throw typeError('RateLimitStore options must be an object');
    const { cache = moduleCache(), prefix = 'erl' } = options;
    if (cache === null || typeof cache !== 'object' || cache.rateLimiter === null || typeof cache.rateLimiter !== 'object' || typeof cache.rateLimiter.hitOrThrow !== 'function') {
      throw typeError('cache must be @bisman/cache or an instance from createCache()');
    }
    if (typeof prefix !== 'string') throw typeError('prefix must be a string');
    if (!PREFIX.test(prefix)) throw rangeError(`prefix must be 1 to 64 letters, digits or _ . : - (got ${JSON.stringify(prefix.slice(0, 80))})`);
    this.limiter = cache.rateLimiter;
    this.prefix = prefix;
    // The count lives in Redis (shared by every process), not in this process.
    this.localKeys = false;
    this.counter = `~${prefix}`;
    this.lim = { max: 0, windowSec: 60 };
  }

  /** express-rate-limit calls this once with its options: the window (rounded up to whole
   * seconds) and, when it is a number, the limit (recorded for getIpStatus). */
  init(options) {
    const windowMs = options && options.windowMs;
    if (typeof windowMs !== 'number' || !Number.isFinite(windowMs) || windowMs <= 0) throw rangeError(`windowMs must be a positive number of ms (got ${windowMs})`);
    const windowSec = Math.ceil(windowMs / 1000);
    if (windowSec > MAX_WINDOW_SEC) throw rangeError(`windowMs must be at most ${MAX_WINDOW_SEC * 1000} (got ${windowMs})`);
    const limit = options.limit;
    const max = Number.isInteger(limit) && limit >= 0 && limit <= MAX_LIMIT ? limit : 0;
    this.lim = Object.freeze({ max, windowSec });
  }

  /** One hit → { totalHits, resetTime }; rejects when Redis fails (see passOnStoreError). */
  async increment(key) {
    const h = await this.limiter.hitOrThrow(safeKey(key), this.counter, this.lim);
    return { totalHits: h.total, resetTime: new Date(Date.now() + h.leftMs) };
  }

  /** Takes one hit back (never below 0, never past the window). */
  async decrement(key) {
    await this.limiter.adjust('undo', safeKey(key), this.counter).catch(() => undefined);
  }

  /** The client's live count → { totalHits, resetTime }, or undefined (no live counter, or Redis failed). */
  async get(key) {
    const h = await this.limiter.adjust('peek', safeKey(key), this.counter).catch(() => null);
    if (h === null || (h.total === 0 && h.leftMs === 0)) return undefined;
    return { totalHits: h.total, resetTime: new Date(Date.now() + h.leftMs) };
  }

  /** Forgets the client's count. */
  async resetKey(key) {
    await this.limiter.resetCounter(safeKey(key), this.counter);
  }
}

module.exports = RateLimitStore;
module.exports.RateLimitStore = RateLimitStore;
module.exports.default = RateLimitStore;
