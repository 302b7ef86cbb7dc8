'use strict';
// sessionCache: sessions by token hash, indexed per user, with the database loader as fallback.

const native = require('./native');
const { typeError, checkIdType, checkString } = require('./errors');

const MAX_TTL_MS = 3600 * 1000;
// Longest raw token (UTF-8 bytes) that can name a session: generous for JWTs, which can be
// several KB. A longer one, or an empty one, is no session: getSessionWithFallback answers
// null without asking the loader (MAX_TOKEN_BYTES in src/session.rs is the same bound).
const MAX_TOKEN_BYTES = 64 * 1024;

// True when a token string cannot name a session (counted; the answer is null). Costs no
// byte count for a token that is short enough in any encoding.
function unusableToken(token) {
  const n = token.length;
  if (n === 0 || n > MAX_TOKEN_BYTES) return true;
  return n * 3 > MAX_TOKEN_BYTES && Buffer.byteLength(token, 'utf8') > MAX_TOKEN_BYTES;
}

// expires_at as ISO string, Date, or epoch number (seconds below 1e11, else milliseconds).
function expiryMillis(value) {
  let t;
  if (value instanceof Date) t = value.getTime();
  else if (typeof value === 'number') t = value < 1e11 ? value * 1000 : value;
  else if (typeof value === 'string') t = Date.parse(value);
  else t = NaN;
  if (!Number.isFinite(t)) throw typeError('expires_at must be a date, an ISO string or an epoch number');
  return t;
}

function expiryOf(data) {
  return data.expires_at != null ? data.expires_at : data.expiresAt;
}

function isExpired(row) {
  const expires = expiryOf(row);
  if (expires == null) return false;
  try {
    return expiryMillis(expires) <= Date.now();
  } catch {
    return false;
  }
}

class SessionCache {
  constructor(ctx) {
    this.ctx = ctx;
    this.stats = ctx.stats.session;
    this.countHit = ctx.hitCounter('session');
    // Tokens that could not name a session (empty, or over MAX_TOKEN_BYTES): answered null.
    this.stats.rejectedTokens = 0;
    // getSessionWithFallback's handlers, made once (the hot path makes no closure per call).
    this.fallbackStart = (n, id, token) => {
      checkString(token, 'token');
      if (unusableToken(token)) {
        this.stats.rejectedTokens++;
        return null; // answered at once: no Redis read, no loader call
      }
      n.sessionGetByToken(id, token);
    };
    this.fallbackValue = (json, token) => {
      const data = this.countHit(json);
      if (data === null) return this.loadSession(token);
      data.source = 'cache';
      return data;
    };
    this.fallbackError = (err, token) => {
      this.ctx.failed('session', err);
      return this.loadSession(token, true);
    };
  }

  // → true, or false when the session has already expired or could not be stored.
  setSession(tokenHash, data) {
    return this.ctx.op(
      (n, id) => {
        checkString(tokenHash, 'tokenHash');
        if (data === null || typeof data !== 'object' || Array.isArray(data)) {
          throw typeError('session data must be an object');
        }
        let ttl = MAX_TTL_MS;
        const expires = expiryOf(data);
        if (expires != null) {
          const left = expiryMillis(expires) - Date.now();
          if (left <= 0) return false; // nothing stored
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
        n.sessionSet(id, tokenHash, json, ttl, userId);
      },
      undefined,
      this.ctx.soft('session', false),
    );
  }

  // → the stored data, or null (cache only; null too when Redis is unavailable).
  getSession(tokenHash) {
    return this.ctx.op(
      (n, id) => {
        checkString(tokenHash, 'tokenHash');
        n.sessionGet(id, tokenHash);
      },
      this.countHit,
      this.ctx.soft('session', null),
    );
  }

  // Raw token → { ...data, source: 'cache' | 'database' } or null. The token is hashed
  // natively; on a miss (or when Redis fails) loaders.session(token) is asked once for all
  // concurrent callers. Any string answers (a token comes from a request): an empty one or one
  // over 64 KiB is null at once; only a non-string is refused (TypeError, a caller's bug).
  getSessionWithFallback(token) {
    return this.ctx.opArg(this.fallbackStart, token, this.fallbackValue, this.fallbackError);
  }

  loadSession(token, redisFailed = false) {
    const loader = this.ctx.loader('session');
    if (loader === null) return null;
    const hash = native.hashToken(token);
    return this.ctx
      .singleFlight(`session:${hash}`, async () => {
        this.stats.loaderCalls++;
        const row = await loader(token);
        if (row == null || typeof row !== 'object' || isExpired(row)) return null;
        // A row we cannot cache (bad user id, Redis down) is still the database's answer.
        // When Redis just failed, the write is not waited for (no second timeout); otherwise
        // it is, so that the next call finds the session in the cache.
        const caching = this.setSession(hash, row).catch(() => false);
        if (!redisFailed) await caching;
        this.stats.fallbacks++;
        return row;
      })
      .then((row) => (row === null ? null : { ...row, source: 'database' }));
  }

  // → true if a session was removed (it also leaves its user's set).
  invalidateSession(tokenHash) {
    return this.ctx.op(
      (n, id) => {
        checkString(tokenHash, 'tokenHash');
        n.sessionRemove(id, tokenHash);
      },
      undefined,
      this.ctx.soft('session', false),
    );
  }

  // → the number of sessions removed.
  invalidateUserSessions(userId) {
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        n.sessionRemoveUser(id, userId);
      },
      undefined,
      this.ctx.soft('session', 0),
    );
  }

  // → the token hashes of the user's live sessions ([] when Redis is unavailable).
  getUserSessions(userId) {
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        n.sessionListUser(id, userId);
      },
      undefined,
      this.ctx.soft('session', []),
    );
  }
}

module.exports = { SessionCache, MAX_TOKEN_BYTES };
