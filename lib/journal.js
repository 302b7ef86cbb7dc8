'use strict';
// The revocation journal (README "Revocation"): a revocation that could not reach Redis
// (invalidateSession, invalidateUserSessions, invalidateUserPermissions,
// invalidateRolePermissions, from sessionCache, permissionCache, pubsub or the top level; the
// general cache's del and pubsub.invalidateKeys, one entry per key) is kept here, per Cache instance, and replayed first when Redis answers again. Until then:
//   - this node treats it as revoked: its reads of that session / user / role / key skip the
//     cache (and the near caches) and ask the loader, whose answer is not cached (the general
//     cache's get misses);
//   - isEnabled() is false and ping() answers unhealthy ('revocations pending replay').
// Deletes are idempotent, so a replay is safe; writes are never journaled nor replayed.
// Bounded by `revocationJournalMax` entries (de-duplicated per session / user / role): a
// revocation that does not fit is counted (journalOverflow) and the journal is marked
// overflowed: every session and permission read of this node then skips the cache (fail
// closed) until Redis answers and what was kept is replayed. The entries that did not fit are
// lost for the other nodes (and for this one after that replay).
// A disabled cache (no Redis configured) keeps nothing: there is no cache to revoke from.

const native = require('./native');
const { typeError, rangeError, isBackendFailure } = require('./errors');
const { buildMessage } = require('./pubsub');
const { CODES } = require('./rules');

const DEFAULT_MAX = 10_000;
const MAX_MAX = 1_000_000;
// The replay timer: first try after RETRY_MIN_MS, doubling up to RETRY_MAX_MS while Redis
// does not answer. Unref'd: it never keeps Node alive.
const RETRY_MIN_MS = 100;
const RETRY_MAX_MS = 1000;
// Replayed revocations in flight at once (each bounded by commandTimeoutMs); a round stops at
// the first one that fails (the rest wait for the next round).
const REPLAY_BATCH = 256;

const KINDS = ['session', 'userSessions', 'userPerms', 'rolePerms', 'cacheKeys'];

// `revocationJournalMax`: an integer 0…1,000,000 (0: nothing is kept; a failed revocation
// makes this node fail closed until Redis answers again).
function journalMax(v) {
  if (v === undefined || v === null) return DEFAULT_MAX;
  if (typeof v !== 'number') throw typeError('revocationJournalMax must be a number of entries');
  if (!Number.isInteger(v) || v < 0 || v > MAX_MAX) {
    throw rangeError(`revocationJournalMax must be an integer from 0 to ${MAX_MAX}`);
  }
  return v;
}

const idOk = (id) => typeof id === 'string' || (typeof id === 'number' && Number.isFinite(id));
const userOf = (data) => (data.user_id != null ? data.user_id : data.userId);

class Journal {
  constructor(ctx, max) {
    this.ctx = ctx;
    this.max = max;
    // kind → Map(String(id) → { kind, id, publish, gen })
    this.maps = { session: new Map(), userSessions: new Map(), userPerms: new Map(), rolePerms: new Map(), cacheKeys: new Map() };
    this.count = 0;
    this.overflowed = false;
    // Read on the hot paths: 0 when nothing is pending (the entries, +1 while overflowed).
    this.size = 0;
    this.recorded = 0;
    this.replayed = 0;
    this.overflows = 0;
    this.replayRounds = 0;
    this.replayFailures = 0;
    this.dropped = 0;
    this.timer = null;
    this.delay = RETRY_MIN_MS;
    this.running = null;
    this.stopped = false;
    this.tick = () => {
      this.timer = null;
      this.flush().then((clean) => {
        if (clean) {
          this.delay = RETRY_MIN_MS;
          return;
        }
        this.delay = Math.min(this.delay * 2, RETRY_MAX_MS);
        // No back end (shut down): the next one (ensureBridge) resumes the replay.
        if (this.ctx.bridgeInstance !== null) this.schedule();
      });
    };
  }

  updateSize() {
    this.size = this.count + (this.overflowed ? 1 : 0);
  }

  // ---- recording ------------------------------------------------------------------------

  // The onError handler of a revocation: counts the failure like ctx.soft (anything that is
  // not a back-end failure is rethrown), keeps the revocation, answers `value`.
  failure(service, value, kind, id, publish) {
    return (err) => {
      this.ctx.failed(service, err);
      if (err.code !== CODES.disabled) this.record(kind, id, publish);
      return value;
    };
  }

  record(kind, id, publish) {
    const map = this.maps[kind];
    if (map === undefined || !idOk(id) || ((kind === 'session' || kind === 'cacheKeys') && typeof id !== 'string')) return;
    const key = String(id);
    const e = map.get(key);
    if (e !== undefined) {
      e.gen++; // a replay already in flight no longer clears it
      if (publish) e.publish = true;
    } else if (this.count >= this.max) {
      this.overflows++;
      this.overflowed = true;
    } else {
      map.set(key, { kind, id, publish: publish === true, gen: 0 });
      this.count++;
      this.recorded++;
    }
    this.updateSize();
    this.schedule();
  }

  // ---- what this node treats as revoked (callers test `size !== 0` first) -----------------

  // A session by token hash.
  revokesSession(hash) {
    return this.overflowed || this.maps.session.has(hash);
  }

  // A session by raw token (hashed only while sessions are pending).
  revokesToken(token) {
    return this.overflowed || (this.maps.session.size !== 0 && this.maps.session.has(native.hashToken(token)));
  }

  // A session object whose user's sessions are pending revocation.
  revokesSessionUser(data) {
    if (this.maps.userSessions.size === 0) return false;
    const uid = userOf(data);
    return uid != null && this.maps.userSessions.has(String(uid));
  }

  // A user's permission snapshot: that user, or any role pending (a role revocation covers
  // every user snapshot, as it empties every user snapshot of the near cache).
  revokesUser(userId) {
    return this.overflowed || this.maps.rolePerms.size !== 0 || (idOk(userId) && this.maps.userPerms.has(String(userId)));
  }

  revokesRole(roleId) {
    return this.overflowed || (idOk(roleId) && this.maps.rolePerms.has(String(roleId)));
  }

  // A general cache key (get / wrap, lib/general_cache/).
  revokesKey(key) {
    return this.overflowed || this.maps.cacheKeys.has(key);
  }

  // May a loader's answer be written to the cache?
  mayCacheKey(key) {
    return this.size === 0 || !this.revokesKey(key);
  }

  mayCacheSession(hash, row) {
    return this.size === 0 || !(this.revokesSession(hash) || this.revokesSessionUser(row));
  }

  mayCacheUser(userId) {
    return this.size === 0 || !this.revokesUser(userId);
  }

  mayCacheRole(roleId) {
    return this.size === 0 || !this.revokesRole(roleId);
  }

  // ---- replay -----------------------------------------------------------------------------

  schedule(delay = this.delay) {
    if (this.timer !== null || this.size === 0 || this.stopped) return;
    this.timer = setTimeout(this.tick, delay);
    this.timer.unref();
  }

  // The instance was shut down: no timer (the entries stay; a new back end resumes).
  stop() {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  // A back end was made (ensureBridge): replay what is pending.
  resume() {
    this.stopped = false;
    this.delay = RETRY_MIN_MS;
    this.schedule(0);
  }

  // One replay round now (joined by concurrent callers) → true when nothing is pending after it.
  flush() {
    if (this.size === 0) return Promise.resolve(true);
    if (this.running === null) {
      this.running = this.round()
        .catch(() => false)
        .then(() => {
          this.running = null;
          return this.size === 0;
        });
    }
    return this.running;
  }

  async round() {
    if (this.ctx.bridgeInstance === null) return;
    this.replayRounds++;
    const overflowsBefore = this.overflows;
    // PING first: it goes to Redis even while the circuit is open (its success closes it).
    const up = await this.ctx.op((n, id) => n.ping(id), () => true, () => false).catch(() => false);
    if (!up) return;
    const list = [];
    for (const kind of KINDS) for (const e of this.maps[kind].values()) list.push(e);
    for (let i = 0; i < list.length; i += REPLAY_BATCH) {
      const done = await Promise.all(list.slice(i, i + REPLAY_BATCH).map((e) => this.replayOne(e)));
      if (done.includes(false)) return;
    }
    // Everything kept was replayed and nothing overflowed meanwhile: this node reads the cache
    // again (what did not fit is lost: see the header).
    if (this.overflowed && this.overflows === overflowsBefore && this.count === 0) {
      this.overflowed = false;
      this.updateSize();
    }
  }

  // → true once Redis confirmed it (the entry is removed unless it was recorded again
  // meanwhile), false when it failed on the back end (kept).
  replayOne(e) {
    const gen = e.gen;
    const map = this.maps[e.kind];
    const key = String(e.id);
    const remove = () => {
      if (map.get(key) === e && e.gen === gen) {
        map.delete(key);
        this.count--;
        this.updateSize();
      }
    };
    return this.ctx
      .op(
        (n, id) => this.submit(n, id, e),
        () => {
          this.replayed++;
          remove();
          return true;
        },
        (err) => {
          if (!isBackendFailure(err)) throw err;
          this.replayFailures++;
          return false;
        },
      )
      .catch((err) => {
        if (isBackendFailure(err)) {
          this.replayFailures++;
          return false;
        }
        // Refused as input (cannot happen for what record() accepts): it revokes nothing,
        // keeping it would keep this node unhealthy forever.
        this.dropped++;
        remove();
        return true;
      });
  }

  // The same native revocation the original call made (and its broadcast).
  submit(n, id, e) {
    const ctx = this.ctx;
    switch (e.kind) {
      case 'session':
        if (e.publish) n.pubsubInvalidateSession(id, e.id, buildMessage(ctx, { type: 'session', sessionId: e.id }));
        else n.sessionRemove(id, e.id);
        return undefined;
      case 'userSessions':
        if (e.publish) n.pubsubInvalidateUserSessions(id, e.id, buildMessage(ctx, { type: 'user', userId: e.id }));
        else n.sessionRemoveUser(id, e.id);
        return undefined;
      case 'userPerms':
        n.permUserRemove(id, e.id, buildMessage(ctx, { type: 'user', userId: e.id }));
        return undefined;
      case 'rolePerms':
        n.permRoleRemove(id, e.id, buildMessage(ctx, { type: 'role', roleId: e.id }));
        return undefined;
      default:
        if (e.publish) n.pubsubInvalidateKeys(id, [e.id], buildMessage(ctx, { keys: [e.id] }));
        else n.cacheDel(id, [e.id]);
        return undefined;
    }
  }

  // stats().revocation
  stats() {
    const m = this.maps;
    return {
      pending: this.count,
      sessions: m.session.size,
      userSessions: m.userSessions.size,
      userPermissions: m.userPerms.size,
      rolePermissions: m.rolePerms.size,
      cacheKeys: m.cacheKeys.size,
      overflowed: this.overflowed,
      journalOverflow: this.overflows,
      recorded: this.recorded,
      replayed: this.replayed,
      replayRounds: this.replayRounds,
      replayFailures: this.replayFailures,
      dropped: this.dropped,
      max: this.max,
    };
  }
}

module.exports = { Journal, journalMax, DEFAULT_MAX, RETRY_MIN_MS, RETRY_MAX_MS };
