'use strict';
// permissionCache: the service. Reads and writes of user and role permission snapshots, the
// hot checks (hasModulePermission / hasPagePermission: the JS near cache, then the Rust near
// cache, then Redis, then the database fallback), and their invalidation on every node.

const { typeError, checkIdType, checkString } = require('../errors');
const { invalidatePermissions } = require('../pubsub');
const { hasModule, hasPage } = require('../near_l1');
const { permUserKey, permRoleKey } = require('../keys'); // validate an id (TypeError) on the journal's bypass
const { parseStored, snapshotJson, withSource } = require('./snapshot');
const { DEFAULT_SUPER_ROLES, allowsModule, allowsPage } = require('./rules');
const { l1User, l1Role, fillUser, fillRole, nearCacheStats } = require('./near');
const { DatabaseFallback } = require('./database');

class PermissionCache {
  constructor(ctx) {
    this.ctx = ctx;
    this.stats = ctx.stats.permission;
    this.countHit = ctx.hitCounter('permission');
    // Stored values that were not a snapshot (`42`, truncated JSON, an array, modules not a
    // string array, …): dropped, read as a miss.
    this.stats.corrupt = 0;
    // Loader fills refused because the snapshot was revoked after the miss that started the
    // load: answered, cached nowhere.
    this.stats.staleFills = 0;
    this.dropError = ctx.soft('permission', false);
    // Revocations pending replay (lib/journal.js): size 0 when none.
    this.journal = ctx.journal;
    this.database = new DatabaseFallback(ctx, this.stats);
  }

  // Revocation journal: a read of a user or role whose revocation is pending replay skips
  // Redis and both near caches; `answer()` checks the arguments like the normal path and
  // answers from the loader (whose snapshot is not cached) or null.
  bypass(answer) {
    this.stats.misses++;
    try {
      return Promise.resolve(answer());
    } catch (err) {
      return Promise.reject(err);
    }
  }

  // The answer to a value read from Redis for `kind` ('user' | 'role') `id`: `onHit(snapshot)`,
  // or `onMiss()` when there is none or it is corrupt. A corrupt one is counted, deleted (only
  // while the key still holds it: a fill that replaced it stays), then onMiss() is asked.
  stored(kind, id, json, onHit, onMiss) {
    if (json === null) {
      this.stats.misses++;
      return onMiss();
    }
    const snap = parseStored(json);
    if (snap !== undefined) {
      this.stats.hits++;
      return onHit(snap);
    }
    this.stats.corrupt++;
    this.stats.misses++;
    return this.ctx
      .op((n, opId) => n.permDropCorrupt(opId, kind, id, json), undefined, this.dropError)
      .then(onMiss);
  }

  get superRoles() {
    return this.ctx.options.superRoles || DEFAULT_SUPER_ROLES;
  }

  // ---- user snapshots -------------------------------------------------------------------

  // → the cached snapshot or null (cache only: near cache, then Redis).
  getUserPermissions(userId) {
    if (this.journal.size !== 0 && this.journal.revokesUser(userId)) return this.bypass(() => (permUserKey(userId), null));
    const hit = l1User(this.ctx, userId);
    if (hit !== undefined) return Promise.resolve(this.countHit(hit.json));
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        const l1 = fillUser(this.ctx, userId);
        if (l1 !== undefined) return this.countHit(l1.json);
        const near = n.permUserGet(id, userId);
        if (near !== null) return this.countHit(near);
      },
      (json) => this.stored('user', userId, json, (snap) => snap, () => null),
      this.ctx.soft('permission', null),
    );
  }

  // → true, or false when Redis failed. TTL 60…300 s (default 300), else RangeError.
  setUserPermissions(userId, snapshot, ttlSec) {
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        if (ttlSec !== undefined && ttlSec !== null && typeof ttlSec !== 'number') {
          throw typeError('ttlSec must be a number of seconds');
        }
        n.permUserSet(id, userId, snapshotJson(snapshot), ttlSec == null ? undefined : ttlSec);
      },
      undefined,
      this.ctx.soft('permission', false),
    );
  }

  // → { ...snapshot, source: 'cache' | 'database' } or null; a miss (or a Redis failure)
  // asks loaders.userPermissions(userId, role), once for all concurrent callers.
  getUserPermissionsWithFallback(userId, role) {
    if (this.journal.size !== 0 && this.journal.revokesUser(userId)) {
      return this.bypass(() => {
        permUserKey(userId);
        if (role != null) checkIdType(role, 'role');
        return this.database.loadUser(userId, role, true);
      });
    }
    if (role == null || typeof role === 'string' || typeof role === 'number') {
      const hit = l1User(this.ctx, userId);
      if (hit !== undefined) return Promise.resolve(withSource(this.countHit(hit.json), 'cache'));
    }
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        if (role != null) checkIdType(role, 'role');
        const l1 = fillUser(this.ctx, userId);
        if (l1 !== undefined) return withSource(this.countHit(l1.json), 'cache');
        const near = n.permUserGet(id, userId);
        if (near !== null) return withSource(this.countHit(near), 'cache');
      },
      (json) => this.stored('user', userId, json, (snap) => withSource(snap, 'cache'), () => this.database.loadUser(userId, role)),
      (err) => {
        this.ctx.failed('permission', err);
        return this.database.loadUser(userId, role, true);
      },
    );
  }

  // → boolean. The hot path is no native call at all: the JS near cache's answer. Else one
  // synchronous native call: it answers from the Rust near cache when it holds a trusted
  // snapshot (then only Promise.resolve is added); otherwise it starts the Redis read, checked
  // in Rust (true/false arrive, no JSON), and only a snapshot missing from Redis (or Redis
  // failing) goes to the loader.
  hasModulePermission(userId, module) {
    if (this.journal.size !== 0 && this.journal.revokesUser(userId)) {
      return this.bypass(() => {
        permUserKey(userId);
        checkString(module, 'module');
        return Promise.resolve(this.database.loadUser(userId, undefined, true)).then((s) => allowsModule(s, module, this.superRoles));
      });
    }
    if (typeof module === 'string') {
      const hit = l1User(this.ctx, userId);
      if (hit !== undefined) {
        this.stats.hits++;
        return Promise.resolve(hasModule(hit, module));
      }
    }
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        checkString(module, 'module');
        const l1 = fillUser(this.ctx, userId);
        if (l1 !== undefined) {
          this.stats.hits++;
          return hasModule(l1, module);
        }
        const near = n.permCheckModule(id, userId, module);
        if (near !== null) {
          this.stats.hits++;
          return near;
        }
      },
      (allowed) => this.checked(allowed, userId, (s) => allowsModule(s, module, this.superRoles)),
      (err) => {
        this.ctx.failed('permission', err);
        return Promise.resolve(this.database.loadUser(userId, undefined, true)).then((s) => allowsModule(s, module, this.superRoles));
      },
    );
  }

  // → boolean: the page's list holds `action` or '*', or the user's role is a super role.
  hasPagePermission(userId, page, action) {
    if (this.journal.size !== 0 && this.journal.revokesUser(userId)) {
      return this.bypass(() => {
        permUserKey(userId);
        checkString(page, 'page');
        checkString(action, 'action');
        return Promise.resolve(this.database.loadUser(userId, undefined, true)).then((s) => allowsPage(s, page, action, this.superRoles));
      });
    }
    if (typeof page === 'string' && typeof action === 'string') {
      const hit = l1User(this.ctx, userId);
      if (hit !== undefined) {
        this.stats.hits++;
        return Promise.resolve(hasPage(hit, page, action));
      }
    }
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        checkString(page, 'page');
        checkString(action, 'action');
        const l1 = fillUser(this.ctx, userId);
        if (l1 !== undefined) {
          this.stats.hits++;
          return hasPage(l1, page, action);
        }
        const near = n.permCheckPage(id, userId, page, action);
        if (near !== null) {
          this.stats.hits++;
          return near;
        }
      },
      (allowed) => this.checked(allowed, userId, (s) => allowsPage(s, page, action, this.superRoles)),
      (err) => {
        this.ctx.failed('permission', err);
        return Promise.resolve(this.database.loadUser(userId, undefined, true)).then((s) => allowsPage(s, page, action, this.superRoles));
      },
    );
  }

  // The answer of a Redis-side check: a boolean, null (no snapshot: ask the loader), or the
  // stored string when it is not a snapshot (corrupt: counted, dropped, ask the loader).
  checked(allowed, userId, rule) {
    if (typeof allowed === 'boolean') {
      this.stats.hits++;
      return allowed;
    }
    const load = () => Promise.resolve(this.database.loadUser(userId)).then(rule);
    if (allowed === null) {
      this.stats.misses++;
      return load();
    }
    return this.stored('user', userId, allowed, () => load(), load);
  }

  // → true if a snapshot was removed. Drops the local near copy at once and broadcasts on
  // permissions:invalidate, so every node drops its copy when the message arrives.
  invalidateUserPermissions(userId) {
    return invalidatePermissions(this.ctx, 'user', userId, 'permission');
  }

  // ---- role snapshots -------------------------------------------------------------------

  getRolePermissions(roleId) {
    if (this.journal.size !== 0 && this.journal.revokesRole(roleId)) return this.bypass(() => (permRoleKey(roleId), null));
    const hit = l1Role(this.ctx, roleId);
    if (hit !== undefined) return Promise.resolve(this.countHit(hit.json));
    return this.ctx.op(
      (n, id) => {
        checkIdType(roleId, 'roleId');
        const l1 = fillRole(this.ctx, roleId);
        if (l1 !== undefined) return this.countHit(l1.json);
        const near = n.permRoleGet(id, roleId);
        if (near !== null) return this.countHit(near);
      },
      (json) => this.stored('role', roleId, json, (snap) => snap, () => null),
      this.ctx.soft('permission', null),
    );
  }

  // → true (TTL 5 min), or false when Redis failed.
  setRolePermissions(roleId, snapshot) {
    return this.ctx.op(
      (n, id) => {
        checkIdType(roleId, 'roleId');
        n.permRoleSet(id, roleId, snapshotJson(snapshot));
      },
      undefined,
      this.ctx.soft('permission', false),
    );
  }

  getRolePermissionsWithFallback(roleId) {
    if (this.journal.size !== 0 && this.journal.revokesRole(roleId)) return this.bypass(() => (permRoleKey(roleId), this.database.loadRole(roleId, true)));
    const hit = l1Role(this.ctx, roleId);
    if (hit !== undefined) return Promise.resolve(withSource(this.countHit(hit.json), 'cache'));
    return this.ctx.op(
      (n, id) => {
        checkIdType(roleId, 'roleId');
        const l1 = fillRole(this.ctx, roleId);
        if (l1 !== undefined) return withSource(this.countHit(l1.json), 'cache');
        const near = n.permRoleGet(id, roleId);
        if (near !== null) return withSource(this.countHit(near), 'cache');
      },
      (json) => this.stored('role', roleId, json, (snap) => withSource(snap, 'cache'), () => this.database.loadRole(roleId)),
      (err) => {
        this.ctx.failed('permission', err);
        return this.database.loadRole(roleId, true);
      },
    );
  }

  // → true if a snapshot was removed; every node drops the role and all user snapshots
  // from its near cache.
  invalidateRolePermissions(roleId) {
    return invalidatePermissions(this.ctx, 'role', roleId, 'permission');
  }

  // The near cache's state: { enabled, trusted, size, max, ttlMs, hits, misses, fills, …,
  // l1: { size, hits } } (see ./near.js).
  nearCacheStats() {
    return nearCacheStats(this.ctx);
  }
}

module.exports = { PermissionCache };
