'use strict';
// The baseline: the hot part of the @bisman/cache API in plain JavaScript on ioredis 5, the
// way a good Node team writes the ERP's cache layer. It is the yardstick of `npm run bench`, so
// it is meant to be fast: one round trip per call, Lua (EVALSHA, loaded by ioredis on first
// use) for the multi-step operations, SHA-256 token keys, a separate subscriber connection.
//
// `createBaseline(url, { autoPipelining })` builds it on one command connection (with or
// without ioredis `enableAutoPipelining`) plus a subscriber connection. `url` may be
// `rediss://` (give `tls: { ca }`, passed to ioredis as is) or an array of cluster seed node
// URLs: then both connections are `Redis.Cluster` clients, and the multi-key scripts whose
// keys the documented names put in different slots run as the same single-key steps, in the
// same order, as ours on a cluster (src/store/cluster_ops.rs): the limiter's index entry, then
// its counter; the user's session set, then the session. The lock's fence key is hash-tagged
// into the lock key's slot, as ours is. `keyPrefix` (ioredis') keeps its keys apart from
// ours where no separate database exists (a cluster has only database 0).

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const Redis = require('ioredis');
const { SessionCache, hashToken } = require('./sessionCache');

const SCRIPTS = path.join(__dirname, '..', '..', 'src', 'store', 'scripts');
const lua = (name) => fs.readFileSync(path.join(SCRIPTS, name), 'utf8');

// The same fixed-window counter as ours, one script call per hit (./rate_hit.lua): INCR, and
// the TTL set atomically with the first hit (an INCR + EXPIRE pair once left counters without
// a TTL).
const RATE_HIT_LUA = fs.readFileSync(path.join(__dirname, 'rate_hit.lua'), 'utf8');
// Its two halves, one key each, for a cluster (the same scripts ours runs there).
const RATE_INDEX_LUA = lua('cluster_rate_index.lua');
const RATE_COUNT_LUA = lua('cluster_rate_count.lua');
// Compare-and-delete by owner.
const LOCK_RELEASE_LUA = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`;
// SET NX PX, plus a fencing token that only grows (the API promises one); else the holder.
const LOCK_ACQUIRE_LUA = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  local fence = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  return { 1, fence }
end
return { 0, redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1]) }`;

const DEFAULT_LIMITS = {
  '/api/auth/login': { max: 5, windowSec: 60 },
  '/api/auth/register': { max: 3, windowSec: 60 },
  '/api/otp/send': { max: 3, windowSec: 60 },
  '/api/payments': { max: 30, windowSec: 60 },
  default: { max: 100, windowSec: 60 },
};
const SUPER_ROLES = ['SUPER_ADMIN'];
const FENCE_TTL_MS = 7 * 24 * 3600 * 1000;

class RateLimiter {
  constructor(client, limits = {}) {
    this.client = client;
    this.limits = { ...DEFAULT_LIMITS, ...limits };
    if (typeof client.bismanRateHit !== 'function') {
      client.defineCommand('bismanRateHit', { numberOfKeys: 2, lua: RATE_HIT_LUA });
      client.defineCommand('bismanRateIndex', { numberOfKeys: 1, lua: RATE_INDEX_LUA });
      client.defineCommand('bismanRateCount', { numberOfKeys: 1, lua: RATE_COUNT_LUA });
    }
  }

  // One hit → [hits in this window, ms left]. On a cluster the counter and the IP's index are
  // in different slots: the index entry first, then the counter, each one atomic script.
  async hit(ip, endpoint, max, windowMs) {
    const key = `rate:${ip}:${endpoint.replace(/\//g, '_')}`;
    if (!this.client.isCluster) return this.client.bismanRateHit(key, `rate-ip:${ip}`, windowMs, endpoint, max);
    await this.client.bismanRateIndex(`rate-ip:${ip}`, endpoint, max, windowMs);
    return this.client.bismanRateCount(key, windowMs);
  }

  async checkLimit(ip, endpoint) {
    const { max, windowSec } = this.limits[endpoint] || this.limits.default;
    try {
      const [total, left] = await this.hit(ip, endpoint, max, windowSec * 1000);
      return { allowed: total <= max, remaining: Math.max(0, max - total), resetIn: Math.ceil(left / 1000), total, limit: max };
    } catch {
      return { allowed: true, remaining: max, resetIn: windowSec, total: 0, limit: max }; // fail open
    }
  }

  // Express middleware: key = req.ip, endpoint = baseUrl + path, standard headers, 429.
  createLimiter({ max, windowSec }) {
    return async (req, res, next) => {
      const endpoint = req.baseUrl + req.path;
      let total = 0;
      let left = windowSec * 1000;
      try {
        [total, left] = await this.hit(req.ip, endpoint, max, windowSec * 1000);
      } catch {
        // fail open
      }
      const resetIn = Math.ceil(left / 1000);
      res.setHeader('RateLimit-Limit', max);
      res.setHeader('RateLimit-Remaining', Math.max(0, max - total));
      res.setHeader('RateLimit-Reset', resetIn);
      if (total > max) {
        res.setHeader('Retry-After', resetIn);
        return res.status(429).json({ error: 'Too many requests', retryAfter: resetIn });
      }
      next();
    };
  }
}

class PermissionCache {
  constructor(client) {
    this.client = client;
  }

  async getUserPermissions(userId) {
    try {
      const json = await this.client.get(`perm:user:${userId}`);
      return json === null ? null : JSON.parse(json);
    } catch {
      return null;
    }
  }

  setUserPermissions(userId, snapshot, ttlSec = 300) {
    return this.client.set(`perm:user:${userId}`, JSON.stringify(snapshot), 'PX', ttlSec * 1000).then(() => true);
  }

  async hasModulePermission(userId, module) {
    const s = await this.getUserPermissions(userId);
    if (s === null) return false;
    if (s.role && SUPER_ROLES.includes(s.role)) return true;
    return Array.isArray(s.modules) && (s.modules.includes('*') || s.modules.includes(module));
  }
}

class DistributedLock {
  constructor(client, nodeId = 'bench') {
    this.client = client;
    this.nodeId = nodeId;
    if (typeof client.bismanLockAcquire !== 'function') {
      client.defineCommand('bismanLockAcquire', { numberOfKeys: 2, lua: LOCK_ACQUIRE_LUA });
      client.defineCommand('bismanLockRelease', { numberOfKeys: 1, lua: LOCK_RELEASE_LUA });
    }
  }

  async acquire(resource, id, { ttlSec = 30 } = {}) {
    const key = `lock:${resource}:${id}`;
    const owner = `${this.nodeId}:${process.pid}:${crypto.randomBytes(16).toString('hex')}`;
    // on a cluster the fence key must share the lock key's slot: a hash tag around the lock
    // key as Redis sees it (ioredis puts the prefix in front of both), as ours has
    const fence = this.client.isCluster ? `lock-fence:{${this.client.options.keyPrefix || ''}${key}}` : `lock-fence:${key}`;
    try {
      const r = await this.client.bismanLockAcquire(key, fence, owner, ttlSec * 1000, FENCE_TTL_MS);
      if (r[0] === 1) return { acquired: true, owner, fence: r[1], ttl: ttlSec };
      return { acquired: false, heldBy: r[1], ttl: Math.max(0, Math.ceil(r[2] / 1000)) };
    } catch (error) {
      return { acquired: false, error };
    }
  }

  async release(resource, id, owner) {
    try {
      return (await this.client.bismanLockRelease(`lock:${resource}:${id}`, owner)) === 1;
    } catch {
      return false;
    }
  }
}

class PubSub {
  constructor(client, subscriber, nodeId = 'bench') {
    this.client = client;
    this.subscriber = subscriber;
    this.nodeId = nodeId;
    this.handlers = new Map();
    this.subscribed = null;
    subscriber.on('message', (channel, message) => {
      const list = this.handlers.get(channel);
      if (list === undefined) return;
      let msg;
      try {
        msg = JSON.parse(message);
      } catch {
        return;
      }
      for (const h of list) {
        try {
          h(msg);
        } catch (err) {
          console.error('baseline pubsub handler threw:', err);
        }
      }
    });
  }

  subscribe() {
    if (this.subscribed === null) {
      this.subscribed = this.subscriber.subscribe('permissions:invalidate', 'sessions:invalidate', 'cache:invalidate');
    }
    return this.subscribed;
  }

  onMessage(channel, handler) {
    if (!this.handlers.has(channel)) this.handlers.set(channel, []);
    this.handlers.get(channel).push(handler);
  }

  async publish(channel, msg) {
    try {
      return await this.client.publish(channel, JSON.stringify({ ...msg, origin: this.nodeId, ts: Date.now() }));
    } catch {
      return 0;
    }
  }

  publishPermissionInvalidation(msg) {
    return this.publish('permissions:invalidate', msg);
  }
}

// Cluster seed node URLs → ioredis `{ host, port }` (credentials, if any, go in redisOptions).
function clusterClient(nodes, { enableAutoPipelining = false, enableOfflineQueue = true, keyPrefix, lazyConnect, ...redisOptions }) {
  const seeds = nodes.map((u) => {
    const { hostname, port } = new URL(u);
    return { host: hostname, port: Number(port) };
  });
  return new Redis.Cluster(seeds, { enableAutoPipelining, enableOfflineQueue, keyPrefix, lazyConnect, redisOptions });
}

function createBaseline(url, { autoPipelining = true, loaders = {}, rateLimits = {}, tls, keyPrefix } = {}) {
  const common = { maxRetriesPerRequest: 1, ...(tls ? { tls } : {}), ...(keyPrefix ? { keyPrefix } : {}) };
  const opts = { ...common, enableAutoPipelining: autoPipelining, enableOfflineQueue: false, lazyConnect: false };
  const cluster = Array.isArray(url);
  const client = cluster ? clusterClient(url, opts) : new Redis(url, opts);
  const subscriber = cluster ? clusterClient(url, common) : new Redis(url, common);
  const sessionCache = new SessionCache(client, { loader: loaders.session || null });
  return {
    client,
    sessionCache,
    getSessionWithFallback: (token) => sessionCache.getSessionWithFallback(token),
    permissionCache: new PermissionCache(client),
    rateLimiter: new RateLimiter(client, rateLimits),
    distributedLock: new DistributedLock(client),
    pubsub: new PubSub(client, subscriber),
    ready: () => Promise.all([client, subscriber].map((c) => (c.status === 'ready' ? null : new Promise((r) => c.once('ready', r))))),
    close() {
      client.disconnect();
      subscriber.disconnect();
    },
  };
}

module.exports = { createBaseline, hashToken };
