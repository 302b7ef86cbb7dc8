'use strict';
// The rules shared with the native side (src/rules.rs), read from the binding once and frozen:
// error codes and which mean "the back end failed", pub/sub channels, TTL and size bounds,
// default rate limits and super roles. Nothing here is spelled again in JS.

const native = require('./native');

function deepFreeze(v) {
  if (v !== null && typeof v === 'object') {
    for (const k of Object.keys(v)) deepFreeze(v[k]);
    Object.freeze(v);
  }
  return v;
}

const RULES = deepFreeze(native.rules());

// `{ endpoint: { max, windowSec } }`, in the native order, 'default' included.
const DEFAULT_LIMITS = deepFreeze(Object.fromEntries(RULES.defaultRateLimits.map(({ endpoint, max, windowSec }) => [endpoint, { max, windowSec }])));

module.exports = Object.freeze({
  RULES,
  // Every error code by name: invalidArg, valueTooLarge, outOfRange, disabled, timeout,
  // unavailable, redis, closed, circuitOpen, internal, overload.
  CODES: RULES.errorCodes,
  BACKEND_CODES: RULES.backendFailureCodes,
  // The channels by name (permissions, sessions, cache) and in the native order.
  CHANNEL: RULES.channel,
  CHANNELS: RULES.channels,
  SESSION_MAX_TTL_MS: RULES.sessionMaxTtlMs,
  SESSION_MAX_TOKEN_BYTES: RULES.sessionMaxTokenBytes,
  LOCK_MAX_TTL_MS: RULES.lockMaxTtlMs,
  RATE_LIMIT_MAX: RULES.rateLimitMax,
  RATE_LIMIT_MAX_WINDOW_SEC: RULES.rateLimitMaxWindowSec,
  DEFAULT_LIMITS,
  DEFAULT_SUPER_ROLES: RULES.defaultSuperRoles,
  PERMISSION_WILDCARD: RULES.permissionWildcard,
  PERM_USER_TTL_MIN_SEC: RULES.permUserTtlMinSec,
  PERM_USER_TTL_MAX_SEC: RULES.permUserTtlMaxSec,
  // The delivery format of answers (src/bridge.rs Batch): row size and kinds of a head row.
  BATCH: RULES.batch,
  NEAR_WORD_GEN: RULES.nearWordGen,
  NEAR_WORD_TRUSTED: RULES.nearWordTrusted,
});
