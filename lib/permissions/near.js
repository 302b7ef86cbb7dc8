'use strict';
// The permission service's side of the near caches: the options that configure them, the
// lookups and fills of the JS layer (lib/near_l1.js), and the stats of both layers. A hit in
// the JS layer answers with no native call at all; on a miss, a fill copies the Rust near
// cache's snapshot (src/near_cache/mod.rs), if it holds one, before anything else.

const { typeError } = require('../errors');

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

// → the JS layer's entry of a user or a role, or undefined (no entry, or no JS layer).
function l1User(ctx, userId) {
  const l1 = ctx.nearL1;
  return l1 === null ? undefined : l1.get(l1.users, userId);
}

function l1Role(ctx, roleId) {
  const l1 = ctx.nearL1;
  return l1 === null ? undefined : l1.get(l1.roles, roleId);
}

// Inside `op` (after the argument checks): throws what the native side throws for a bad id.
function fillUser(ctx, userId) {
  const l1 = ctx.nearL1;
  return l1 === null ? undefined : l1.fillUser(userId);
}

function fillRole(ctx, roleId) {
  const l1 = ctx.nearL1;
  return l1 === null ? undefined : l1.fillRole(roleId);
}

// The near cache's state: { enabled, trusted, size, max, ttlMs, hits, misses, fills, …,
// l1: { size, hits } }. `hits` counts the answers of both layers; `size` and the rest are
// the Rust layer's (the JS layer holds copies of its entries, l1.size of them).
function nearCacheStats(ctx) {
  const s = ctx.bridge.native.nearCacheStats();
  const l1 = ctx.nearL1;
  s.l1 = { size: l1 === null ? 0 : l1.size(), hits: l1 === null ? 0 : l1.hits };
  s.hits += s.l1.hits;
  return s;
}

module.exports = { nearCacheOptions, l1User, l1Role, fillUser, fillRole, nearCacheStats };
