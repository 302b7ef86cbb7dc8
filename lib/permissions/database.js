'use strict';
// The database fallback of the permission service: on a miss (or a Redis failure) the app's
// loader (`loaders.userPermissions` / `loaders.rolePermissions`) answers, once for all
// concurrent callers, and its snapshot is cached unless a revocation came in meanwhile.

const { parseStored, snapshotJson, withSource } = require('./snapshot');
const replies = require('../replies');

class DatabaseFallback {
  // `stats`: the permission service's counters (stats().permission).
  constructor(ctx, stats) {
    this.ctx = ctx;
    this.stats = stats;
    // Revocations pending replay (lib/journal.js): size 0 when none.
    this.journal = ctx.journal;
  }

  // A miss of `kind` ('user' | 'role') `id`: the miss read (a snapshot written meanwhile is a
  // hit after all; else the revision and time that guard the fill), then `load(rev, t)`.
  // `redisFailed`: the read just failed, so nothing is cached (no revision to guard it, and a
  // hung Redis must not cost the caller a second commandTimeoutMs).
  afterMiss(kind, id, redisFailed, load) {
    if (redisFailed) return load(null, null);
    return this.ctx.op(
      (n, opId) => n.permMissRead(opId, kind, id),
      (r) => {
        const m = replies.miss(r);
        const snap = m.value !== null ? parseStored(m.value) : undefined;
        if (snap === undefined) return load(m.rev, m.t);
        this.stats.misses--;
        this.stats.hits++;
        return withSource(snap, 'cache');
      },
      (err) => {
        this.ctx.failed('permission', err);
        return load(null, null);
      },
    );
  }

  // The loader's snapshot of `kind` `id`, once for all concurrent callers that saw the same
  // revision, filled under `rev` (null: not cached) → { ...snapshot, source } or null.
  loadSnapshot(kind, id, rev, t, call) {
    return this.ctx
      .singleFlight(`perm:${kind}:${id}#${rev === null ? '-' : rev}`, async () => {
        this.stats.loaderCalls++;
        const snap = await call();
        if (snap === null || typeof snap !== 'object' || Array.isArray(snap)) return null;
        // A snapshot we cannot cache (Redis down, bad shape, revoked meanwhile, or its
        // revocation pending replay: lib/journal.js) is still the database's answer.
        const mayCache = kind === 'user' ? this.journal.mayCacheUser(id) : this.journal.mayCacheRole(id);
        if (rev !== null && mayCache) await this.fillSnapshot(kind, id, snap, rev, t).catch(() => false);
        this.stats.fallbacks++;
        return JSON.stringify(snap);
      })
      // Every caller gets its own copy (they share one loader call).
      .then((json) => (json === null ? null : withSource(JSON.parse(json), 'database')));
  }

  // A loader's fill: written only if nothing revoked the snapshot since the miss
  // read that gave `rev` and `t` → true, false when refused (counted in
  // stats().permission.staleFills; then it is cached nowhere), null when Redis failed.
  fillSnapshot(kind, id, snap, rev, t) {
    return this.ctx.op(
      (n, opId) => n.permFill(opId, kind, id, snapshotJson(snap), undefined, rev, t),
      (written) => {
        if (!written) this.stats.staleFills++;
        return written;
      },
      this.ctx.soft('permission', null),
    );
  }

  // The loader's answer for a user (`role` passed on to it) → { ...snapshot, source } or null;
  // null at once when no loader is configured.
  loadUser(userId, role, redisFailed = false) {
    const loader = this.ctx.loader('userPermissions');
    if (loader === null) return null;
    return this.afterMiss('user', userId, redisFailed, (rev, t) =>
      this.loadSnapshot('user', userId, rev, t, () => loader(userId, role == null ? undefined : role)),
    );
  }

  // The same for a role.
  loadRole(roleId, redisFailed = false) {
    const loader = this.ctx.loader('rolePermissions');
    if (loader === null) return null;
    return this.afterMiss('role', roleId, redisFailed, (rev, t) => this.loadSnapshot('role', roleId, rev, t, () => loader(roleId)));
  }
}

module.exports = { DatabaseFallback };
