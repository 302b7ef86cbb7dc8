'use strict';
// What a hit counts against: the endpoint of a request (its path spelled the way Express
// matches routes), the limit of each endpoint (the `rateLimits` table over the defaults), and
// the counter a limit counts on.

const { typeError, rangeError } = require('../errors');
// The bounds and the default table are the native side's (src/rules.rs).
const { RATE_LIMIT_MAX: MAX_LIMIT, RATE_LIMIT_MAX_WINDOW_SEC: MAX_WINDOW_SEC, DEFAULT_LIMITS } = require('../rules');
const LOGIN = '/api/auth/login';
const STRICT = Object.freeze({ max: 3, windowSec: 60 });

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

// The counter a limit of `lim` counts on for `endpoint`: the endpoint itself when `lim` is the
// endpoint's own limit (`conf`, from `rateLimits`: the guide's `rate:{ip}:{endpoint}`, shared by
// checkLimit, authLimiter and createLimiter() without max/windowSec), else the endpoint with the
// limit and window, `{endpoint}#{max}per{windowSec}s` (key `rate:{ip}:_api_x#10per30s`), so two
// limiters of different limits never share a count or a TTL. `#` never occurs in an endpoint of
// a request (endpointOf encodes it), so such a name cannot be reached by a path.
function counterName(endpoint, lim, conf) {
  if (lim === conf || (lim.max === conf.max && lim.windowSec === conf.windowSec)) return endpoint;
  return `${endpoint}#${lim.max}per${lim.windowSec}s`;
}

// Characters an id may not hold (rejected by the native check), and `#` (it separates a custom
// limiter's limit from its endpoint, see counterName), spelled as %XX in endpoints.
// eslint-disable-next-line no-control-regex
const UNSAFE = /[\s*?[\]#\u0000-\u001f\u007f-\u009f]/g;
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

module.exports = { DEFAULT_LIMITS, LOGIN, STRICT, checkLimitSpec, parseRateLimits, counterName, endpointOf };
