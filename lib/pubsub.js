'use strict';
// pubsub: invalidation messages between app nodes. One dedicated subscriber connection per
// instance lives in Rust (src/pubsub.rs): it resubscribes by itself after Redis restarts and
// applies each message to the near cache before JS sees it. Messages reach the handlers here.

const { EventEmitter } = require('events');
const { typeError, checkIdType, checkString } = require('./errors');
const { CHANNEL, CHANNELS, CODES } = require('./rules');

// A message as it travels: the caller's fields plus `origin` (nodeId) and `ts` (epoch ms);
// natively, when it is published, `sender` (this instance's random id) and `seq` (its number
// on the channel, from 1) are appended, inside the signature (src/store/pubsub.rs). The four
// names are reserved: a caller's fields of those names are replaced or left out.
// Own fields that keep a message off the fast path of buildMessage.
const RESERVED = ['origin', 'ts', 'sender', 'seq', 'toJSON'];

// `"origin":<nodeId JSON>,"ts":` of the instance's options, made once per configuration.
function tailOf(ctx) {
  if (ctx.messageTailOptions !== ctx.options) {
    ctx.messageTailOptions = ctx.options;
    ctx.messageTail = `"origin":${JSON.stringify(ctx.options.nodeId)},"ts":`;
  }
  return ctx.messageTail;
}

function buildMessage(ctx, msg) {
  if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
    throw typeError('a pub/sub message must be an object');
  }
  try {
    // The usual message, a plain object without reserved fields: its JSON with the two fields
    // appended, the same text as the copy below gives (no copy of the object, no new shape).
    if (Object.getPrototypeOf(msg) === Object.prototype && !RESERVED.some((k) => Object.hasOwn(msg, k))) {
      const body = JSON.stringify(msg);
      return `${body.length === 2 ? '{' : `${body.slice(0, -1)},`}${tailOf(ctx)}${Date.now()}}`;
    }
    // `sender` and `seq` are the native side's numbering: a caller's own are dropped
    const { sender, seq, ...fields } = msg;
    return JSON.stringify({ ...fields, origin: ctx.options.nodeId, ts: Date.now() });
  } catch (err) {
    throw typeError(`the message is not serialisable to JSON: ${err.message}`);
  }
}

// The native options of `maxMessageBytes` (a number; its range is checked natively) and
// `pubsubSecret` (a string, or an array of one or two: the first signs, any verifies).
function pubsubOptions(o) {
  // maxMessageBytes' type is checked with the other numeric options (lib/context.js).
  const { pubsubSecret } = o;
  const maxMessageBytes = o.maxMessageBytes == null ? undefined : o.maxMessageBytes;
  let pubsubSecrets;
  if (typeof pubsubSecret === 'string') pubsubSecrets = [pubsubSecret];
  else if (Array.isArray(pubsubSecret) && pubsubSecret.every((s) => typeof s === 'string')) pubsubSecrets = [...pubsubSecret];
  else if (pubsubSecret != null) throw typeError('pubsubSecret must be a string or an array of one or two strings (the value is not shown)');
  return { maxMessageBytes, pubsubSecrets };
}

const NO_REJECTS = Object.freeze({ oversize: 0, unsigned: 0, badSignature: 0 });
// The subscriber's gap detection (src/pubsub.rs track): counted natively, shown in status()
// and as fields of stats().pubsub.
const SEQ_FIELDS = Object.freeze(['gaps', 'outOfOrder', 'senderRestarts', 'lateJoins', 'forgottenSenders', 'nearDrops', 'unnumbered']);
const NO_SEQ = Object.freeze({ sender: null, numbered: 0, ...Object.fromEntries(SEQ_FIELDS.map((f) => [f, 0])), senders: 0 });

class PubSub extends EventEmitter {
  constructor(ctx) {
    super();
    this.ctx = ctx;
    this.stats = ctx.stats.pubsub;
    this.stats.messages = 0;
    this.stats.handlerErrors = 0;
    // metrics(): delivery lag (receive time − the sender's `ts`, wall clocks of two nodes).
    this.stats.lagMsSum = 0;
    this.stats.lagMsMax = 0;
    this.stats.lagSamples = 0;
    // Counted natively (the subscriber drops them before the near cache or JS sees them);
    // enumerable getters, so stats() (a JSON copy) shows their values.
    Object.defineProperty(this.stats, 'dropped', { enumerable: true, configurable: true, get: () => this.status().dropped });
    Object.defineProperty(this.stats, 'rejected', { enumerable: true, configurable: true, get: () => ({ ...NO_REJECTS, ...this.status().rejected }) });
    for (const f of SEQ_FIELDS) {
      Object.defineProperty(this.stats, f, { enumerable: true, configurable: true, get: () => this.status()[f] ?? 0 });
    }
    this.handlers = new Map(CHANNELS.map((c) => [c, new Set()]));
    // The module's own message kinds on cache:invalidate (`type` → handler), e.g. the rate
    // limiter's resets ('rate-reset'): handled here, not passed to the app's handlers.
    this.internal = new Map();
    this.wanted = false;
    // Called from Rust through a weak threadsafe function, one message at a time.
    this.dispatch = (channel, payload) => this.onNativeMessage(channel, payload);
  }

  // Starts the subscriber (idempotent) → true once subscribed, false if Redis did not answer
  // within connectTimeoutMs (it keeps trying) or the cache is disabled. Never rejects for
  // back-end reasons, so `pubsub.subscribe()` without await is safe.
  subscribe() {
    this.wanted = true;
    return this.ctx.op((n, id) => n.pubsubSubscribe(id, this.dispatch), undefined, this.ctx.soft('pubsub', false));
  }

  // True while the subscription is confirmed (the near cache is trusted only then).
  isConnected() {
    const b = this.ctx.bridgeInstance;
    return b !== null && b.native.pubsubConnected();
  }

  // { subscribed, connected, resubscribes, dropped, rejected: { oversize, unsigned,
  // badSignature }, signed, maxMessageBytes, sender, numbered, unnumbered, gaps, outOfOrder,
  // senderRestarts, lateJoins, forgottenSenders, nearDrops, senders }
  status() {
    const b = this.ctx.bridgeInstance;
    if (b === null) return { subscribed: false, connected: false, resubscribes: 0, dropped: 0, rejected: { ...NO_REJECTS }, signed: false, maxMessageBytes: null, ...NO_SEQ };
    return b.native.pubsubStatus();
  }

  // → a function that removes the handler. `handler(data, channel)`; data is the parsed JSON.
  onMessage(channel, handler) {
    const set = this.handlers.get(channel);
    if (set === undefined) throw typeError(`channel must be one of ${CHANNELS.join(', ')}`);
    if (typeof handler !== 'function') throw typeError('handler must be a function');
    set.add(handler);
    return () => set.delete(handler);
  }

  // Registers the handler of one of the module's own message kinds (see `internal`).
  onInternalMessage(type, handler) {
    this.internal.set(type, handler);
  }

  onNativeMessage(channel, payload) {
    const set = this.handlers.get(channel);
    if (set === undefined) return;
    this.stats.messages++;
    let data;
    try {
      data = JSON.parse(payload);
    } catch {
      data = payload;
    }
    if (data !== null && typeof data === 'object' && typeof data.ts === 'number') {
      const lag = Math.max(0, Date.now() - data.ts);
      this.stats.lagMsSum += lag;
      this.stats.lagSamples++;
      if (lag > this.stats.lagMsMax) this.stats.lagMsMax = lag;
    }
    const own = channel === CHANNEL.cache && data !== null && typeof data === 'object' ? this.internal.get(data.type) : undefined;
    if (own !== undefined) {
      try {
        own(data);
      } catch (err) {
        this.report(err, channel);
      }
      return;
    }
    for (const handler of [...set]) {
      try {
        const r = handler(data, channel);
        if (r !== null && typeof r === 'object' && typeof r.then === 'function') {
          r.then(undefined, (err) => this.report(err, channel));
        }
      } catch (err) {
        this.report(err, channel);
      }
    }
  }

  // A throwing handler is reported: an 'error' event when someone listens, else a log line.
  report(err, channel) {
    this.stats.handlerErrors++;
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', err, channel);
      } catch (listenerErr) {
        console.error(`@bisman/cache: a pub/sub 'error' listener threw:`, listenerErr);
      }
    } else {
      console.error(`@bisman/cache: a pub/sub handler for ${channel} threw:`, err);
    }
  }

  publish(channel, msg) {
    return this.ctx.op(
      (n, id) => n.pubsubPublish(id, channel, buildMessage(this.ctx, msg)),
      undefined,
      this.ctx.soft('pubsub', 0),
    );
  }

  // → the number of subscribers that received it.
  publishPermissionInvalidation(msg) {
    return this.publish(CHANNEL.permissions, msg);
  }

  publishSessionInvalidation(msg) {
    return this.publish(CHANNEL.sessions, msg);
  }

  publishCacheInvalidation(msg) {
    return this.publish(CHANNEL.cache, msg);
  }

  // The convenience invalidations delete in Redis, then broadcast; each answers what its
  // non-broadcasting counterpart answers (true if removed / how many removed).
  invalidateUserPermissions(userId) {
    return invalidatePermissions(this.ctx, 'user', userId, 'pubsub');
  }

  invalidateRolePermissions(roleId) {
    return invalidatePermissions(this.ctx, 'role', roleId, 'pubsub');
  }

  // `sessionId` is the token hash the session is stored under.
  invalidateSession(sessionId) {
    return this.ctx.op(
      (n, id) => {
        checkString(sessionId, 'sessionId');
        this.ctx.detachFlights(`session:${sessionId}#`);
        n.pubsubInvalidateSession(id, sessionId, buildMessage(this.ctx, { type: 'session', sessionId }));
      },
      undefined,
      this.ctx.journal.failure('pubsub', false, 'session', sessionId, true), // kept, replayed (lib/journal.js)
    );
  }

  invalidateUserSessions(userId) {
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        this.ctx.detachFlights('session:');
        n.pubsubInvalidateUserSessions(id, userId, buildMessage(this.ctx, { type: 'user', userId }));
      },
      undefined,
      this.ctx.journal.failure('pubsub', 0, 'userSessions', userId, true), // kept, replayed (lib/journal.js)
    );
  }

  // → how many of the (unprefixed, exact) keys existed. Each key's revision is bumped with its
  // delete, so a wrap load that began before, on any node, is not cached.
  invalidateKeys(keys) {
    return this.ctx.op(
      (n, id) => {
        if (!Array.isArray(keys) || keys.some((k) => typeof k !== 'string')) {
          throw typeError('keys must be an array of strings');
        }
        if (this.ctx.onInvalidate !== undefined) this.ctx.onInvalidate({ keys }); // lib/general_cache/
        n.pubsubInvalidateKeys(id, keys, buildMessage(this.ctx, { keys }));
      },
      undefined,
      // A failure is kept and replayed, one entry per key (lib/journal.js).
      (err) => {
        this.ctx.failed('pubsub', err);
        if (err.code !== CODES.disabled && Array.isArray(keys)) for (const k of keys) this.ctx.journal.record('cacheKeys', k, true);
        return 0;
      },
    );
  }

  // SCAN + delete in batches (keyPrefix applied, never KEYS) → how many keys were removed. The
  // matching keys' revisions are bumped, and those of keys with a wrap load in flight (their
  // revision key exists: src/store/revision.rs), so no load that began before is cached.
  // Refused with a TypeError (src/pubsub.rs check_pattern): no literal first segment ('?*',
  // '*:*'), a whole family of the library's keys ('session:*', 'perm:user:*'), or locks.
  invalidatePattern(pattern) {
    return this.ctx.op(
      (n, id) => {
        checkString(pattern, 'pattern');
        if (this.ctx.onInvalidate !== undefined) this.ctx.onInvalidate({ pattern }); // lib/general_cache/
        n.pubsubInvalidatePattern(id, pattern, buildMessage(this.ctx, { pattern }));
      },
      undefined,
      this.ctx.soft('pubsub', 0),
    );
  }

  // Closes the subscriber connection (the instance's other connection stays usable);
  // afterwards nothing of pub/sub keeps Node alive. subscribe() starts it again.
  shutdown() {
    this.wanted = false;
    const b = this.ctx.bridgeInstance;
    if (b !== null) b.native.pubsubClose();
    return Promise.resolve();
  }
}

// Deletes a user or role permission snapshot, drops it from the local near cache at once and
// broadcasts on permissions:invalidate, so every node drops its copy when the message arrives
// → true if a snapshot was removed. `service` names the stats bucket a failure counts in.
function invalidatePermissions(ctx, kind, id, service) {
  return ctx.op(
    (n, opId) => {
      if (kind === 'user') {
        checkIdType(id, 'userId');
        ctx.detachFlights(`perm:user:${id}#`);
        n.permUserRemove(opId, id, buildMessage(ctx, { type: 'user', userId: id }));
      } else {
        checkIdType(id, 'roleId');
        ctx.detachFlights(`perm:role:${id}#`);
        n.permRoleRemove(opId, id, buildMessage(ctx, { type: 'role', roleId: id }));
      }
    },
    undefined,
    // A failure is kept and replayed (lib/journal.js).
    ctx.journal.failure(service, false, kind === 'user' ? 'userPerms' : 'rolePerms', id, true),
  );
}

module.exports = { PubSub, CHANNELS, buildMessage, invalidatePermissions, pubsubOptions };
