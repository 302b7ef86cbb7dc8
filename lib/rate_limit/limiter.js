'use strict';
// The limiter: one hit per call counted atomically in Redis (one script per hit), answered from
// the block cache when the client is known to be blocked, tallied into allowed/blocked/fail-open
// and the stats; checkLimit, the resets and getIpStatus; the limits and options it runs with.

const { now } = require('../clock');
const { checkIdType, checkString } = require('../errors');
const { LOGIN, STRICT, parseRateLimits } = require('./endpoints');
const { parseIpv6Subnet, normalizeIp } = require('./addresses');
const { BlockCache, BlockSync } = require('./block_cache');
const { parseInsurance, InsuranceLimiter, openResult, insures } = require('./insurance');
const { createLimiter, middleware } = require('./middleware');
const { usernameAndIp } = require('./keys');
const { RATE_LIMIT_MAX: MAX_LIMIT } = require('../rules');
const replies = require('../replies');

// Past this many distinct endpoints, metrics()' per-endpoint decisions count under 'other'.
const DECISION_ENDPOINTS_MAX = 1000;

// One hit sent to the store, { ip, endpoint, name, lim, at }: `name` is the counter (see
// counterName in ./endpoints.js), `at` when it was sent on the monotonic clock; the store's
// answer fills in { total, leftMs } (see storedHit).
function newHit(ip, endpoint, name, lim) {
  return { ip, endpoint, name, lim, at: now(), total: 0, leftMs: 0 };
}

// The native call of a hit `q`.
function startHit(n, id, q) {
  n.rateHit(id, q.ip, q.name, q.lim.max, q.lim.windowSec);
}

// The store's answer → `q` as the counted hit { total, leftMs, at }.
const storedHit = replies.counter;

// The native calls of the adjustments of a live counter (see adjust()).
const startPeek = (n, id, q) => n.ratePeek(id, q.ip, q.name);
const startUndo = (n, id, q) => n.rateUndo(id, q.ip, q.name);
const startBlock = (n, id, q) => n.rateBlock(id, q.ip, q.name, Math.min(q.total, MAX_LIMIT), q.blockSec);

// A counted hit ({ total, leftMs }) → the answer of checkLimit for a limit of `max`.
function resultOf(hit, max) {
  const { total } = hit;
  return { allowed: total <= max, remaining: Math.max(0, max - total), resetIn: Math.ceil(hit.leftMs / 1000), total, limit: max };
}

class RateLimiter {
  // `pubsub`: the instance's PubSub; resets travel through it to every node's block cache.
  constructor(ctx, limits = parseRateLimits(ctx.options.rateLimits), pubsub = null) {
    this.ctx = ctx;
    this.ipv6Subnet = parseIpv6Subnet(ctx.options.ipv6Subnet);
    this.stats = ctx.stats.rateLimit;
    this.stats.allowed = 0;
    this.stats.blocked = 0;
    this.stats.blockCacheHits = 0;
    // Decisions per endpoint for metrics(): endpoint → { allowed, blocked, failOpen }. Bounded:
    // past DECISION_ENDPOINTS_MAX distinct endpoints the rest count under 'other'.
    this.decisions = new Map();
    this.limits = limits;
    this.blocks = new BlockCache();
    this.insurance = new InsuranceLimiter();
    this.insured = parseInsurance(ctx.options.rateLimitInsurance);
    this.stats.insured = 0;
    this.warnedXff = false;
    // Resets reach the block cache of every node through pub/sub (see BlockSync).
    this.blockSync = new BlockSync(ctx, this.blocks, pubsub);
    // The answer handlers of a hit `q` (see newHit), made once: no closure per call.
    this.softHit = ctx.soft('rateLimit', null);
    this.rethrow = (err) => {
      ctx.failed('rateLimit', err);
      throw err;
    };
    this.tallyHit = (v, q) => this.tally(q.ip, q.endpoint, q.name, storedHit(v, q), q.lim);
    this.tallyFailure = (err, q) => this.tally(q.ip, q.endpoint, q.name, this.softHit(err), q.lim);
    // The ERP's pre-configured limiters: login's limit from `rateLimits` (read per request, so
    // configure() changes it), and 3 per 60 s.
    this.authLimiter = middleware(this, () => this.limitFor(LOGIN), { insured: true });
    this.strictLimiter = middleware(this, () => STRICT, { insured: true });
    // Key generators for createLimiter's `keyGenerator` (see ./keys.js).
    this.keys = Object.freeze({ usernameAndIp: (fieldOrFn) => usernameAndIp(this, fieldOrFn) });
  }

  // Replaces the limit table (configure() calls this with an already validated table). The
  // back end may have changed with it, so the block cache starts empty.
  setLimits(limits) {
    this.limits = limits;
    this.blocks.clear();
  }

  // Replaces the insurance settings (configure() calls this with validated ones).
  setInsurance(insured) {
    this.insured = insured;
    this.insurance.clear();
  }

  // Replaces the IPv6 grouping (configure() calls this with a validated one): the buckets
  // change, so the block cache starts empty.
  setIpv6Subnet(subnet) {
    this.ipv6Subnet = subnet;
    this.blocks.clear();
  }

  // An ip given to checkLimit/reset…/getIpStatus → its bucket; anything that is not an address
  // (a user id, 'unknown') is used as it is and validated as an id.
  bucketOf(ip) {
    if (typeof ip !== 'string') return ip;
    const b = normalizeIp(ip, this.ipv6Subnet);
    return b === null ? ip : b;
  }

  // → { max, windowSec } for an endpoint: its entry in `rateLimits`, else `default`.
  limitFor(endpoint) {
    return this.limits.get(endpoint) || this.limits.get('default');
  }

  // A hit answered by the block cache ({ total, leftMs, cached: true }), or undefined when the
  // client is not known to be over `lim.max` on counter `name` here (then the hit must go to
  // the store).
  cachedHit(ip, name, lim) {
    const t = now();
    const e = this.blocks.get(String(ip), name, t);
    if (e === undefined || e.total < lim.max) return undefined;
    if (this.blockSync.linkCheck(t)) return undefined;
    e.total++;
    this.stats.blockCacheHits++;
    return { total: e.total, leftMs: e.until - t, cached: true };
  }

  // One hit counted in the store → { total, leftMs, at }, or null when the back end failed
  // (counted as an error). `at` is when the hit was sent, on the monotonic clock.
  hit(ip, endpoint, name, lim) {
    return this.ctx.opArg(startHit, newHit(ip, endpoint, name, lim), storedHit, this.softHit);
  }

  // One hit counted in the store → { total, leftMs, at }; a back-end failure rejects (counted
  // as an error) instead of answering null: for callers with their own failure policy (the
  // express-rate-limit store).
  hitOrThrow(ip, name, lim) {
    return this.ctx.opArg(startHit, newHit(ip, name, name, lim), storedHit, this.rethrow);
  }

  // Reads ('peek'), takes a hit back from ('undo'), or keeps for `blockSec` from now
  // ('block', a lockout; `total` is written back if the counter just expired) the live
  // counter `name` of `ip`, without counting a hit → { total, leftMs, at } ({ total: 0 } when
  // there is no live counter). A back-end failure rejects (counted as an error). An undo also
  // drops the block-cache entry, so that the next hit asks the store.
  adjust(mode, ip, name, total = 0, blockSec = 0) {
    const q = { ip, name, total, blockSec, at: now(), leftMs: 0 };
    const start = mode === 'undo' ? startUndo : mode === 'block' ? startBlock : startPeek;
    if (mode === 'undo') this.blocks.delete(String(ip), name);
    return this.ctx.opArg(start, q, storedHit, this.rethrow);
  }

  // A hit on counter `name` of `endpoint` (or null: the back end failed) → the answer for
  // `lim`, counted in stats; a hit from the store that is over the limit enters the block cache
  // for the rest of its window.
  tally(ip, endpoint, name, hit, lim, insured = false) {
    if (hit === null) {
      this.stats.fallbacks++;
      // Plain fail-open, unless Redis failed on an insured (auth) endpoint; a cache configured
      // without a back end is disabled on purpose and fails open too.
      if (!insures(this.insured, endpoint, insured) || !this.ctx.bridge.native.isConfigured()) {
        this.decided(endpoint).failOpen++;
        return openResult(lim);
      }
      // The in-process insurance window decides (its hit is `cached`: it never enters the
      // block cache).
      this.stats.insured++;
      hit = this.insurance.hit(String(ip), name, lim);
    }
    const r = resultOf(hit, lim.max);
    if (r.allowed) {
      this.stats.allowed++;
      this.decided(endpoint).allowed++;
    } else {
      this.stats.blocked++;
      this.decided(endpoint).blocked++;
      if (!hit.cached && hit.leftMs > 0) {
        this.blocks.set(String(ip), name, hit.at + hit.leftMs, hit.total);
        if (this.blockSync.subscribedOn !== this.ctx.bridgeInstance) this.blockSync.ensureSubscribed();
      }
    }
    return r;
  }

  // The decision counters of an endpoint (metrics()).
  decided(endpoint) {
    let d = this.decisions.get(endpoint);
    if (d === undefined) {
      if (this.decisions.size >= DECISION_ENDPOINTS_MAX) endpoint = 'other';
      d = this.decisions.get(endpoint);
      if (d === undefined) {
        d = { allowed: 0, blocked: 0, failOpen: 0 };
        this.decisions.set(endpoint, d);
      }
    }
    return d;
  }

  // → { allowed, remaining, resetIn, total, limit }. Fails open when Redis fails. An address
  // counts under its bucket (see normalizeIp): '::ffff:1.2.3.4' is '1.2.3.4'.
  checkLimit(ip, endpoint) {
    let lim;
    try {
      checkIdType(ip, 'ip');
      checkString(endpoint, 'endpoint');
      lim = this.limitFor(endpoint);
    } catch (err) {
      return Promise.reject(err);
    }
    ip = this.bucketOf(ip);
    const cached = this.cachedHit(ip, endpoint, lim);
    if (cached !== undefined) return Promise.resolve(this.tally(ip, endpoint, endpoint, cached, lim));
    // One native operation whose answer is tallied in place: no closure and no second promise
    // per call (the hot path of every request).
    return this.ctx.opArg(startHit, newHit(ip, endpoint, endpoint, lim), this.tallyHit, this.tallyFailure);
  }

  // → 1 if the counter of ip on endpoint existed and was removed, else 0. The block cache of
  // this instance forgets it at once (and again when the store answers, in case a hit that was
  // in flight during the reset put it back); every other node's when the broadcast arrives.
  // `endpoint` names one counter: a custom limiter's is `{endpoint}#{max}per{windowSec}s`.
  resetLimit(ip, endpoint) {
    return this.resetCounter(this.bucketOf(ip), endpoint);
  }

  // resetLimit of a key used as it is (no address normalisation): the express-rate-limit
  // store's keys.
  resetCounter(ip, endpoint) {
    const forget = () => this.blocks.delete(String(ip), endpoint);
    return this.ctx.op(
      (n, id) => {
        checkIdType(ip, 'ip');
        checkString(endpoint, 'endpoint');
        n.rateReset(id, ip, endpoint);
        forget();
      },
      (removed) => {
        forget();
        return removed ? 1 : 0;
      },
      (err) => {
        forget();
        return this.ctx.soft('rateLimit', 0)(err);
      },
    ).then((n) => this.blockSync.broadcast(n, String(ip), endpoint));
  }

  // → the number of this IP's counters removed (never another bucket's); its block-cache
  // entries go too, on this instance at once and on every node when the broadcast arrives.
  // Any form of the address works ('[::ffff:1.2.3.4]:80' is '1.2.3.4'); an IPv6 address
  // resets its /ipv6Subnet bucket.
  resetAllLimitsForIp(ip) {
    ip = this.bucketOf(ip);
    const forget = () => this.blocks.deleteIp(String(ip));
    return this.ctx.op(
      (n, id) => {
        checkIdType(ip, 'ip');
        n.rateResetIp(id, ip);
        forget();
      },
      (n) => {
        forget();
        return n;
      },
      (err) => {
        forget();
        return this.ctx.soft('rateLimit', 0)(err);
      },
    ).then((n) => this.blockSync.broadcast(n, String(ip)));
  }

  // → { [endpoint]: { current, limit, resetIn } } for the IP's live counters ({} when Redis
  // fails); a custom limiter's counter is listed as `{endpoint}#{max}per{windowSec}s`.
  getIpStatus(ip) {
    ip = this.bucketOf(ip);
    return this.ctx.op(
      (n, id) => {
        checkIdType(ip, 'ip');
        n.rateIpStatus(id, ip);
      },
      replies.rateStatus,
      this.ctx.soft('rateLimit', {}),
    );
  }

  // Express middleware (see createLimiter in ./middleware.js for the options).
  createLimiter(options = {}) {
    return createLimiter(this, options);
  }
}

module.exports = { RateLimiter };
