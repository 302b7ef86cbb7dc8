'use strict';
// What a hit gets when Redis cannot count it: the failure policy (fail open, or count it in
// this process on the insured endpoints; the middleware's `failClosed` answers 503 instead)
// and the in-process "insurance" counting it falls back to.

const { performance } = require('perf_hooks');
const { typeError } = require('../errors');

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

// Whether a hit Redis could not count on `endpoint` is counted by the insurance (else it
// fails open): insurance on, and the endpoint insured by the option or by its middleware
// (`insured`). The caller checks too that a back end is configured: a cache configured
// without one is disabled on purpose and fails open.
function insures(settings, endpoint, insured) {
  return settings.on && (insured || settings.endpoints.has(endpoint));
}

module.exports = { parseInsurance, InsuranceLimiter, openResult, insures };
