'use strict';
// permissionCache: user and role permission snapshots, the database loaders as fallback, and
// the near cache (src/near_cache.rs) in front of Redis for the hot checks.

const { typeError, checkIdType, checkString } = require('./errors');
const { invalidatePermissions } = require('./pubsub');
const { hasModule, hasPage } = require('./near_l1');
const { permUserKey, permRoleKey } = require('./keys'); // validate an id (TypeError) on the journal's bypass

const DEFAULT_SUPER_ROLES = Object.freeze(['SUPER_ADMIN']);
const hasOwn = Object.prototype.hasOwnProperty;

// The near-cache options of createCache/configure, checked for type here (the native side
// checks the ranges and throws RangeError ERR_OUT_OF_RANGE).
function nearCacheOptions(o) {
  const out = {};
  for (const name of ['nearCacheTtlMs', 'nearCacheMax']) {
    const v = o[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'number') throw typeError(`${name} must be a number`);
    out[name] = v;
  }
  if (o.superRoles !== undefined && o.superRoles !== null) {
    const roles = o.superRoles;
    if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string' || r === '')) {
      throw typeError('superRoles must be an array of non-empty strings');
    }
    out.superRoles = [...roles];
  }
  return out;
}

function checkSnapshot(s) {
  if (s === null || typeof s !== 'object' || Array.isArray(s)) {
    throw typeError('a permissions snapshot must be an object { role?, modules: string[], pages: { [page]: string[] } }');
  }
  if (s.modules !== undefined && !(Array.isArray(s.modules) && s.modules.every((m) => typeof m === 'string'))) {
    throw typeError('snapshot.modules must be an array of strings');
  }
  if (s.pages !== undefined) {
    if (s.pages === null || typeof s.pages !== 'object' || Array.isArray(s.pages)) {
      throw typeError('snapshot.pages must be an object of string arrays');
    }
    for (const [page, list] of Object.entries(s.pages)) {
      if (!Array.isArray(list) || !list.every((a) => typeof a === 'string')) {
        throw typeError(`snapshot.pages[${JSON.stringify(page).slice(0, 100)}] must be an array of strings`);
      }
    }
  }
}

// A stored value → the snapshot, or undefined when it is not one as checkSnapshot accepts it
// (the same rule as Snapshot::parse in src/near_cache.rs): such a value is corrupt.
function parseStored(json) {
  let s;
  try {
    s = JSON.parse(json);
    checkSnapshot(s);
  } catch {
    return undefined;
  }
  return s;
}

function snapshotJson(s) {
  checkSnapshot(s);
  try {
    return JSON.stringify(s);
  } catch (err) {
    throw typeError(`the permissions snapshot is not serialisable to JSON: ${err.message}`);
  }
}

// The rules, identical to Snapshot in src/near_cache.rs: a super role grants everything;
// '*' in modules grants every module; '*' in a page's list grants every action on that page.
function isSuper(snap, superRoles) {
  const r = snap.role;
  return (typeof r === 'string' || typeof r === 'number') && superRoles.includes(String(r));
}

function allowsModule(snap, module, superRoles) {
  if (snap === null || typeof snap !== 'object') return false;
  if (isSuper(snap, superRoles)) return true;
  const m = snap.modules;
  return Array.isArray(m) && (m.includes('*') || m.includes(module));
}

function allowsPage(snap, page, action, superRoles) {
  if (snap === null || typeof snap !== 'object') return false;
  if (isSuper(snap, superRoles)) return true;
  const pages = snap.pages;
  if (pages === null || typeof pages !== 'object' || !hasOwn.call(pages, page)) return false;
  const list = pages[page];
  return Array.isArray(list) && (list.includes('*') || list.includes(action));
}

const withSource = (snap, source) => ({ ...snap, source });

class PermissionCache {
  constructor(ctx) {
    this.ctx = ctx;
    this.stats = ctx.stats.permission;
    this.countHit = ctx.hitCounter('permission');
    // Stored values that were not a snapshot (`42`, truncated JSON, an array, modules not a
    // string array, …): dropped, read as a miss.
    this.stats.corrupt = 0;
    // Loader fills refused because the snapshot was revoked after the miss that started the
    // load: answered, cached nowhere (issue 15).
    this.stats.staleFills = 0;
    this.dropError = ctx.soft('permission', false);
    // Revocations pending replay (lib/journal.js): size 0 when none.
    this.journal = ctx.journal;
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

  // ---- the JS near cache (lib/near_l1.js) ------------------------------------------------
  // A hit there answers with no native call at all. On a miss, the call copies the Rust near
  // cache's snapshot (if it holds one) before anything else, then goes on as before.

  l1User(userId) {
    const l1 = this.ctx.nearL1;
    return l1 === null ? undefined : l1.get(l1.users, userId);
  }

  l1Role(roleId) {
    const l1 = this.ctx.nearL1;
    return l1 === null ? undefined : l1.get(l1.roles, roleId);
  }

  // Inside `op` (after the argument checks): throws what the native side throws for a bad id.
  fillUser(userId) {
    const l1 = this.ctx.nearL1;
    return l1 === null ? undefined : l1.fillUser(userId);
  }

  fillRole(roleId) {
    const l1 = this.ctx.nearL1;
    return l1 === null ? undefined : l1.fillRole(roleId);
  }

  // ---- user snapshots -------------------------------------------------------------------

  // → the cached snapshot or null (cache only: near cache, then Redis).
  getUserPermissions(userId) {
    if (this.journal.size !== 0 && this.journal.revokesUser(userId)) return this.bypass(() => (permUserKey(userId), null));
    const hit = this.l1User(userId);
    if (hit !== undefined) return Promise.resolve(this.countHit(hit.json));
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        const l1 = this.fillUser(userId);
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
        return this.loadUser(userId, role, true);
      });
    }
    if (role == null || typeof role === 'string' || typeof role === 'number') {
      const hit = this.l1User(userId);
      if (hit !== undefined) return Promise.resolve(withSource(this.countHit(hit.json), 'cache'));
    }
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        if (role != null) checkIdType(role, 'role');
        const l1 = this.fillUser(userId);
        if (l1 !== undefined) return withSource(this.countHit(l1.json), 'cache');
        const near = n.permUserGet(id, userId);
        if (near !== null) return withSource(this.countHit(near), 'cache');
      },
      (json) => this.stored('user', userId, json, (snap) => withSource(snap, 'cache'), () => this.loadUser(userId, role)),
      (err) => {
        this.ctx.failed('permission', err);
        return this.loadUser(userId, role, true);
      },
    );
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
        const snap = r.length > 2 ? parseStored(r[2]) : undefined;
        if (snap === undefined) return load(r[0], r[1]);
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

  // A loader's fill (issue 15): written only if nothing revoked the snapshot since the miss
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

  loadUser(userId, role, redisFailed = false) {
    const loader = this.ctx.loader('userPermissions');
    if (loader === null) return null;
    return this.afterMiss('user', userId, redisFailed, (rev, t) =>
      this.loadSnapshot('user', userId, rev, t, () => loader(userId, role == null ? undefined : role)),
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
        return Promise.resolve(this.loadUser(userId, undefined, true)).then((s) => allowsModule(s, module, this.superRoles));
      });
    }
    if (typeof module === 'string') {
      const hit = this.l1User(userId);
      if (hit !== undefined) {
        this.stats.hits++;
        return Promise.resolve(hasModule(hit, module));
      }
    }
    return this.ctx.op(
      (n, id) => {
        checkIdType(userId, 'userId');
        checkString(module, 'module');
        const l1 = this.fillUser(userId);
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
        return Promise.resolve(this.loadUser(userId, undefined, true)).then((s) => allowsModule(s, module, this.superRoles));
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
        return Promise.resolve(this.loadUser(userId, undefined, true)).then((s) => allowsPage(s, page, action, this.superRoles));
      });
    }
    if (typeof page === 'string' && typeof action === 'string') {
      const hit = this.l1User(userId);
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
        const l1 = this.fillUser(userId);
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
        return Promise.resolve(this.loadUser(userId, undefined, true)).then((s) => allowsPage(s, page, action, this.superRoles));
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
    const load = () => Promise.resolve(this.loadUser(userId)).then(rule);
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
    const hit = this.l1Role(roleId);
    if (hit !== undefined) return Promise.resolve(this.countHit(hit.json));
    return this.ctx.op(
      (n, id) => {
        checkIdType(roleId, 'roleId');
        const l1 = this.fillRole(roleId);
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
    if (this.journal.size !== 0 && this.journal.revokesRole(roleId)) return this.bypass(() => (permRoleKey(roleId), this.loadRole(roleId, true)));
    const hit = this.l1Role(roleId);
    if (hit !== undefined) return Promise.resolve(withSource(this.countHit(hit.json), 'cache'));
    return this.ctx.op(
      (n, id) => {
        checkIdType(roleId, 'roleId');
        const l1 = this.fillRole(roleId);
        if (l1 !== undefined) return withSource(this.countHit(l1.json), 'cache');
        const near = n.permRoleGet(id, roleId);
        if (near !== null) return withSource(this.countHit(near), 'cache');
      },
      (json) => this.stored('role', roleId, json, (snap) => withSource(snap, 'cache'), () => this.loadRole(roleId)),
      (err) => {
        this.ctx.failed('permission', err);
        return this.loadRole(roleId, true);
      },
    );
  }

  loadRole(roleId, redisFailed = false) {
    const loader = this.ctx.loader('rolePermissions');
    if (loader === null) return null;
    return this.afterMiss('role', roleId, redisFailed, (rev, t) => this.loadSnapshot('role', roleId, rev, t, () => loader(roleId)));
  }

  // → true if a snapshot was removed; every node drops the role and all user snapshots
  // from its near cache.
  invalidateRolePermissions(roleId) {
    return invalidatePermissions(this.ctx, 'role', roleId, 'permission');
  }

  // The near cache's state: { enabled, trusted, size, max, ttlMs, hits, misses, fills, …,
  // l1: { size, hits } }. `hits` counts the answers of both layers; `size` and the rest are
  // the Rust layer's (the JS layer holds copies of its entries, l1.size of them).
  nearCacheStats() {
    const s = JSON.parse(this.ctx.bridge.native.nearCacheStats());
    const l1 = this.ctx.nearL1;
    s.l1 = { size: l1 === null ? 0 : l1.size(), hits: l1 === null ? 0 : l1.hits };
    s.hits += s.l1.hits;
    return s;
  }
}

module.exports = { PermissionCache, nearCacheOptions, allowsModule, allowsPage, DEFAULT_SUPER_ROLES };
