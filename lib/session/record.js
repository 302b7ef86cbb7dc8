'use strict';
// What a session can be: which tokens can name one, what its expiry says, and the record
// setSession stores for it (JSON, TTL, user). No I/O here; lib/session/index.js uses it.

const { typeError, checkIdType } = require('../errors');
const { SESSION_MAX_TTL_MS: MAX_TTL_MS, SESSION_MAX_TOKEN_BYTES: MAX_TOKEN_BYTES } = require('../rules');

// Longest raw token (UTF-8 bytes) that can name a session: generous for JWTs, which can be
// several KB. A longer one, or an empty one, is no session: getSessionWithFallback answers
// null without asking the loader (the bound of src/rules.rs, which hashToken enforces).

// True when a token string cannot name a session (counted; the answer is null). Costs no
// byte count for a token that is short enough in any encoding.
function unusableToken(token) {
  const n = token.length;
  if (n === 0 || n > MAX_TOKEN_BYTES) return true;
  return n * 3 > MAX_TOKEN_BYTES && Buffer.byteLength(token, 'utf8') > MAX_TOKEN_BYTES;
}

// `expires_at` (or `expiresAt`) → ms since the epoch; NaN when it cannot be read. Read are:
// a Date; a number or a numeric string (node-postgres gives BIGINT as a string) as epoch
// SECONDS when its magnitude is below 1e11 (before 5138-11-16 in seconds, after 1973-03-03 in
// ms), else epoch MILLISECONDS; any other string through Date.parse (ISO 8601, RFC 2822).
// Numeric strings never go to Date.parse, which reads '12' as December 2001.
const NUMERIC = /^[+-]?\d+(\.\d+)?$/;
function epochMillis(n) {
  if (!Number.isFinite(n)) return NaN;
  return Math.abs(n) < 1e11 ? n * 1000 : n;
}
function expiryMillis(value) {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return epochMillis(value);
  if (typeof value === 'bigint') return epochMillis(Number(value));
  if (typeof value === 'string') {
    const s = value.trim();
    if (NUMERIC.test(s)) return epochMillis(Number(s));
    return s === '' ? NaN : Date.parse(s);
  }
  return NaN;
}

function expiryOf(data) {
  return data.expires_at != null ? data.expires_at : data.expiresAt;
}

// What a session object's expiry says: LIVE (none, or in the future), EXPIRED, or UNREADABLE
// (never served, never cached: fail closed).
const LIVE = 0;
const EXPIRED = 1;
const UNREADABLE = 2;
function expiryState(data, now) {
  const expires = expiryOf(data);
  if (expires == null) return LIVE;
  const t = expiryMillis(expires);
  if (Number.isNaN(t)) return UNREADABLE;
  return t <= now ? EXPIRED : LIVE;
}

const isSessionObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

// What setSession stores for `data`: { json, ttl (ms), userId }, or null when the session has
// already expired. Bad data throws TypeError (an unreadable expires_at is counted in
// `stats.badExpiry`).
function sessionRecord(data, stats) {
  if (!isSessionObject(data)) throw typeError('session data must be an object');
  let ttl = MAX_TTL_MS;
  const expires = expiryOf(data);
  if (expires != null) {
    const at = expiryMillis(expires);
    if (Number.isNaN(at)) {
      // fail closed: a session that cannot be dated is not stored (a caller's bug: refused
      // like any bad input; a loader row is filtered before it gets here)
      stats.badExpiry++;
      throw typeError('expires_at must be a Date, an ISO string, or epoch seconds/ms (a number or a numeric string)');
    }
    const left = at - Date.now();
    if (left <= 0) return null;
    ttl = Math.min(ttl, Math.ceil(left));
  }
  let userId = data.user_id != null ? data.user_id : data.userId;
  if (userId == null) userId = undefined;
  else checkIdType(userId, 'user_id');
  let json;
  try {
    json = JSON.stringify(data);
  } catch (err) {
    throw typeError(`session data is not serialisable to JSON: ${err.message}`);
  }
  return { json, ttl, userId };
}

module.exports = { MAX_TOKEN_BYTES, unusableToken, expiryState, LIVE, UNREADABLE, isSessionObject, sessionRecord };
