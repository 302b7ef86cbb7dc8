'use strict';
// rateLimiter: fixed-window limits per IP and endpoint (counted atomically in Redis, one script
// per hit), an in-process block cache in front of it, and the Express middleware built on them.

const net = require('net');
const { performance } = require('perf_hooks');
const { typeError, rangeError, checkIdType, checkString } = require('./errors');

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

// The hits one request already made, per counter: a request that passes several limiters
// counting on the same counter (same IP, endpoint and limit: authLimiter twice, or two identical
// createLimiter()s) is counted once. Limiters of different limits have different counters (see
// counterName), hence different memo entries.
const HITS = Symbol('bisman.rateLimit.hits');

// The pub/sub message kind of a reset (on cache:invalidate): { type, ip, endpoint? }.
const RATE_RESET = 'rate-reset';
// How often the block cache looks at its subscription's state (see linkCheck).
const LINK_CHECK_MS = 50;

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

// ---- client addresses ----------------------------------------------------------------------
// One client is one counter whatever form its address arrives in: IPv4-mapped IPv6
// (`::ffff:7.7.7.7`) is the IPv4 address, brackets, zone ids (`%eth0`) and ports (`1.2.3.4:5678`,
// `[2001:db8::1]:443`) are dropped, IPv6 is spelled canonically (RFC 5952) and, unless
// `ipv6Subnet` is false, grouped by its prefix (`2001:db8:0:ab00::/56`): one IPv6 subscriber
// usually holds a whole /56 or /64. The bucket form itself (`…::/56`) reads back as the bucket.

const DEFAULT_IPV6_SUBNET = 56;
// What the middleware counts a request under when its address is missing or not an address
// (a misconfigured proxy, a forged header): one shared bucket, so garbage cannot mint counters.
const UNKNOWN_CLIENT = 'unknown';
const MAX_ADDRESS_CHARS = 100;
const IPV4_PORT = /^(\d{1,3}(?:\.\d{1,3}){3}):\d{1,5}$/;
const PORT_SUFFIX = /^:\d{1,5}$/;
const PREFIX_SUFFIX = /^\/\d{1,3}$/;

// The `ipv6Subnet` option → a prefix length 1…128, or false (every IPv6 address on its own).
function parseIpv6Subnet(raw) {
  if (raw === undefined || raw === null) return DEFAULT_IPV6_SUBNET;
  if (raw === false) return false;
  if (typeof raw !== 'number') throw typeError('ipv6Subnet must be a prefix length from 1 to 128, or false');
  if (!Number.isInteger(raw) || raw < 1 || raw > 128) {
    throw rangeError(`ipv6Subnet must be a whole number from 1 to 128, or false (got ${raw})`);
  }
  return raw;
}

// An IPv6 address (validated by net.isIPv6, no zone) → its eight 16-bit groups.
function ipv6Groups(s) {
  const halves = s.split('::');
  const parse = (part) => {
    if (part === '') return [];
    const out = [];
    for (const g of part.split(':')) {
      if (g.includes('.')) {
        const b = g.split('.').map(Number);
        out.push((b[0] << 8) | b[1], (b[2] << 8) | b[3]);
      } else {
        out.push(parseInt(g, 16));
      }
    }
    return out;
  };
  const head = parse(halves[0]);
  if (halves.length === 1) return head;
  const tail = parse(halves[1]);
  return [...head, ...new Array(8 - head.length - tail.length).fill(0), ...tail];
}

// Eight groups → the RFC 5952 spelling (lower case, the longest run of two or more zero groups
// as `::`, the first one on a tie).
function ipv6Text(g) {
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a) => a.map((x) => x.toString(16)).join(':');
  if (best === -1) return hex(g);
  return `${hex(g.slice(0, best))}::${hex(g.slice(best + bestLen))}`;
}

// An address in any of the forms above → its bucket ('7.7.7.7', '2001:db8:0:ab00::/56', or the
// whole canonical IPv6 address when `subnet` is false); null when it is not an address.
function normalizeIp(raw, subnet) {
  if (typeof raw !== 'string') return null;
  let s = raw;
  if (net.isIPv4(s)) return s; // the common case, answered first
  s = s.trim();
  if (s.length === 0 || s.length > MAX_ADDRESS_CHARS) return null;
  if (s[0] === '[') {
    const end = s.indexOf(']');
    if (end === -1) return null;
    const rest = s.slice(end + 1);
    if (rest !== '' && !PORT_SUFFIX.test(rest)) return null;
    s = s.slice(1, end);
  } else {
    const m = IPV4_PORT.exec(s);
    if (m !== null) s = m[1];
  }
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  const slash = s.indexOf('/');
  if (slash !== -1) {
    if (!PREFIX_SUFFIX.test(s.slice(slash))) return null;
    s = s.slice(0, slash);
  }
  if (net.isIPv4(s)) return s;
  if (!net.isIPv6(s)) return null;
  const g = ipv6Groups(s.toLowerCase());
  if (g.length !== 8 || g.some((x) => !(x >= 0 && x <= 0xffff))) return null;
  // IPv4-mapped (::ffff:a.b.c.d, any spelling) → the IPv4 address
  if (g[0] === 0 && g[1] === 0 && g[2] === 0 && g[3] === 0 && g[4] === 0 && g[5] === 0xffff) {
    return `${g[6] >> 8}.${g[6] & 255}.${g[7] >> 8}.${g[7] & 255}`;
  }
  if (subnet === false) return ipv6Text(g);
  for (let i = 0; i < 8; i++) {
    const keep = Math.min(16, Math.max(0, subnet - i * 16));
    g[i] &= keep === 0 ? 0 : (0xffff << (16 - keep)) & 0xffff;
  }
  return `${ipv6Text(g)}/${subnet}`;
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

// One hit sent to the store, { ip, endpoint, name, lim, at }: `name` is the counter (see
// counterName), `at` when it was sent on the monotonic clock; the store's answer fills in
// { total, leftMs } (see storedHit).
function newHit(ip, endpoint, name, lim) {
  return { ip, endpoint, name, lim, at: performance.now(), total: 0, leftMs: 0 };
}

// The native call of a hit `q`.
function startHit(n, id, q) {
  n.rateHit(id, q.ip, q.name, q.lim.max, q.lim.windowSec);
}

// The store's answer [total, leftMs] → `q` as the counted hit { total, leftMs, at }.
function storedHit(v, q) {
  q.total = v[0];
  q.leftMs = v[1];
  return q;
}

// A counted hit ({ total, leftMs }) → the answer of checkLimit for a limit of `max`.
function resultOf(hit, max) {
  const { total } = hit;
  return { allowed: total <= max, remaining: Math.max(0, max - total), resetIn: Math.ceil(hit.leftMs / 1000), total, limit: max };
}

// The in-process block cache: once a client is over its limit on an endpoint, further hits in
// that window are answered from here, with no Redis call, until the window ends (or the limit
// is reset through this instance). ip → Map(endpoint → { until, total }); `until` is on the
// monotonic clock and never later than the window's end in Redis (it is measured from when the
// hit was sent). Bounded: when full, expired entries go, then the oldest clients.
const BLOCK_CACHE_MAX = 100000;
const DECISION_ENDPOINTS_MAX = 1000;

class BlockCache {
  constructor(max = BLOCK_CACHE_MAX) {
    this.max = max;
    this.byIp = new Map();
    this.size = 0;
  }

  // → the live entry of (ip, endpoint), or undefined.
  get(ip, endpoint, now) {
    const eps = this.byIp.get(ip);
    if (eps === undefined) return undefined;
    const e = eps.get(endpoint);
    if (e === undefined) return undefined;
    if (e.until > now) return e;
    this.delete(ip, endpoint);
    return undefined;
  }

  set(ip, endpoint, until, total) {
    let eps = this.byIp.get(ip);
    const e = eps && eps.get(endpoint);
    if (e !== undefined) {
      e.until = until;
      e.total = Math.max(e.total, total);
      return;
    }
    if (this.size >= this.max) this.evict(performance.now());
    eps = this.byIp.get(ip);
    if (eps === undefined) {
      eps = new Map();
      this.byIp.set(ip, eps);
    }
    eps.set(endpoint, { until, total });
    this.size++;
  }

  delete(ip, endpoint) {
    const eps = this.byIp.get(ip);
    if (eps !== undefined && eps.delete(endpoint)) {
      this.size--;
      if (eps.size === 0) this.byIp.delete(ip);
    }
  }

  deleteIp(ip) {
    const eps = this.byIp.get(ip);
    if (eps !== undefined) {
      this.size -= eps.size;
      this.byIp.delete(ip);
    }
  }

  clear() {
    this.byIp.clear();
    this.size = 0;
  }

  // Drops expired entries, then the oldest clients until a tenth of the room is free. A dropped
  // entry only costs its client's next hit one Redis call.
  evict(now) {
    for (const [ip, eps] of this.byIp) {
      for (const [endpoint, e] of eps) if (e.until <= now) this.delete(ip, endpoint);
    }
    for (const ip of this.byIp.keys()) {
      if (this.size < this.max * 0.9) break;
      this.deleteIp(ip);
    }
  }
}

// The "insurance" limiter: while Redis fails, hits on the auth endpoints are counted here, in
// this process, in fixed windows of the same { max, windowSec }, so each process stays within
// `max` (N processes: at most N × max across the cluster) instead of failing wide open where
// brute force hurts most. Bounded like the block cache.
const INSURANCE_MAX = 100000;
const DEFAULT_INSURED = Object.freeze(['/api/auth/login', '/api/auth/register', '/api/otp/send']);

// The `rateLimitInsurance` option → { on, endpoints }: `true`/undefined = the auth endpoints,
// an array = those endpoints, `false` = off (plain fail-open everywhere, the insured
// middlewares included).
function parseInsurance(raw) {
  if (raw === undefined || raw === null || raw === true) return { on: true, endpoints: new Set(DEFAULT_INSURED) };
  if (raw === false) return { on: false, endpoints: new Set() };
  if (!Array.isArray(raw) || !raw.every((e) => typeof e === 'string' && e !== '')) {
    throw typeError('rateLimitInsurance must be true, false or an array of endpoint strings');
  }
  return { on: true, endpoints: new Set(raw) };
}

class InsuranceLimiter {
  constructor(max = INSURANCE_MAX) {
    this.max = max;
    this.windows = new Map(); // `${endpoint}\n${ip}` → { end, total }
  }

  // One hit → { total, leftMs } in this process's window.
  hit(ip, endpoint, lim) {
    const now = performance.now();
    const key = `${endpoint}\n${ip}`;
    let w = this.windows.get(key);
    if (w === undefined || w.end <= now) {
      if (w === undefined && this.windows.size >= this.max) this.evict(now);
      w = { end: now + lim.windowSec * 1000, total: 0 };
      this.windows.set(key, w);
    }
    w.total++;
    return { total: w.total, leftMs: w.end - now, cached: true };
  }

  evict(now) {
    for (const [k, w] of this.windows) if (w.end <= now) this.windows.delete(k);
    for (const k of this.windows.keys()) {
      if (this.windows.size < this.max * 0.9) break;
      this.windows.delete(k);
    }
  }

  clear() {
    this.windows.clear();
  }
}

// Nothing could be counted: the request passes (fail-open).
function openResult(lim) {
  return { allowed: true, remaining: lim.max, resetIn: lim.windowSec, total: 0, limit: lim.max };
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

// req.ip, so that Express's `trust proxy` setting decides; the socket address without Express.
// Normalised to its bucket (see normalizeIp); a missing address or one that is no address
// counts under 'unknown'.
function clientIp(req, subnet) {
  const ip = req.ip != null ? req.ip : req.socket && req.socket.remoteAddress;
  const bucket = normalizeIp(ip, subnet);
  return bucket === null ? UNKNOWN_CLIENT : bucket;
}

// True when the request carries X-Forwarded-For but the app does not trust any proxy: req.ip is
// then the socket address and the header is ignored (right when the header is a client's lie,
// wrong when the app really sits behind a proxy and forgot `app.set('trust proxy', …)`).
function untrustedForwardedFor(req) {
  const h = req.headers;
  if (!h || h['x-forwarded-for'] === undefined) return false;
  const app = req.app;
  if (!app || typeof app.get !== 'function') return true;
  return !app.get('trust proxy');
}

const XFF_WARNING =
  'X-Forwarded-For arrived but Express\'s "trust proxy" is off: rate limits count the socket address ' +
  '(the proxy\'s, if there is one) and ignore the header. Behind a reverse proxy, set ' +
  'app.set(\'trust proxy\', …) to the proxy\'s address or hop count.';

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
    // Resets reach the block cache of every node: each reset is published on cache:invalidate
    // and each node drops what it names when the message arrives. The subscription that hears
    // them is started by the limiter itself (once per back end, when its block cache first
    // holds an entry), so no app has to call pubsub.subscribe() for this. A message missed while
    // the link was down (or dropped because JS lagged) cannot be known: once the link is seen
    // back (resubscribes or dropped changed), the whole block cache is dropped (linkCheck).
    this.pubsub = pubsub;
    this.subscribedOn = null; // the bridge whose subscription this limiter started
    this.linkOf = null; // the bridge and pub/sub state the block cache was last checked against
    this.linkState = '';
    this.linkNextCheck = 0;
    if (pubsub !== null && typeof pubsub.onInternalMessage === 'function') {
      pubsub.onInternalMessage(RATE_RESET, (m) => this.applyReset(m));
    }
    // The answer handlers of a hit `q` (see newHit), made once: no closure per call.
    this.softHit = ctx.soft('rateLimit', null);
    this.tallyHit = (v, q) => this.tally(q.ip, q.endpoint, q.name, storedHit(v, q), q.lim);
    this.tallyFailure = (err, q) => this.tally(q.ip, q.endpoint, q.name, this.softHit(err), q.lim);
    // The ERP's pre-configured limiters: login's limit from `rateLimits` (read per request, so
    // configure() changes it), and 3 per 60 s.
    this.authLimiter = this.middleware(() => this.limitFor(LOGIN), { insured: true });
    this.strictLimiter = this.middleware(() => STRICT, { insured: true });
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

  // A reset message from any node (this one included): its block-cache entries go.
  applyReset(m) {
    if (typeof m.ip !== 'string') return;
    if (typeof m.endpoint === 'string') this.blocks.delete(m.ip, m.endpoint);
    else this.blocks.deleteIp(m.ip);
  }

  // Publishes a reset for the other nodes' block caches (never rejects; a failure counts in
  // pubsub's stats) → the reset's answer `n`.
  broadcastReset(n, ip, endpoint) {
    if (this.pubsub === null) return n;
    const msg = endpoint === undefined ? { type: RATE_RESET, ip } : { type: RATE_RESET, ip, endpoint };
    return this.pubsub.publish('cache:invalidate', msg).then(
      () => n,
      () => n,
    );
  }

  // Starts the subscription that carries resets, once per back end (pubsub.subscribe() is
  // idempotent and never rejects for back-end reasons).
  ensureSubscribed() {
    const b = this.ctx.bridgeInstance;
    if (this.pubsub === null || b === null || this.subscribedOn === b) return;
    this.subscribedOn = b;
    this.pubsub.subscribe().catch(() => {});
  }

  // Drops the whole block cache when resets may have been missed: the back end changed, or the
  // subscription was lost and made again, or messages were dropped, since the last look (at
  // most every LINK_CHECK_MS, and only when an entry is about to answer) → true if it did.
  linkCheck(now) {
    if (now < this.linkNextCheck) return false;
    this.linkNextCheck = now + LINK_CHECK_MS;
    const b = this.ctx.bridgeInstance;
    let state = '';
    if (b !== null && this.pubsub !== null) {
      try {
        const st = JSON.parse(b.native.pubsubStatus());
        state = `${st.resubscribes}:${st.dropped}`;
      } catch {
        state = '';
      }
    }
    const stale = this.linkOf !== null && (this.linkOf !== b || this.linkState !== state);
    if (stale) this.blocks.clear();
    this.linkOf = b;
    this.linkState = state;
    return stale;
  }

  // → { max, windowSec } for an endpoint: its entry in `rateLimits`, else `default`.
  limitFor(endpoint) {
    return this.limits.get(endpoint) || this.limits.get('default');
  }

  // A hit answered by the block cache ({ total, leftMs, cached: true }), or undefined when the
  // client is not known to be over `lim.max` on counter `name` here (then the hit must go to
  // the store).
  cachedHit(ip, name, lim) {
    const now = performance.now();
    const e = this.blocks.get(String(ip), name, now);
    if (e === undefined || e.total < lim.max) return undefined;
    if (this.linkCheck(now)) return undefined;
    e.total++;
    this.stats.blockCacheHits++;
    return { total: e.total, leftMs: e.until - now, cached: true };
  }

  // One hit counted in the store → { total, leftMs, at }, or null when the back end failed
  // (counted as an error). `at` is when the hit was sent, on the monotonic clock.
  hit(ip, endpoint, name, lim) {
    return this.ctx.opArg(startHit, newHit(ip, endpoint, name, lim), storedHit, this.softHit);
  }

  // A hit on counter `name` of `endpoint` (or null: the back end failed) → the answer for
  // `lim`, counted in stats; a hit from the store that is over the limit enters the block cache
  // for the rest of its window.
  tally(ip, endpoint, name, hit, lim, insured = false) {
    if (hit === null) {
      this.stats.fallbacks++;
      const insure = this.insured.on && (insured || this.insured.endpoints.has(endpoint));
      // Plain fail-open, unless Redis failed on an insured (auth) endpoint; a cache configured
      // without a back end is disabled on purpose and fails open too.
      if (!insure || !this.ctx.bridge.native.isConfigured()) {
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
        if (this.subscribedOn !== this.ctx.bridgeInstance) this.ensureSubscribed();
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
    ip = this.bucketOf(ip);
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
    ).then((n) => this.broadcastReset(n, String(ip), endpoint));
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
    ).then((n) => this.broadcastReset(n, String(ip)));
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
      JSON.parse,
      this.ctx.soft('rateLimit', {}),
    );
  }

  // Express middleware (express-rate-limit's conventions where they apply):
  //   max, windowSec  a fixed limit (windowSec defaults to 60, max to 100); with neither, each
  //                   endpoint's limit from `rateLimits`
  //   keyGenerator(req) → the client key (default req.ip; may return a promise)
  //   skip(req, res) → true to let the request through uncounted (may return a promise)
  //   handler(req, res, next, options) answers a blocked request instead of the 429 JSON
  //   message          the body of the 429 instead of { error, retryAfter } (string: sent as
  //                    text; function (req, res) → the body, may return a promise)
  //   failClosed       answer 503 when Redis fails instead of letting the request pass
  createLimiter(options = {}) {
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
      resolve = (endpoint) => this.limitFor(endpoint);
    } else {
      const fixed = checkLimitSpec({ max: max === undefined ? DEFAULT_LIMITS.default.max : max, windowSec: windowSec === undefined ? 60 : windowSec }, 'createLimiter');
      resolve = () => fixed;
    }
    return this.middleware(resolve, { keyGenerator, skip, handler, message, failClosed, insured });
  }

  warnForwardedFor() {
    if (this.warnedXff) return;
    this.warnedXff = true;
    process.emitWarning(XFF_WARNING, { code: 'BISMAN_RATE_LIMIT_XFF' });
  }

  // Sets the headers and answers a blocked request (a promise when a handler or a message
  // function answers); true when the request may pass.
  respond(req, res, next, ip, endpoint, name, hit, lim, opts) {
    if (hit === null && opts.failClosed) {
      this.stats.blocked++;
      this.decided(endpoint).blocked++;
      setHeader(res, 'Retry-After', 1);
      send(res, 503, { error: 'Service unavailable', retryAfter: 1 });
      return false;
    }
    const r = this.tally(ip, endpoint, name, hit, lim, opts.insured);
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

  middleware(resolve, { keyGenerator, skip, handler, message, failClosed = false, insured = false }) {
    const limiter = this;
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
          if (!limiter.warnedXff && untrustedForwardedFor(req)) limiter.warnForwardedFor();
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
          pass = limiter.respond(req, res, next, ip, endpoint, name, h, lim, opts);
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
}

module.exports = { RateLimiter, parseRateLimits, parseInsurance, parseIpv6Subnet, normalizeIp, endpointOf, DEFAULT_LIMITS, BlockCache, InsuranceLimiter };
