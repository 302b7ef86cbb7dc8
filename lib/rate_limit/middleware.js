'use strict';
// The Express middleware: a request's endpoint, limit and client → one hit per counter and
// request, the RateLimit-* headers, then next(), the 429 (or a handler's answer), or with
// `failClosed` the 503 when Redis fails.

const crypto = require('crypto');
const { performance } = require('perf_hooks');
const { typeError, rangeError, checkIdType } = require('../errors');
const { RATE_LIMIT_MAX_WINDOW_SEC: MAX_WINDOW_SEC } = require('../rules');
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

// The options of createLimiter (validated there) beyond max/windowSec; see createLimiter.
const STANDARD_HEADERS = new Set(['draft-6', 'draft-7', 'draft-8']);
const NAME = /^[A-Za-z0-9_.:-]{1,64}$/;

function checkBoolean(v, name) {
  if (v !== undefined && typeof v !== 'boolean') throw typeError(`${name} must be a boolean`);
  return v === true;
}

// `standardHeaders` → false or the draft whose RateLimit-* headers are sent (true = 'draft-6',
// as express-rate-limit reads it); default 'draft-6' (the headers this module always sent).
function parseStandardHeaders(v) {
  if (v === undefined || v === true) return 'draft-6';
  if (v === false) return false;
  if (typeof v !== 'string') throw typeError("standardHeaders must be 'draft-6', 'draft-7', 'draft-8', true or false");
  if (!STANDARD_HEADERS.has(v)) throw rangeError(`standardHeaders must be 'draft-6', 'draft-7' or 'draft-8' (got ${JSON.stringify(v)})`);
  return v;
}

// limiter.createLimiter(options): Express middleware (express-rate-limit's names and
// conventions where they apply):
//   max, windowSec  a fixed limit (windowSec defaults to 60, max to 100); `max` may be a
//                   function (req) → number (or a promise of one), read per request; with
//                   neither, each endpoint's limit from `rateLimits`
//   name            the limiter's own bucket: every path it guards shares one budget (counter
//                   `@{name}`); with `perPath: true`, one budget per path (`@{name}{endpoint}`).
//                   Without a name the counter is each path's (see counterName), as always
//   keyGenerator(req) → the client key (default req.ip; may return a promise)
//   skip(req, res) → true to let the request through uncounted (may return a promise)
//   skipSuccessfulRequests / skipFailedRequests  the hit is counted, then taken back when the
//                   response finishes successful / failed (requestWasSuccessful(req, res),
//                   default status < 400; a failed one also when the connection closes first)
//   blockDurationSec  once over the limit, the client stays blocked this long (in the store:
//                   every process sees the lockout)
//   handler(req, res, next, options) answers a blocked request instead of the 429 JSON
//   message          the body of the 429 instead of { error, retryAfter } (string: sent as
//                    text; function (req, res) → the body, may return a promise)
//   standardHeaders  'draft-6' (default) | 'draft-7' | 'draft-8' | true ('draft-6') | false
//   legacyHeaders    X-RateLimit-Limit/-Remaining/-Reset (default false)
//   failClosed       answer 503 when Redis fails instead of letting the request pass
/**
 * @param {import('./limiter').RateLimiter} limiter
 * @param {import('../../index').CreateLimiterOptions} [options]
 * @returns {(req: any, res: any, next: (err?: unknown) => void) => void}
 */
function createLimiter(limiter, options = {}) {
  if (options === null || typeof options !== 'object') throw typeError('createLimiter options must be an object');
  const { max, windowSec, keyGenerator, skip, handler, message, requestWasSuccessful, blockDurationSec, name, perPath } = options;
  for (const [n, fn] of [
    ['keyGenerator', keyGenerator],
    ['skip', skip],
    ['handler', handler],
    ['requestWasSuccessful', requestWasSuccessful],
  ]) {
    if (fn != null && typeof fn !== 'function') throw typeError(`${n} must be a function`);
  }
  const failClosed = checkBoolean(options.failClosed, 'failClosed');
  const insured = checkBoolean(options.insured, 'insured');
  const skipSuccessfulRequests = checkBoolean(options.skipSuccessfulRequests, 'skipSuccessfulRequests');
  const skipFailedRequests = checkBoolean(options.skipFailedRequests, 'skipFailedRequests');
  const legacyHeaders = checkBoolean(options.legacyHeaders, 'legacyHeaders');
  const standardHeaders = parseStandardHeaders(options.standardHeaders);
  if (name !== undefined) {
    if (typeof name !== 'string') throw typeError('name must be a string');
    if (!NAME.test(name)) throw rangeError(`name must be 1 to 64 letters, digits or _ . : - (got ${JSON.stringify(name.slice(0, 80))})`);
  }
  if (perPath !== undefined && typeof perPath !== 'boolean') throw typeError('perPath must be a boolean');
  if (perPath === false && name === undefined) throw typeError('perPath: false needs a name (the bucket all paths share)');
  let block = 0;
  if (blockDurationSec !== undefined) {
    if (typeof blockDurationSec !== 'number') throw typeError('blockDurationSec must be a number of seconds');
    if (!Number.isInteger(blockDurationSec) || blockDurationSec < 1 || blockDurationSec > MAX_WINDOW_SEC) {
      throw rangeError(`blockDurationSec must be a whole number of seconds from 1 to ${MAX_WINDOW_SEC} (got ${blockDurationSec})`);
    }
    block = blockDurationSec;
  }
  let resolve;
  let dynamic = null;
  if (typeof max === 'function') {
    const w = windowSec === undefined ? DEFAULT_LIMITS.default.windowSec : windowSec;
    checkLimitSpec({ max: 0, windowSec: w }, 'createLimiter');
    dynamic = { fn: max, windowSec: w };
    resolve = null;
  } else if (max === undefined && windowSec === undefined) {
    resolve = (endpoint) => limiter.limitFor(endpoint);
  } else {
    const fixed = checkLimitSpec({ max: max === undefined ? DEFAULT_LIMITS.default.max : max, windowSec: windowSec === undefined ? DEFAULT_LIMITS.default.windowSec : windowSec }, 'createLimiter');
    resolve = () => fixed;
  }
  // The counter a request's hit counts on (see counterName for the unnamed ones).
  let counterOf = null;
  if (name !== undefined) counterOf = perPath === true ? (endpoint) => `@${name}${endpoint}` : () => `@${name}`;
  else if (dynamic !== null) counterOf = (endpoint) => `${endpoint}#per${dynamic.windowSec}s`;
  const given = { max, windowSec, keyGenerator, skip, handler, message, failClosed, name, perPath, blockDurationSec, skipSuccessfulRequests, skipFailedRequests, standardHeaders, legacyHeaders };
  return middleware(limiter, resolve, {
    keyGenerator,
    skip,
    handler,
    message,
    failClosed,
    insured,
    given,
    name,
    counterOf,
    dynamic,
    block,
    skipSuccessfulRequests,
    skipFailedRequests,
    requestWasSuccessful: requestWasSuccessful || defaultWasSuccessful,
    standardHeaders,
    legacyHeaders,
  });
}

const defaultWasSuccessful = (req, res) => res.statusCode < 400;

// The limit `max(req)` answers, checked like a fixed one → { max, windowSec } (a promise when
// the function answers with one).
function dynamicLimit(dynamic, req) {
  const check = (m) => checkLimitSpec({ max: m, windowSec: dynamic.windowSec }, 'createLimiter max(req)');
  const m = dynamic.fn(req);
  if (m !== null && typeof m === 'object' && typeof m.then === 'function') return Promise.resolve(m).then(check);
  return check(m);
}

function warnForwardedFor(limiter) {
  if (limiter.warnedXff) return;
  limiter.warnedXff = true;
  process.emitWarning(XFF_WARNING, { code: 'BISMAN_RATE_LIMIT_XFF' });
}

// express-rate-limit's draft-8 policy name when the limiter has none: `{limit}-in-{duration}`.
function policyName(limit, windowSec) {
  const minutes = windowSec / 60;
  const hours = windowSec / 3600;
  const days = windowSec / 86400;
  let d;
  if (windowSec < 60) d = `${windowSec}sec`;
  else if (minutes < 60) d = `${minutes}min`;
  else if (hours < 24) d = `${hours}hr${hours > 1 ? 's' : ''}`;
  else d = `${days}day${days > 1 ? 's' : ''}`;
  return `${limit}-in-${d}`;
}

// express-rate-limit's draft-8 partition key: 12 hex digits of the key's SHA-256, as base64.
function partitionKey(key) {
  const hex = crypto.createHash('sha256').update(String(key)).digest('hex').slice(0, 12);
  return Buffer.from(hex).toString('base64');
}

function appendHeader(res, name, value) {
  if (res.headersSent) return;
  if (typeof res.append === 'function') {
    res.append(name, value);
    return;
  }
  const prev = res.getHeader(name);
  res.setHeader(name, prev === undefined ? value : [].concat(prev, value));
}

// The RateLimit headers of result `r`, formatted exactly as express-rate-limit v8 formats them:
// the `standardHeaders` draft's set, and with `legacyHeaders` the X-RateLimit-* set. `leftMs`:
// the window's (or lockout's) ms left; `key`: the client key (draft-8's partition key).
function setRateHeaders(res, opts, r, lim, leftMs, key) {
  if (res.headersSent) return;
  const reset = r.resetIn;
  if (opts.legacyHeaders) {
    setHeader(res, 'X-RateLimit-Limit', r.limit);
    setHeader(res, 'X-RateLimit-Remaining', r.remaining);
    setHeader(res, 'Date', new Date().toUTCString());
    setHeader(res, 'X-RateLimit-Reset', Math.ceil((Date.now() + leftMs) / 1000));
  }
  switch (opts.standardHeaders) {
    case 'draft-6':
      setHeader(res, 'RateLimit-Policy', `${r.limit};w=${lim.windowSec}`);
      setHeader(res, 'RateLimit-Limit', r.limit);
      setHeader(res, 'RateLimit-Remaining', r.remaining);
      setHeader(res, 'RateLimit-Reset', reset);
      break;
    case 'draft-7':
      setHeader(res, 'RateLimit-Policy', `${r.limit};w=${lim.windowSec}`);
      setHeader(res, 'RateLimit', `limit=${r.limit}, remaining=${r.remaining}, reset=${reset}`);
      break;
    case 'draft-8': {
      const id = opts.name !== undefined ? opts.name : policyName(r.limit, lim.windowSec);
      appendHeader(res, 'RateLimit', `"${id}"; r=${r.remaining}; t=${reset}`);
      appendHeader(res, 'RateLimit-Policy', `"${id}"; q=${r.limit}; w=${lim.windowSec}; pk=:${partitionKey(key)}:`);
      break;
    }
    default:
      break;
  }
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
  setRateHeaders(res, opts, r, lim, hit === null ? lim.windowSec * 1000 : hit.leftMs, ip);
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

// blockDurationSec: the hit that first goes over the limit (total = max + 1) keeps the counter
// in the store for the lockout, so every process answers 429 until it ends; the hit's window
// end moves with it (the block cache holds the client that long too). A failed lockout leaves
// the plain window.
function lockout(limiter, ip, name, h, lim, blockSec) {
  if (h === null || h.cached || h.total !== lim.max + 1) return h;
  return limiter.adjust('block', ip, name, h.total, blockSec).then(
    (b) => {
      // measured from when the hit was sent: never later than the lockout's end in the store
      h.leftMs = Math.max(h.leftMs, b.leftMs);
      return h;
    },
    () => h,
  );
}

// skipSuccessfulRequests / skipFailedRequests: a hit the store counted is taken back when the
// response finishes as the options say (or, for skipFailedRequests, when the connection closes
// before it finishes), at most once, and only while its window lasts. Hits answered in this
// process (block cache, insurance) were never written, and with a lockout a blocked hit stays.
function armUndo(limiter, req, res, ip, name, h, lim, opts) {
  if (h === null || h.cached || (opts.block > 0 && h.total > lim.max)) return;
  if (typeof res.once !== 'function') return;
  const undo = () => {
    if (h.undone) return;
    h.undone = true;
    if (performance.now() >= h.at + h.leftMs) return;
    limiter.adjust('undo', ip, name).catch(() => {});
  };
  res.once('finish', () => {
    let ok;
    try {
      ok = opts.requestWasSuccessful(req, res);
    } catch {
      return;
    }
    Promise.resolve(ok).then(
      (yes) => {
        if (yes ? opts.skipSuccessfulRequests : opts.skipFailedRequests) undo();
      },
      () => {},
    );
  });
  if (opts.skipFailedRequests) {
    res.once('close', () => {
      if (!res.writableEnded) undo();
    });
  }
}

// A middleware counting on `limiter` with the limit `resolve(endpoint)` gives for a request's
// endpoint (or, with `o.dynamic`, the limit its max(req) answers).
function middleware(limiter, resolve, o) {
  const { keyGenerator, skip, counterOf = null, dynamic = null } = o;
  const opts = {
    handler: o.handler,
    message: o.message,
    failClosed: o.failClosed === true,
    insured: o.insured === true,
    given: o.given || { keyGenerator, skip, handler: o.handler, message: o.message, failClosed: o.failClosed },
    name: o.name,
    block: o.block || 0,
    skipSuccessfulRequests: o.skipSuccessfulRequests === true,
    skipFailedRequests: o.skipFailedRequests === true,
    requestWasSuccessful: o.requestWasSuccessful,
    standardHeaders: o.standardHeaders === undefined ? 'draft-6' : o.standardHeaders,
    legacyHeaders: o.legacyHeaders === true,
  };
  const undoes = opts.skipSuccessfulRequests || opts.skipFailedRequests;
  const count = (req, res, next) => {
    let endpoint;
    let lim;
    let name;
    let key;
    try {
      endpoint = endpointOf(req);
      lim = dynamic !== null ? dynamicLimit(dynamic, req) : resolve(endpoint);
      name = counterOf !== null ? counterOf(endpoint) : counterName(endpoint, lim, limiter.limitFor(endpoint));
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
    const hitOf = (ip, lim) => {
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
        if (cached !== undefined) {
          pending = Promise.resolve(cached);
        } else {
          pending = limiter.hit(ip, endpoint, name, lim);
          if (opts.block > 0) pending = pending.then((h) => lockout(limiter, ip, name, h, lim, opts.block));
        }
        hits.set(memo, pending);
      }
      return pending;
    };
    // Headers, then next() or the 429 (a handler or message function may answer later).
    const finish = (ip, h, lim) => {
      let pass;
      try {
        if (undoes) armUndo(limiter, req, res, ip, name, h, lim, opts);
        pass = respond(limiter, req, res, next, ip, endpoint, name, h, lim, opts);
      } catch (err) {
        next(err);
        return;
      }
      if (pass === true) next();
      else if (pass !== false) Promise.resolve(pass).then((yes) => yes && next(), next);
    };
    const run = (ip, lim) => {
      let pending;
      // a keyGenerator's key that is an address counts under its bucket, as resetAllLimitsForIp
      // and getIpStatus will name it; any other key is used as it is
      if (keyGenerator) ip = limiter.bucketOf(ip);
      try {
        pending = hitOf(ip, lim);
      } catch (err) {
        next(err);
        return undefined;
      }
      return pending.then((h) => finish(ip, h, lim), next);
    };
    const later = (v) => v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function';
    // A key and a limit known now (req.ip, or a keyGenerator that answered at once) go straight
    // on: one promise, the hit's, between the request and next().
    if (!later(key) && !later(lim)) return run(key, lim);
    return Promise.all([key, lim]).then(([k, l]) => run(k, l), next);
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
