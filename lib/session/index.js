'use strict';
// sessionCache: sessions by token hash, indexed per user, with the database loader as fallback.
// What a token and a session record can be: ./record.js.

const native = require('../native');
const replies = require('../replies');
const { checkIdType, checkString } = require('../errors');
const { MAX_TOKEN_BYTES, unusableToken, expiryState, LIVE, UNREADABLE, isSessionObject, sessionRecord } = require('./record');

// A load that found no session to serve (see loadRow).
const NO_ROW = Object.freeze({ row: null, revoked: false });

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
    // Loader fills refused because the session (or its user's sessions) was revoked after
    // the miss that started the load: answered, never cached (issue 15).
    this.stats.staleFills = 0;
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
    // The express-session Store's failures: counted, then the rejection.
    this.hardError = (err) => {
      ctx.failed('session', err);
      throw err;
    };
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
        const rec = sessionRecord(data, this.stats);
        if (rec === null) return false; // nothing stored
        n.sessionSet(id, tokenHash, rec.json, rec.ttl, rec.userId);
      },
      undefined,
      this.ctx.soft('session', false),
    );
  }

  // A loader's fill (issue 15): written only if neither the session nor its user's sessions
  // were revoked since the miss read that gave `rev` and `t` → true if written, false if
  // refused (counted in stats().session.staleFills; the caller still gets the row), null when
  // Redis failed, 'expired' when the row has no time left.
  fillSession(tokenHash, data, rev, t) {
    return this.ctx.op(
      (n, id) => {
        const rec = sessionRecord(data, this.stats);
        if (rec === null) return 'expired';
        n.sessionFill(id, tokenHash, rec.json, rec.ttl, rec.userId, rev, t);
      },
      (written) => {
        if (!written) this.stats.staleFills++;
        return written;
      },
      this.ctx.soft('session', null),
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

  // A miss: the miss read (the session written meanwhile, or the revision and time that guard
  // the fill), then the loader, once for all concurrent callers that saw the same revision.
  // When Redis just failed, the row is answered and not cached (no revision to guard it).
  // `again`: the caller's second load (see loadRow).
  loadSession(token, redisFailed = false, again = false) {
    const loader = this.ctx.loader('session');
    if (loader === null) return null;
    const hash = native.hashToken(token);
    if (redisFailed) return this.loadRow(token, hash, null, null, again);
    return this.ctx.op(
      (n, id) => n.sessionMissRead(id, hash),
      (r) => {
        const m = replies.miss(r);
        const hit = m.value !== null ? this.lateHit(m.value) : null;
        return hit !== null ? hit : this.loadRow(token, hash, m.rev, m.t, again);
      },
      (err) => {
        this.ctx.failed('session', err);
        return this.loadRow(token, hash, null, null, again);
      },
    );
  }

  // A session the miss read found (written since the first read): a hit after all, or null.
  lateHit(json) {
    let data;
    try {
      data = JSON.parse(json);
    } catch {
      return null;
    }
    if (!isSessionObject(data) || expiryState(data, Date.now()) !== LIVE) return null;
    this.stats.misses--;
    this.stats.hits++;
    data.source = 'cache';
    return data;
  }

  // The loader's row for `token`, filled under the revision `rev` seen at time `t` (null:
  // not cached). Concurrent callers that saw the same revision share one load. A revocation
  // of the user's sessions on another node does not change the session's own revision, so a
  // caller that started after it can still join a load that began before it: when that
  // load's fill is refused (a revocation landed after its miss read), every caller that
  // joined it loads again (once), and only the caller that started it gets its row.
  loadRow(token, hash, rev, t, again = false) {
    const loader = this.ctx.loader('session');
    let started = false;
    return this.ctx
      .singleFlight(`session:${hash}#${rev === null ? '-' : rev}`, async () => {
        started = true;
        this.stats.loaderCalls++;
        const row = await loader(token);
        if (!isSessionObject(row)) return NO_ROW;
        const state = expiryState(row, Date.now());
        if (state !== LIVE) {
          if (state === UNREADABLE) this.stats.badExpiry++;
          return NO_ROW;
        }
        // A row we cannot cache (bad user id, Redis down, revoked meanwhile, or its revocation
        // still pending replay: lib/journal.js) is still the database's answer. The fill is
        // waited for, so that the next call finds it.
        let written = null;
        if (rev !== null && this.journal.mayCacheSession(hash, row)) written = await this.fillSession(hash, row, rev, t).catch(() => null);
        this.stats.fallbacks++;
        return { row, revoked: written === false };
      })
      .then(({ row, revoked }) => {
        if (revoked && !started && !again) return this.loadSession(token, false, true);
        return row === null ? null : { ...row, source: 'database' };
      });
  }

  // → true if a session was removed (it also leaves its user's set).
  // When Redis fails: false, and the revocation is kept and replayed (lib/journal.js).
  invalidateSession(tokenHash) {
    return this.ctx.op(
      (n, id) => {
        checkString(tokenHash, 'tokenHash');
        this.ctx.detachFlights(`session:${tokenHash}#`);
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
        this.ctx.detachFlights('session:');
        n.sessionRemoveUser(id, userId);
      },
      undefined,
      this.journal.failure('session', 0, 'userSessions', userId),
    );
  }

  // ---- for the express-session Store (lib/adapters/express-session.js) --------------------
  // These reject when the back end fails (counted in stats().session.errors first): the
  // store hands the error to express-session, which decides. Bad input is refused as
  // everywhere else (TypeError/RangeError with a code).

  // → { json, rev, t } (the stored value and the guard its later write carries, see
  // storeWrite), or null when there is none.
  storeRead(tokenHash) {
    return this.ctx.op(
      (n, id) => n.sessionMissRead(id, tokenHash),
      (r) => {
        const m = replies.miss(r);
        if (m.value === null) {
          this.stats.misses++;
          return null;
        }
        this.stats.hits++;
        return { json: m.value, rev: m.rev, t: m.t };
      },
      this.hardError,
    );
  }

  // Stores `json` for `ttlMs` indexed under `userId` (none: unindexed). With the `guard` of
  // the read that loaded the session, written only if neither the session nor its user's
  // sessions were revoked since that read (a request in flight during a log-out must not
  // bring the session back) → true if written, false if refused (counted in staleFills).
  storeWrite(tokenHash, json, ttlMs, userId, guard) {
    if (userId !== undefined) checkIdType(userId, 'userId');
    if (guard === null) {
      return this.ctx.op((n, id) => n.sessionSet(id, tokenHash, json, ttlMs, userId), undefined, this.hardError);
    }
    return this.ctx.op(
      (n, id) => n.sessionFill(id, tokenHash, json, ttlMs, userId, guard.rev, guard.t),
      (written) => {
        if (!written) this.stats.staleFills++;
        return written;
      },
      this.hardError,
    );
  }

  // Refreshes the TTL of a stored session (and its user's index entry) without rewriting it
  // → true if it exists (nothing is written when it does not).
  storeTouch(tokenHash, ttlMs, userId) {
    if (userId !== undefined) checkIdType(userId, 'userId');
    return this.ctx.op((n, id) => n.sessionTouch(id, tokenHash, ttlMs, userId), undefined, this.hardError);
  }

  // invalidateSession, except that a back-end failure rejects (after the revocation is kept
  // for replay, as invalidateSession keeps it).
  storeRemove(tokenHash) {
    const keep = this.journal.failure('session', false, 'session', tokenHash);
    return this.ctx.op(
      (n, id) => n.sessionRemove(id, tokenHash),
      undefined,
      (err) => {
        keep(err);
        throw err;
      },
    );
  }

  // Counts ('count'), reads ('list': [{ hash, json }, …]) or removes ('clear') the sessions whose
  // token hash starts with `prefix`, by SCAN within `bounds` ({ count, maxVisited, maxFound,
  // maxMs }).
  storeScan(prefix, mode, bounds) {
    return this.ctx.op(
      (n, id) => n.sessionScan(id, prefix, mode, bounds.count, bounds.maxVisited, bounds.maxFound, bounds.maxMs),
      mode === 'list' ? replies.sessionList : undefined,
      this.hardError,
    );
  }

  // Is the session (by token hash) or its user's sessions pending revocation on this node
  // (Redis failed when they were revoked: lib/journal.js)?
  storeRevoked(tokenHash, userId) {
    if (this.journal.size === 0) return false;
    return this.journal.revokesSession(tokenHash) || (userId != null && this.journal.revokesSessionUser({ user_id: userId }));
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
