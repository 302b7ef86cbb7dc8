'use strict';
// rateLimiter: fixed-window limits per IP and endpoint (counted atomically in Redis, one script
// per hit), and the Express middleware built on them.

const { typeError, rangeError, checkIdType, checkString } = require('./errors');

// rateHit answers `total * HIT_SCALE + resetIn` in one number (see src/rate_limit.rs).
const HIT_SCALE = 1048576;
const MAX_LIMIT = 1e9;
const MAX_WINDOW_SEC = 604800;

const DEFAULT_LIMITS = Object.freeze({
  '/api/auth/login': Object.freeze({ max: 5, windowSec: 60 }),
  '/api/auth/register': Object.freeze({ max: 3, windowSec: 60 }),
  '/api/otp/send': Object.freeze({ max: 3, windowSec: 60 }),
  '/api/payments': Object.freeze({ max: 30, windowSec: 60 }),
  default: Object.freeze({ max: 100, windowSec: 60 }),
});
const LOGIN = '/api/auth/login';
const STRICT = Object.freeze({ max: 3, windowSec: 60 });

// The hits one request already made, per counter: a request that passes several limiters on
// the same IP and endpoint (an app-wide one and authLimiter, say) is counted once, and each
// limiter applies its own max to that count.
const HITS = Symbol('bisman.rateLimit.hits');

function checkLimitSpec(spec, name) {
  if (spec === null || typeof spec !== 'object') {
    throw typeError(`${name} must be an object { max, windowSec }`);
  }
  const { max, windowSec } = spec;
  if (!Number.isInteger(max) || max < 0 || max > MAX_LIMIT) {
    throw rangeError(`${name}.max must be a whole number from 0 to ${MAX_LIMIT} (got ${max})`);
  }
  if (!Number.isInteger(windowSec) || windowSec < 1 || windowSec > MAX_WINDOW_SEC) {
    throw rangeError(`${name}.windowSec must be a whole number of seconds from 1 to ${MAX_WINDOW_SEC} (got ${windowSec})`);
  }
  return Object.freeze({ max, windowSec });
}

// The `rateLimits` option merged over the defaults → Map(endpoint → { max, windowSec }).
function parseRateLimits(raw) {
  const table = new Map(Object.entries(DEFAULT_LIMITS));
  if (raw == null) return table;
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw typeError('rateLimits must be an object { [endpoint]: { max, windowSec }, default? }');
  }
  for (const [endpoint, spec] of Object.entries(raw)) {
    table.set(endpoint, checkLimitSpec(spec, `rateLimits[${JSON.stringify(endpoint)}]`));
  }
  return table;
}

function unpack(v, max) {
  const resetIn = v % HIT_SCALE;
  const total = (v - resetIn) / HIT_SCALE;
  return { allowed: total <= max, remaining: Math.max(0, max - total), resetIn, total, limit: max };
}

// Nothing could be counted: the request passes (fail-open).
function openResult(lim) {
  return { allowed: true, remaining: lim.max, resetIn: lim.windowSec, total: 0, limit: lim.max };
}

// Characters an id may not hold (rejected by the native check), spelled as %XX in endpoints.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\s*?[\]\u0000-\u001f\u007f-\u009f]/g;
const pctEncode = (c) => Array.from(Buffer.from(c), (b) => `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
const MAX_ENDPOINT_BYTES = 400;

// The endpoint a request counts against: req.baseUrl + req.path, spelled the way Express
// matches routes, so that `/API/auth/login/` cannot open a second counter next to
// `/api/auth/login` (lower-cased unless the app enables 'case sensitive routing'; trailing
// slashes dropped). Characters an id may not hold are percent-encoded, and very long paths
// are cut (they then share a counter, which only makes the limit stricter).
function endpointOf(req) {
  let path = req.path;
  if (typeof path !== 'string') {
    const url = typeof req.url === 'string' ? req.url : '/';
    const q = url.indexOf('?');
    path = q === -1 ? url : url.slice(0, q);
  }
  let e = (typeof req.baseUrl === 'string' ? req.baseUrl : '') + path;
  while (e.length > 1 && e.endsWith('/')) e = e.slice(0, -1);
  if (e === '') e = '/';
  const app = req.app;
  if (!(app && typeof app.enabled === 'function' && app.enabled('case sensitive routing'))) e = e.toLowerCase();
  e = e.replace(UNSAFE, pctEncode);
  if (Buffer.byteLength(e) > MAX_ENDPOINT_BYTES) e = Buffer.from(e).subarray(0, MAX_ENDPOINT_BYTES).toString();
  return e;
}

// req.ip, so that Express's `trust proxy` setting decides; the socket address without Express.
function clientIp(req) {
  const ip = req.ip != null ? req.ip : req.socket && req.socket.remoteAddress;
  return ip == null || ip === '' ? 'unknown' : ip;
}

function setHeader(res, name, value) {
  if (!res.headersSent) res.setHeader(name, String(value));
}

function sendJson(res, status, body) {
  if (typeof res.status === 'function' && typeof res.json === 'function') {
    res.status(status).json(body);
    return;
  }
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.end(JSON.stringify(body));
}

class RateLimiter {
  constructor(ctx, limits = parseRateLimits(ctx.options.rateLimits)) {
    this.ctx = ctx;
    this.stats = ctx.stats.rateLimit;
    this.stats.allowed = 0;
    this.stats.blocked = 0;
    this.limits = limits;
    // The ERP's pre-configured limiters: login's limit from `rateLimits` (read per request, so
    // configure() changes it), and 3 per 60 s.
    this.authLimiter = this.middleware(() => this.limitFor(LOGIN), {});
    this.strictLimiter = this.middleware(() => STRICT, {});
  }

  // Replaces the limit table (configure() calls this with an already validated table).
  setLimits(limits) {
    this.limits = limits;
  }

  // → { max, windowSec } for an endpoint: its entry in `rateLimits`, else `default`.
  limitFor(endpoint) {
    return this.limits.get(endpoint) || this.limits.get('default');
  }

  // One hit → the packed reply, or null when the back end failed (counted as an error).
  hit(ip, endpoint, lim) {
    return this.ctx.op(
      (n, id) => n.rateHit(id, ip, endpoint, lim.max, lim.windowSec),
      undefined,
      this.ctx.soft('rateLimit', null),
    );
  }

  tally(v, lim) {
    if (v === null) {
      this.stats.fallbacks++;
      return openResult(lim);
    }
    const r = unpack(v, lim.max);
    if (r.allowed) this.stats.allowed++;
    else this.stats.blocked++;
    return r;
  }

  // → { allowed, remaining, resetIn, total, limit }. Fails open when Redis fails.
  checkLimit(ip, endpoint) {
    let lim;
    try {
      checkIdType(ip, 'ip');
      checkString(endpoint, 'endpoint');
      lim = this.limitFor(endpoint);
    } catch (err) {
      return Promise.reject(err);
    }
    return this.hit(ip, endpoint, lim).then((v) => this.tally(v, lim));
  }

  // → 1 if the counter of ip on endpoint existed and was removed, else 0.
  resetLimit(ip, endpoint) {
    return this.ctx.op(
      (n, id) => {
        checkIdType(ip, 'ip');
        checkString(endpoint, 'endpoint');
        n.rateReset(id, ip, endpoint);
      },
      (removed) => (removed ? 1 : 0),
      this.ctx.soft('rateLimit', 0),
    );
  }

  // → the number of this IP's counters removed (never another IP's).
  resetAllLimitsForIp(ip) {
    return this.ctx.op(
      (n, id) => {
        checkIdType(ip, 'ip');
        n.rateResetIp(id, ip);
      },
      undefined,
      this.ctx.soft('rateLimit', 0),
    );
  }

  // → { [endpoint]: { current, limit, resetIn } } for the IP's live counters ({} when Redis fails).
  getIpStatus(ip) {
    return this.ctx.op(
      (n, id) => {
        checkIdType(ip, 'ip');
        n.rateIpStatus(id, ip);
      },
      JSON.parse,
      this.ctx.soft('rateLimit', {}),
    );
  }

  // Express middleware: { max, windowSec } (a fixed limit; windowSec defaults to 60, max to
  // 100) or neither (each endpoint's limit from `rateLimits`); keyGenerator(req) → the client
  // key (default req.ip); failClosed: answer 503 when Redis fails instead of letting the
  // request pass.
  createLimiter(options = {}) {
    if (options === null || typeof options !== 'object') throw typeError('createLimiter options must be an object');
    const { max, windowSec, keyGenerator, failClosed = false } = options;
    if (keyGenerator != null && typeof keyGenerator !== 'function') throw typeError('keyGenerator must be a function (req) => key');
    if (typeof failClosed !== 'boolean') throw typeError('failClosed must be a boolean');
    let resolve;
    if (max === undefined && windowSec === undefined) {
      resolve = (endpoint) => this.limitFor(endpoint);
    } else {
      const fixed = checkLimitSpec({ max: max === undefined ? DEFAULT_LIMITS.default.max : max, windowSec: windowSec === undefined ? 60 : windowSec }, 'createLimiter');
      resolve = () => fixed;
    }
    return this.middleware(resolve, { keyGenerator, failClosed });
  }

  // Sets the headers and answers a blocked request; true when the request may pass.
  respond(v, lim, failClosed, res) {
    if (v === null && failClosed) {
      this.stats.blocked++;
      setHeader(res, 'Retry-After', 1);
      sendJson(res, 503, { error: 'Service unavailable', retryAfter: 1 });
      return false;
    }
    const r = this.tally(v, lim);
    setHeader(res, 'RateLimit-Limit', r.limit);
    setHeader(res, 'RateLimit-Remaining', r.remaining);
    setHeader(res, 'RateLimit-Reset', r.resetIn);
    if (r.allowed) return true;
    const retryAfter = Math.max(1, r.resetIn);
    setHeader(res, 'Retry-After', retryAfter);
    sendJson(res, 429, { error: 'Too many requests', retryAfter });
    return false;
  }

  middleware(resolve, { keyGenerator, failClosed = false }) {
    const limiter = this;
    return function rateLimitMiddleware(req, res, next) {
      let endpoint;
      let lim;
      let key;
      try {
        endpoint = endpointOf(req);
        lim = resolve(endpoint);
        key = keyGenerator ? keyGenerator(req) : clientIp(req);
      } catch (err) {
        next(err);
        return;
      }
      Promise.resolve(key)
        .then((ip) => {
          checkIdType(ip, 'rate limit key');
          let hits = req[HITS];
          if (hits === undefined) {
            hits = new Map();
            req[HITS] = hits;
          }
          const memo = `${ip}\n${endpoint}`;
          let pending = hits.get(memo);
          if (pending === undefined) {
            pending = limiter.hit(ip, endpoint, lim);
            hits.set(memo, pending);
          }
          return pending;
        })
        .then((v) => {
          let pass;
          try {
            pass = limiter.respond(v, lim, failClosed, res);
          } catch (err) {
            next(err);
            return;
          }
          if (pass) next();
        }, next);
    };
  }
}

module.exports = { RateLimiter, parseRateLimits, endpointOf, DEFAULT_LIMITS };
