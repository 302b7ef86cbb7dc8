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

class SessionCache {
  constructor(ctx) {
    this.ctx = ctx;
    this.stats = ctx.stats.session;
    // Tokens that could not name a session (empty, or over MAX_TOKEN_BYTES): answered null.
    this.stats.rejectedTokens = 0;
    // Sessions whose expires_at could not be read (setSession, a loader row, a cached value):
    // never served, never stored.
    this.stats.badExpiry = 0;
    // Cached values that were not a session (not a JSON object): dropped, read as a miss.
    this.stats.corrupt = 0;
    this.dropError = ctx.soft('session', false);
    // Revocations pending replay (lib/journal.js): size 0 when none.
    this.journal = ctx.journal;
    // getSession's and getSessionWithFallback's handlers, made once (the hot path makes no
    // closure per call).
    this.getStart = (n, id, tokenHash) => {
      checkString(tokenHash, 'tokenHash');
      n.sessionGet(id, tokenHash);
    };
    this.getValue = (json, tokenHash) => this.readCached(json, tokenHash, false);
    this.getError = ctx.soft('session', null);
    this.fallbackStart = (n, id, token) => {
      checkString(token, 'token');
      if (unusableToken(token)) {
        this.stats.rejectedTokens++;
        return null; // answered at once: no Redis read, no loader call
      }
      n.sessionGetByToken(id, token);
    };
    this.fallbackValue = (json, token) => {
      const data = this.readCached(json, token, true);
      if (data === null) return this.loadSession(token);
      if (data instanceof Promise) return data.then(() => this.loadSession(token));
      data.source = 'cache';
      return data;
    };
    this.fallbackError = (err, token) => {
      this.ctx.failed('session', err);
      return this.loadSession(token, true);
    };
  }

  // A cached value → the session, or null (counted as a miss) when there is none or it is not
  // one to serve: not a JSON object (corrupt: `42`, truncated JSON, an array; counted in
  // stats().session.corrupt), or its expires_at has passed (another node's clock, a writer
  // that set no TTL) or cannot be read (counted in badExpiry). Such a value is deleted, only
  // while the key still holds it, and then the answer is a promise of null.
  // `ref` is the token hash, or the raw token when `isToken` (hashed only on that rare path).
  readCached(json, ref, isToken) {
    if (json === null) {
      this.stats.misses++;
      return null;
    }
    let data;
    try {
      data = JSON.parse(json);
    } catch {
      data = undefined;
    }
    if (isSessionObject(data)) {
      const state = expiryState(data, Date.now());
      if (state === LIVE) {
        // Revocation journal: the user's sessions are pending revocation: a miss.
        if (this.journal.size !== 0 && this.journal.revokesSessionUser(data)) {
          this.stats.misses++;
          return null;
        }
        this.stats.hits++;
        return data;
      }
      if (state === UNREADABLE) this.stats.badExpiry++;
    } else {
      this.stats.corrupt++;
    }
    this.stats.misses++;
    const hash = isToken ? native.hashToken(ref) : ref;
    return this.ctx
      .op((n, id) => n.sessionDropCorrupt(id, hash, json), undefined, this.dropError)
      .then(() => null);
  }

  // → true, or false when nothing was stored: the session has already expired, or Redis
  // failed. An expires_at that cannot be read is refused (TypeError ERR_INVALID_ARG, nothing
  // stored, counted in stats().session.badExpiry).
  setSession(tokenHash, data) {
    return this.ctx.op(
      (n, id) => {
        checkString(tokenHash, 'tokenHash');
        if (!isSessionObject(data)) throw typeError('session data must be an object');
        let ttl = MAX_TTL_MS;
        const expires = expiryOf(data);
        if (expires != null) {
          const at = expiryMillis(expires);
          if (Number.isNaN(at)) {
            // fail closed: a session that cannot be dated is not stored (a caller's bug:
            // refused like any bad input; a loader row is filtered before it gets here)
            this.stats.badExpiry++;
            throw typeError('expires_at must be a Date, an ISO string, or epoch seconds/ms (a number or a numeric string)');
          }
          const left = at - Date.now();
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

  // → the stored data, or null (cache only; null too when Redis is unavailable, or when the
  // stored session has expired or cannot be dated).
  getSession(tokenHash) {
    // Revocation journal: a session pending revocation is not read from the cache.
    if (this.journal.size !== 0 && typeof tokenHash === 'string' && this.journal.revokesSession(tokenHash)) {
      this.stats.misses++;
      return Promise.resolve(null);
    }
    return this.ctx.opArg(this.getStart, tokenHash, this.getValue, this.getError);
  }

  // Raw token → { ...data, source: 'cache' | 'database' } or null. The token is hashed
  // natively; on a miss (or when Redis fails) loaders.session(token) is asked once for all
  // concurrent callers. Any string answers (a token comes from a request): an empty one or one
  // over 64 KiB is null at once; only a non-string is refused (TypeError, a caller's bug).
  // A loader row that is not an object, has expired, or whose expires_at cannot be read is
  // not a session (null; the last counted in stats().session.badExpiry) and is not cached.
  getSessionWithFallback(token) {
    // Revocation journal: a session pending revocation skips the cache and asks the loader.
    if (this.journal.size !== 0 && typeof token === 'string' && !unusableToken(token) && this.journal.revokesToken(token)) {
      this.stats.misses++;
      return Promise.resolve(this.loadSession(token, true));
    }
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
        if (!isSessionObject(row)) return null;
        const state = expiryState(row, Date.now());
        if (state !== LIVE) {
          if (state === UNREADABLE) this.stats.badExpiry++;
          return null;
        }
        // A row we cannot cache (bad user id, Redis down) is still the database's answer.
        // When Redis just failed, the write is not waited for (no second timeout); otherwise
        // it is, so that the next call finds the session in the cache.
        // (not while its revocation is pending replay: lib/journal.js)
        const caching = this.journal.mayCacheSession(hash, row) ? this.setSession(hash, row).catch(() => false) : false;
        if (!redisFailed) await caching;
        this.stats.fallbacks++;
        return row;
      })
      .then((row) => (row === null ? null : { ...row, source: 'database' }));
  }

  // → true if a session was removed (it also leaves its user's set).
  // When Redis fails: false, and the revocation is kept and replayed (lib/journal.js).
  invalidateSession(tokenHash) {
    return this.ctx.op(
      (n, id) => {
        checkString(tokenHash, 'tokenHash');
        n.sessionRemove(id, tokenHash);
      },
      undefined,
      this.journal.failure('session', false, 'session', tokenHash),
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
      this.journal.failure('session', 0, 'userSessions', userId),
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
