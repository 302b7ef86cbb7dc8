'use strict';
// The baseline: the session API of @bisman/cache written in plain JavaScript on ioredis 5,
// the way a good Node team would write it (and the way the ERP's old `cache/` layer worked).
// It is what our native implementation is measured against, so it is meant to be fast:
// one round trip per call, one Lua script for the atomic write, no extra allocations on the
// hot read path.
//
// It takes an ioredis client, so the same code runs with and without `enableAutoPipelining`.

const crypto = require('crypto');

const MAX_TTL_MS = 3600 * 1000;
const SESSION_PREFIX = 'session:';
const USER_SET_PREFIX = 'session:user:';

// SET the session with its TTL, add it to the user's set and make the set live at least as
// long as its newest session: one script, so no key is ever left without a TTL.
const SESSION_PUT_LUA = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if KEYS[2] then
  redis.call('SADD', KEYS[2], ARGV[3])
  local ttl = tonumber(ARGV[2])
  if redis.call('PTTL', KEYS[2]) < ttl then
    redis.call('PEXPIRE', KEYS[2], ttl)
  end
end
return 1
`;
// On a cluster the session and its user's set are in different slots: the set alone first
// (SADD, TTL raised to the session's), then the session (SET PX), as ours orders the two
// steps there, so no session exists that its user's set does not name.
const SESSION_INDEX_LUA = `
redis.call('SADD', KEYS[1], ARGV[1])
local ttl = tonumber(ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return 1
`;

function hashToken(token) {
  return crypto.createHash('sha256').update(token).digest('hex');
}

// expires_at as ISO string, Date, or epoch number (seconds below 1e11, else milliseconds).
function expiryMillis(value) {
  if (value instanceof Date) return value.getTime();
  if (typeof value === 'number') return value < 1e11 ? value * 1000 : value;
  if (typeof value === 'string') return Date.parse(value);
  return NaN;
}

class SessionCache {
  /**
   * @param {import('ioredis').Redis} client an ioredis client (auto-pipelining or not)
   * @param {{ loader?: (token: string) => Promise<object|null> }} [options]
   */
  constructor(client, { loader = null } = {}) {
    this.client = client;
    this.loader = loader;
    this.flights = new Map(); // in-flight loader calls, one per token hash
    this.stats = { hits: 0, misses: 0, fallbacks: 0, loaderCalls: 0, errors: 0 };
    if (typeof client.bismanSessionPut !== 'function') {
      // EVALSHA with a transparent EVAL on NOSCRIPT (ioredis handles it).
      client.defineCommand('bismanSessionPut', { lua: SESSION_PUT_LUA });
      client.defineCommand('bismanSessionIndex', { numberOfKeys: 1, lua: SESSION_INDEX_LUA });
    }
  }

  // → true, or false when the session has already expired (nothing stored) or Redis failed.
  async setSession(tokenHash, data) {
    if (typeof tokenHash !== 'string' || tokenHash === '') throw new TypeError('tokenHash must be a non-empty string');
    if (data === null || typeof data !== 'object') throw new TypeError('session data must be an object');
    let ttl = MAX_TTL_MS;
    const expires = data.expires_at != null ? data.expires_at : data.expiresAt;
    if (expires != null) {
      const left = expiryMillis(expires) - Date.now();
      if (!(left > 0)) return false;
      ttl = Math.min(ttl, Math.ceil(left));
    }
    const userId = data.user_id != null ? data.user_id : data.userId;
    const key = SESSION_PREFIX + tokenHash;
    const json = JSON.stringify(data);
    try {
      if (userId != null && this.client.isCluster) {
        await this.client.bismanSessionIndex(USER_SET_PREFIX + userId, tokenHash, ttl);
        await this.client.set(key, json, 'PX', ttl);
      } else if (userId != null) {
        await this.client.bismanSessionPut(2, key, USER_SET_PREFIX + userId, json, ttl, tokenHash);
      } else {
        await this.client.set(key, json, 'PX', ttl);
      }
      return true;
    } catch {
      this.stats.errors++;
      return false;
    }
  }

  // → the stored data, or null (cache only; null too when Redis is unavailable).
  async getSession(tokenHash) {
    let json;
    try {
      json = await this.client.get(SESSION_PREFIX + tokenHash);
    } catch {
      this.stats.errors++;
      return null;
    }
    if (json === null) {
      this.stats.misses++;
      return null;
    }
    this.stats.hits++;
    return JSON.parse(json);
  }

  // Raw token → { ...data, source: 'cache' | 'database' } or null.
  async getSessionWithFallback(token) {
    if (typeof token !== 'string' || token === '') throw new TypeError('token must be a non-empty string');
    const hash = hashToken(token);
    let json = null;
    try {
      json = await this.client.get(SESSION_PREFIX + hash);
    } catch {
      this.stats.errors++; // fail open: ask the database
    }
    if (json !== null) {
      this.stats.hits++;
      const data = JSON.parse(json);
      data.source = 'cache';
      return data;
    }
    this.stats.misses++;
    return this.loadSession(token, hash);
  }

  // One loader call per token at a time (concurrent misses share it); what it returns is cached.
  async loadSession(token, hash) {
    if (this.loader === null) return null;
    let flight = this.flights.get(hash);
    if (flight === undefined) {
      flight = Promise.resolve()
        .then(() => this.loadAndCache(token, hash))
        .finally(() => {
          if (this.flights.get(hash) === flight) this.flights.delete(hash);
        });
      this.flights.set(hash, flight);
    }
    const row = await flight;
    return row === null ? null : { ...row, source: 'database' };
  }

  async loadAndCache(token, hash) {
    this.stats.loaderCalls++;
    const row = await this.loader(token);
    if (row == null || typeof row !== 'object') return null;
    const expires = row.expires_at != null ? row.expires_at : row.expiresAt;
    if (expires != null && !(expiryMillis(expires) > Date.now())) return null;
    await this.setSession(hash, row); // a row we could not cache is still the database's answer
    this.stats.fallbacks++;
    return row;
  }
}

module.exports = { SessionCache, hashToken };
