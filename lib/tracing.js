'use strict';
// Tracing: every public operation of a cache instance is published on the diagnostics_channel
// TracingChannel `bisman-cache:operation` (start, end, asyncStart, asyncEnd, error), as
// node-redis (`node-redis:command`) and ioredis (`ioredis:command`) publish their commands.
// The context object of one call:
//   service        'session' | 'permissions' | 'rateLimit' | 'lock' | 'pubsub' | 'cache' | 'health'
//   operation      the method called: 'getSession', 'checkLimit', 'acquire', …
//   keyFamily      the family of the key it works on ('session', 'perm:user', 'rate',
//                  'lock:approval', …): never a token, a token hash, an IP, an id or any other
//                  secret part of a key; absent for operations on no key (ping)
//   serverAddress, serverPort, dbIndex   when the back end is one redis:// or rediss:// URL
//   error          set when the call rejects (or throws)
// No answer is put on the context (`result` stays unset). With no subscriber nothing is built:
// a call costs one `hasSubscribers` check.
//
// The same wrapper names the operation for the latency histogram (lib/metrics.js): it sets
// `ctx.current` while the method runs synchronously, and Context#opArg times the back-end call
// the method starts then.

const dc = require('diagnostics_channel');
const { CHANNEL } = require('./rules');

const CHANNEL_NAME = 'bisman-cache:operation';
const channel = dc.tracingChannel(CHANNEL_NAME);

// A resource, channel or mutex name that may appear in keyFamily: letters, '_' and '-' only
// (no digit, so no id, hash, token or address can pass).
// Channel names may also hold ':'.
const FAMILY_NAME = /^[A-Za-z][A-Za-z_-]{0,31}$/;
const CHANNEL_FAMILY = /^[A-Za-z][A-Za-z_:-]{0,63}$/;
const named = (prefix, pattern, fallback) => (name) => (typeof name === 'string' && pattern.test(name) ? prefix + name : fallback);

const lockOf = named('lock:', FAMILY_NAME, 'lock');
const channelOf = named('', CHANNEL_FAMILY, 'pubsub');
const mutexFamily = () => 'lock:mutex';
// The general cache: a key's first ':' segment when it is a family name, else 'cache' (an
// array of keys: its first key's).
const keyFamily = (key) => {
  const k = Array.isArray(key) ? key[0] : key;
  if (typeof k !== 'string') return 'cache';
  const seg = k.split(':', 1)[0];
  return FAMILY_NAME.test(seg) ? seg : 'cache';
};

// service → the object of the cache instance that carries it, and its traced methods with their
// key family (a string, a function of the first argument, or null).
const SERVICES = [
  [
    'session',
    (cache) => cache.sessionCache,
    {
      getSession: 'session',
      setSession: 'session',
      getSessionWithFallback: 'session',
      invalidateSession: 'session',
      invalidateUserSessions: 'session:user',
      getUserSessions: 'session:user',
    },
  ],
  [
    'permissions',
    (cache) => cache.permissionCache,
    {
      getUserPermissions: 'perm:user',
      setUserPermissions: 'perm:user',
      getUserPermissionsWithFallback: 'perm:user',
      hasModulePermission: 'perm:user',
      hasPagePermission: 'perm:user',
      invalidateUserPermissions: 'perm:user',
      getRolePermissions: 'perm:role',
      setRolePermissions: 'perm:role',
      getRolePermissionsWithFallback: 'perm:role',
      invalidateRolePermissions: 'perm:role',
    },
  ],
  [
    'rateLimit',
    (cache) => cache.rateLimiter,
    { checkLimit: 'rate', resetLimit: 'rate', resetAllLimitsForIp: 'rate', getIpStatus: 'rate' },
  ],
  [
    'lock',
    (cache) => cache.distributedLock,
    {
      acquire: lockOf,
      acquireTaskLock: 'lock:task',
      acquireApprovalLock: 'lock:approval',
      acquirePaymentLock: 'lock:payment',
      release: lockOf,
      renew: lockOf,
      extend: lockOf,
      isLocked: lockOf,
      withLock: lockOf,
      lock: lockOf,
      mutex: mutexFamily,
    },
  ],
  [
    'pubsub',
    (cache) => cache.pubsub,
    {
      subscribe: null,
      publish: channelOf,
      publishPermissionInvalidation: CHANNEL.permissions,
      publishSessionInvalidation: CHANNEL.sessions,
      publishCacheInvalidation: CHANNEL.cache,
      invalidateUserPermissions: 'perm:user',
      invalidateRolePermissions: 'perm:role',
      invalidateSession: 'session',
      invalidateUserSessions: 'session:user',
      invalidateKeys: 'keys',
      invalidatePattern: 'keys',
    },
  ],
  [
    'cache',
    (cache) => cache.generalCache,
    { get: keyFamily, set: keyFamily, del: keyFamily, wrap: keyFamily },
  ],
  ['health', (cache) => cache, { ping: null }],
];

// Every traced operation, in a fixed order: `index` addresses its latency histogram.
const OPERATIONS = [];
for (const [service, , methods] of SERVICES) {
  for (const [operation, family] of Object.entries(methods)) {
    OPERATIONS.push({ index: OPERATIONS.length, service, operation, family });
  }
}

// { serverAddress, serverPort, dbIndex } of a single-server redis:// or rediss:// URL; {} for
// memory://, a cluster, a sentinel group or no back end (no one server to name).
function serverOf(options) {
  if (typeof options.url !== 'string' || !/^rediss?:\/\//i.test(options.url)) return {};
  let u;
  try {
    u = new URL(options.url);
  } catch {
    return {};
  }
  const out = { serverAddress: u.hostname.replace(/^\[|\]$/g, ''), serverPort: u.port === '' ? 6379 : Number(u.port) };
  const db = /^\/(\d+)$/.exec(u.pathname);
  out.dbIndex = db ? Number(db[1]) : 0;
  return out;
}

// The server fields of `ctx`, computed once per configuration.
function serverFields(ctx) {
  if (ctx.tracedOptions !== ctx.options) {
    ctx.tracedOptions = ctx.options;
    ctx.tracedServer = serverOf(ctx.options);
  }
  return ctx.tracedServer;
}

function contextOf(op, ctx, args) {
  const context = { service: op.service, operation: op.operation };
  const f = op.family;
  const keyFamily = typeof f === 'function' ? f(args[0]) : f;
  if (keyFamily !== null) context.keyFamily = keyFamily;
  return Object.assign(context, serverFields(ctx));
}

// Publishes one call: start and end around the synchronous part, then error (on a rejection),
// asyncStart and asyncEnd when its promise settles. The answer itself is never published.
function traceCall(op, ctx, fn, thisArg, args) {
  const context = contextOf(op, ctx, args);
  const { start, end, asyncStart, asyncEnd, error } = channel;
  const settled = () => {
    asyncStart.publish(context);
    asyncEnd.publish(context);
  };
  return start.runStores(context, () => {
    try {
      return Promise.resolve(Reflect.apply(fn, thisArg, args)).then(
        (value) => {
          settled();
          return value;
        },
        (err) => {
          context.error = err;
          error.publish(context);
          settled();
          throw err;
        },
      );
    } catch (err) {
      context.error = err;
      error.publish(context);
      throw err;
    } finally {
      end.publish(context);
    }
  });
}

// Replaces `obj[name]` on that object with a wrapper that names the operation (ctx.current)
// and, while someone subscribes, publishes it.
function wrap(ctx, obj, name, op) {
  const fn = obj[name];
  const traced = function () {
    const outer = ctx.current;
    ctx.current = op;
    try {
      if (channel.hasSubscribers) return traceCall(op, ctx, fn, this, arguments);
      return fn.apply(this, arguments);
    } finally {
      ctx.current = outer;
    }
  };
  Object.defineProperty(traced, 'name', { value: name });
  obj[name] = traced;
}

// Wraps the public operations of one cache instance (its service objects and ping).
function instrument(cache) {
  const ctx = cache.ctx;
  for (const op of OPERATIONS) {
    const obj = SERVICES.find(([service]) => service === op.service)[1](cache);
    if (typeof obj[op.operation] === 'function') wrap(ctx, obj, op.operation, op);
  }
}

module.exports = { instrument, OPERATIONS, CHANNEL_NAME, channel, serverOf };
