'use strict';
// `@bisman/cache/express-session`: a Store for express-session, on this module's sessions
// (the `session:` family and its per-user index), so `invalidateUserSessions(userId)` ends the
// user's cookie sessions as it ends their token sessions.
//
//   const session = require('express-session');
//   const { SessionStore } = require('@bisman/cache/express-session');
//   app.use(session({ store: new SessionStore(), secret, resave: false, saveUninitialized: false }));
//
// Keys: a session id (sid) is hashed like every token of this module (SHA-256; a raw sid never
// reaches a key) and stored at `session:{prefix}.{hash}`, indexed under
// `session:user:{userId}` when `options.userId(session)` names a user. The value is
// express-session's JSON (cookie included).
//
// TTL: until `cookie.expires` (rounded up to whole seconds), else `ttlSec` (default and most
// 3600), never more than the session family's bound (1 h: see SESSION_MAX_TTL_MS): the Redis TTL is
// then an idle timeout that each request's touch (or save) moves on. A session whose cookie has
// already expired is destroyed, not written.
//
// Failure policy: every method calls back with the error when Redis fails (within
// commandTimeoutMs; express-session then calls next(err)), `get` included. Answering null
// instead would make express-session start a new session and, on any write, replace the
// user's cookie: a Redis outage of a few seconds would end sessions that are still valid in
// Redis, and the app could not tell an outage from a log-out. With the error, the request
// fails (the app's error handler may answer 503) and the cookie and the session survive.

const { Store } = require('express-session');
const native = require('../native');
const { typeError, rangeError, checkIdType } = require('../errors');
const { SESSION_MAX_TTL_MS, SESSION_MAX_TOKEN_BYTES } = require('../rules');

const PREFIX = /^[A-Za-z0-9_-]{1,64}$/;
// The TTL of a session whose cookie has no expiry: the session family's bound, 1 h, which is
// also the most a session is kept without a request (a cookie's own expiry is bounded by it).
const MAX_TTL_SEC = SESSION_MAX_TTL_MS / 1000;
const DEFAULT_TTL_SEC = MAX_TTL_SEC;
const MAX_SCAN_COUNT = 10_000;

// The bounds of all(), length() and clear(): SCAN COUNT `scanCount` per step; at most
// `maxVisitedKeys` keys visited in all (steps × scanCount, every Cluster primary together);
// at most `maxAll` sessions read by all() and `maxLength` counted by length(); at most
// `timeoutMs` in all (`options.scanLimits` may lower each). Past one of them the call fails (RangeError ERR_VALUE_TOO_LARGE, or
// ETIMEDOUT) rather than answer a partial list or count; clear() keeps what it removed.
const SCAN_LIMITS = Object.freeze({ maxVisitedKeys: 1_000_000, maxAll: 10_000, maxLength: 100_000, timeoutMs: 10_000 });

// What a read found, kept by data object (and then by Session) until its write: the guard
// that refuses that write if the session or its user's sessions were revoked meanwhile.
const guards = new WeakMap();

let defaultCache = null;
function moduleCache() {
  if (defaultCache === null) defaultCache = require('../../index.js');
  return defaultCache;
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

function defaultUserId(sess) {
  return sess.userId ?? sess.user_id ?? sess.passport?.user;
}

// A promise to a callback (on the next tick, outside the promise chain, so a callback that
// throws is not swallowed); without a callback, the promise.
function settle(promise, cb) {
  if (typeof cb !== 'function') return promise;
  promise.then(
    (value) => process.nextTick(cb, null, value),
    (err) => process.nextTick(cb, err),
  );
  return undefined;
}

class SessionStore extends Store {
  /**
   * @param {object} [options] `cache`: the module (default) or a createCache() instance;
   *   `prefix` (default 'sess'); `ttlSec` (default and most 3600); `userId`;
   *   `disableTouch`; `scanCount` (default 100); `scanLimits` (lower bounds than SCAN_LIMITS); `serializer` ({ parse, stringify }, default JSON).
   */
  constructor(options = {}) {
    super();
    if (options === null || typeof options !== 'object') throw typeError('SessionStore options must be an object');
    const { cache = moduleCache(), prefix = 'sess', ttlSec = DEFAULT_TTL_SEC, userId = defaultUserId, disableTouch = false, scanCount = 100, serializer = JSON, scanLimits = {} } = options;
    if (cache === null || typeof cache !== 'object' || cache.sessionCache === null || typeof cache.sessionCache !== 'object' || typeof cache.sessionCache.storeRead !== 'function') {
      throw typeError('cache must be @bisman/cache or an instance from createCache()');
    }
    if (typeof prefix !== 'string') throw typeError('prefix must be a string');
    if (!PREFIX.test(prefix)) throw rangeError(`prefix must be 1 to 64 letters, digits, _ or - (got ${JSON.stringify(prefix.slice(0, 80))})`);
    if (typeof ttlSec !== 'number') throw typeError('ttlSec must be a number');
    // Past the bound a ttlSec would be cut to it without a word: refused, so the caller knows.
    if (!Number.isFinite(ttlSec) || ttlSec <= 0 || ttlSec > MAX_TTL_SEC) {
      throw rangeError(`ttlSec must be a number of seconds above 0 and at most ${MAX_TTL_SEC}, the session family's bound (got ${ttlSec})`);
    }
    if (typeof userId !== 'function') throw typeError('userId must be a function (session) => user id');
    if (typeof disableTouch !== 'boolean') throw typeError('disableTouch must be a boolean');
    if (!Number.isInteger(scanCount)) throw typeError('scanCount must be an integer');
    if (scanCount < 1 || scanCount > MAX_SCAN_COUNT) throw rangeError(`scanCount must be 1 to ${MAX_SCAN_COUNT} (got ${scanCount})`);
    if (serializer === null || typeof serializer !== 'object' || typeof serializer.parse !== 'function' || typeof serializer.stringify !== 'function') {
      throw typeError('serializer must have parse and stringify functions');
    }
    if (scanLimits === null || typeof scanLimits !== 'object') throw typeError('scanLimits must be an object');
    const limits = { ...SCAN_LIMITS };
    for (const [name, value] of Object.entries(scanLimits)) {
      if (!Object.hasOwn(SCAN_LIMITS, name)) throw typeError(`scanLimits has no ${JSON.stringify(name)} (known: ${Object.keys(SCAN_LIMITS).join(', ')})`);
      if (!Number.isInteger(value)) throw typeError(`scanLimits.${name} must be an integer`);
      if (value < 1 || value > SCAN_LIMITS[name]) throw rangeError(`scanLimits.${name} must be 1 to ${SCAN_LIMITS[name]} (got ${value})`);
      limits[name] = value;
    }
    this.scanLimits = Object.freeze(limits);
    this.sessions = cache.sessionCache;
    this.prefix = prefix;
    this.ttlSec = Math.ceil(ttlSec);
    this.userIdOf = userId;
    this.disableTouch = disableTouch;
    this.scanCount = scanCount;
    this.serializer = serializer;
  }

  // The stored name of a sid (`{prefix}.{sha256 hex}`), or null for a string that cannot name
  // a session (empty, over 64 KiB, not a string): a sid comes from a request.
  hashOf(sid) {
    if (typeof sid !== 'string' || sid.length === 0 || sid.length > SESSION_MAX_TOKEN_BYTES) return null;
    if (sid.length * 3 > SESSION_MAX_TOKEN_BYTES && Buffer.byteLength(sid, 'utf8') > SESSION_MAX_TOKEN_BYTES) return null;
    return `${this.prefix}.${native.hashToken(sid)}`;
  }

  // The session's TTL in ms: until cookie.expires (rounded up to whole seconds), else ttlSec,
  // at most 1 h; 0 when the cookie has expired.
  ttlMsOf(sess) {
    const expires = isObject(sess.cookie) ? sess.cookie.expires : undefined;
    if (expires != null) {
      const at = expires instanceof Date ? expires.getTime() : new Date(expires).getTime();
      if (Number.isFinite(at)) {
        const sec = Math.ceil((at - Date.now()) / 1000);
        return sec <= 0 ? 0 : Math.min(sec, MAX_TTL_SEC) * 1000;
      }
    }
    return this.ttlSec * 1000;
  }

  // The user the session is indexed under, or undefined (stored unindexed).
  userOf(sess) {
    const id = this.userIdOf(sess);
    if (id == null) return undefined;
    checkIdType(id, 'userId(session)');
    return id;
  }

  // A stored value → the session object express-session can load, or null: what the
  // serializer cannot read, or that has no cookie object, is no session (express-session
  // would throw on it).
  parse(json) {
    let data;
    try {
      data = this.serializer.parse(json);
    } catch {
      return null;
    }
    return isObject(data) && isObject(data.cookie) ? data : null;
  }

  /** The session of `sid`, or null (none, expired, revoked, or a sid that names none). */
  get(sid, cb) {
    return settle(this.getAsync(sid), cb);
  }

  async getAsync(sid) {
    const hash = this.hashOf(sid);
    if (hash === null) return null;
    const r = await this.sessions.storeRead(hash);
    if (r === null) return null;
    const data = this.parse(r.json);
    if (data === null) return null;
    let uid;
    try {
      uid = this.userIdOf(data);
    } catch {
      uid = undefined;
    }
    if (this.sessions.storeRevoked(hash, uid)) return null;
    guards.set(data, { rev: r.rev, t: r.t });
    return data;
  }

  /** Stores the session (a session whose cookie has expired is destroyed instead). */
  set(sid, sess, cb) {
    return settle(this.setAsync(sid, sess), cb);
  }

  async setAsync(sid, sess) {
    if (!isObject(sess)) throw typeError('session must be an object');
    const hash = this.hashOf(sid);
    if (hash === null) throw typeError('sid must be a non-empty string of at most 64 KiB');
    const ttlMs = this.ttlMsOf(sess);
    if (ttlMs === 0) return this.destroyAsync(sid);
    const uid = this.userOf(sess);
    const json = this.serializer.stringify(sess);
    if (typeof json !== 'string') throw typeError('serializer.stringify must return a string');
    // Revoked while Redis was down (kept for replay): not written back.
    if (this.sessions.storeRevoked(hash, uid)) return undefined;
    await this.sessions.storeWrite(hash, json, ttlMs, uid, guards.get(sess) ?? null);
    return undefined;
  }

  /** Moves the session's expiry on without rewriting it; nothing is written for a session
   * that is gone. */
  touch(sid, sess, cb) {
    return settle(this.touchAsync(sid, sess), cb);
  }

  async touchAsync(sid, sess) {
    if (this.disableTouch || !isObject(sess)) return undefined;
    const hash = this.hashOf(sid);
    if (hash === null) return undefined;
    const ttlMs = this.ttlMsOf(sess);
    if (ttlMs === 0) return this.destroyAsync(sid);
    await this.sessions.storeTouch(hash, ttlMs, this.userOf(sess));
    return undefined;
  }

  /** Removes the session (and its entry in its user's index). */
  destroy(sid, cb) {
    return settle(this.destroyAsync(sid), cb);
  }

  async destroyAsync(sid) {
    const hash = this.hashOf(sid);
    if (hash === null) return undefined;
    await this.sessions.storeRemove(hash);
    return undefined;
  }

  // The bounds of one scan (see SCAN_LIMITS).
  bounds(maxFound) {
    return { count: this.scanCount, maxVisited: this.scanLimits.maxVisitedKeys, maxFound, maxMs: this.scanLimits.timeoutMs };
  }

  /** Every session of this prefix, as an array (sids are stored hashed: none carries an id). */
  all(cb) {
    return settle(this.allAsync(), cb);
  }

  async allAsync() {
    const found = await this.sessions.storeScan(`${this.prefix}.`, 'list', this.bounds(this.scanLimits.maxAll));
    const out = [];
    for (const { json } of found) {
      const data = this.parse(json);
      if (data !== null) out.push(data);
    }
    return out;
  }

  /** How many sessions this prefix has. */
  length(cb) {
    return settle(this.sessions.storeScan(`${this.prefix}.`, 'count', this.bounds(this.scanLimits.maxLength)), cb);
  }

  /** Removes every session of this prefix (each as destroy() does). */
  clear(cb) {
    return settle(
      this.sessions.storeScan(`${this.prefix}.`, 'clear', this.bounds(this.scanLimits.maxLength)).then(() => undefined),
      cb,
    );
  }

  // express-session builds its Session from what get() answered: the read's guard follows it.
  createSession(req, data) {
    const guard = guards.get(data);
    const session = super.createSession(req, data);
    if (guard !== undefined) guards.set(session, guard);
    return session;
  }
}

// Each name assigned to module.exports itself, so Node's ESM import of this CommonJS module
// sees them as named exports (`import { SessionStore, SCAN_LIMITS } from …`).
module.exports = SessionStore;
module.exports.SessionStore = SessionStore;
module.exports.SCAN_LIMITS = SCAN_LIMITS;
module.exports.default = SessionStore;
