'use strict';
// The Express middleware: a request's endpoint, limit and client → one hit per counter and
// request, the RateLimit-* headers, then next(), the 429 (or a handler's answer), or with
// `failClosed` the 503 when Redis fails.

const { typeError, checkIdType } = require('../errors');
const { DEFAULT_LIMITS, checkLimitSpec, counterName, endpointOf } = require('./endpoints');
const { clientIp, untrustedForwardedFor, XFF_WARNING } = require('./addresses');

// The hits one request already made, per counter: a request that passes several limiters
// counting on the same counter (same IP, endpoint and limit: authLimiter twice, or two identical
// createLimiter()s) is counted once. Limiters of different limits have different counters (see
// counterName), hence different memo entries.
const HITS = Symbol('bisman.rateLimit.hits');

function setHeader(res, name, value) {
  if (!res.headersSent) res.setHeader(name, String(value));
}

// A string is sent as it is, anything else as JSON.
function send(res, status, body) {
  if (typeof res.status === 'function' && typeof res.json === 'function') {
    if (typeof body === 'string') res.status(status).send(body);
    else res.status(status).json(body);
    return;
  }
  res.statusCode = status;
  if (typeof body === 'string') {
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(body);
  } else {
    res.setHeader('Content-Type', 'application/json; charset=utf-8');
    res.end(JSON.stringify(body));
  }
}

// limiter.createLimiter(options): Express middleware (express-rate-limit's conventions where
// they apply):
//   max, windowSec  a fixed limit (windowSec defaults to 60, max to 100); with neither, each
//                   endpoint's limit from `rateLimits`
//   keyGenerator(req) → the client key (default req.ip; may return a promise)
//   skip(req, res) → true to let the request through uncounted (may return a promise)
//   handler(req, res, next, options) answers a blocked request instead of the 429 JSON
//   message          the body of the 429 instead of { error, retryAfter } (string: sent as
//                    text; function (req, res) → the body, may return a promise)
//   failClosed       answer 503 when Redis fails instead of letting the request pass
function createLimiter(limiter, options = {}) {
  if (options === null || typeof options !== 'object') throw typeError('createLimiter options must be an object');
  const { max, windowSec, keyGenerator, skip, handler, message, failClosed = false, insured = false } = options;
  for (const [name, fn] of [
    ['keyGenerator', keyGenerator],
    ['skip', skip],
    ['handler', handler],
  ]) {
    if (fn != null && typeof fn !== 'function') throw typeError(`${name} must be a function`);
  }
  if (typeof failClosed !== 'boolean') throw typeError('failClosed must be a boolean');
  if (typeof insured !== 'boolean') throw typeError('insured must be a boolean');
  let resolve;
  if (max === undefined && windowSec === undefined) {
    resolve = (endpoint) => limiter.limitFor(endpoint);
  } else {
    const fixed = checkLimitSpec({ max: max === undefined ? DEFAULT_LIMITS.default.max : max, windowSec: windowSec === undefined ? DEFAULT_LIMITS.default.windowSec : windowSec }, 'createLimiter');
    resolve = () => fixed;
  }
  return middleware(limiter, resolve, { keyGenerator, skip, handler, message, failClosed, insured });
}

function warnForwardedFor(limiter) {
  if (limiter.warnedXff) return;
  limiter.warnedXff = true;
  process.emitWarning(XFF_WARNING, { code: 'BISMAN_RATE_LIMIT_XFF' });
}

// Sets the headers and answers a blocked request (a promise when a handler or a message
// function answers); true when the request may pass.
function respond(limiter, req, res, next, ip, endpoint, name, hit, lim, opts) {
  if (hit === null && opts.failClosed) {
    limiter.stats.blocked++;
    limiter.decided(endpoint).blocked++;
    setHeader(res, 'Retry-After', 1);
    send(res, 503, { error: 'Service unavailable', retryAfter: 1 });
    return false;
  }
  const r = limiter.tally(ip, endpoint, name, hit, lim, opts.insured);
  req.rateLimit = r;
  setHeader(res, 'RateLimit-Policy', `${lim.max};w=${lim.windowSec}`);
  setHeader(res, 'RateLimit-Limit', r.limit);
  setHeader(res, 'RateLimit-Remaining', r.remaining);
  setHeader(res, 'RateLimit-Reset', r.resetIn);
  if (r.allowed) return true;
  const retryAfter = Math.max(1, r.resetIn);
  setHeader(res, 'Retry-After', retryAfter);
  const { handler, message } = opts;
  if (handler) {
    const options = Object.freeze({ ...opts.given, max: lim.max, limit: lim.max, windowSec: lim.windowSec, windowMs: lim.windowSec * 1000, statusCode: 429, message: message === undefined ? { error: 'Too many requests', retryAfter } : message });
    return Promise.resolve(handler(req, res, next, options)).then(() => false);
  }
  if (message === undefined) {
    send(res, 429, { error: 'Too many requests', retryAfter });
    return false;
  }
  if (typeof message === 'function') {
    return Promise.resolve(message(req, res)).then((body) => {
      send(res, 429, body);
      return false;
    });
  }
  send(res, 429, message);
  return false;
}

// A middleware counting on `limiter` with the limit `resolve(endpoint)` gives for a request's
// endpoint.
function middleware(limiter, resolve, { keyGenerator, skip, handler, message, failClosed = false, insured = false }) {
  const opts = { handler, message, failClosed, insured, given: { keyGenerator, skip, handler, message, failClosed } };
  const count = (req, res, next) => {
    let endpoint;
    let lim;
    let name;
    let key;
    try {
      endpoint = endpointOf(req);
      lim = resolve(endpoint);
      name = counterName(endpoint, lim, limiter.limitFor(endpoint));
      if (keyGenerator) {
        key = keyGenerator(req);
      } else {
        key = clientIp(req, limiter.ipv6Subnet);
        if (!limiter.warnedXff && untrustedForwardedFor(req)) warnForwardedFor(limiter);
      }
    } catch (err) {
      next(err);
      return undefined;
    }
    // The hit of (ip, counter) for this request: one per request even if the same limiter
    // (or an identical one) runs twice on it (app.use and a route).
    const hitOf = (ip) => {
      checkIdType(ip, 'rate limit key');
      let hits = req[HITS];
      if (hits === undefined) {
        hits = new Map();
        req[HITS] = hits;
      }
      const memo = `${ip}\n${name}`;
      let pending = hits.get(memo);
      if (pending === undefined) {
        const cached = limiter.cachedHit(ip, name, lim);
        pending = cached !== undefined ? Promise.resolve(cached) : limiter.hit(ip, endpoint, name, lim);
        hits.set(memo, pending);
      }
      return pending;
    };
    // Headers, then next() or the 429 (a handler or message function may answer later).
    const finish = (ip, h) => {
      let pass;
      try {
        pass = respond(limiter, req, res, next, ip, endpoint, name, h, lim, opts);
      } catch (err) {
        next(err);
        return;
      }
      if (pass === true) next();
      else if (pass !== false) Promise.resolve(pass).then((yes) => yes && next(), next);
    };
    const run = (ip) => {
      let pending;
      // a keyGenerator's key that is an address counts under its bucket, as resetAllLimitsForIp
      // and getIpStatus will name it; any other key is used as it is
      if (keyGenerator) ip = limiter.bucketOf(ip);
      try {
        pending = hitOf(ip);
      } catch (err) {
        next(err);
        return undefined;
      }
      return pending.then((h) => finish(ip, h), next);
    };
    // A key known now (req.ip, or a keyGenerator that answered at once) goes straight on:
    // one promise, the hit's, between the request and next().
    if (key === null || (typeof key !== 'object' && typeof key !== 'function')) return run(key);
    return Promise.resolve(key).then(run, next);
  };
  return function rateLimitMiddleware(req, res, next) {
    if (!skip) {
      count(req, res, next);
      return;
    }
    let skipped;
    try {
      skipped = skip(req, res);
    } catch (err) {
      next(err);
      return;
    }
    Promise.resolve(skipped).then((yes) => {
      if (yes) next();
      else count(req, res, next);
    }, next);
  };
}

module.exports = { createLimiter, middleware };
