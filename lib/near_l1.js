'use strict';
// The JS near cache: a small L1 in front of the Rust near cache (src/near_cache/mod.rs), so that a
// hot permission check answered from process memory never crosses N-API (one crossing costs
// more than the whole JS hit).
//
// It keeps the Rust near cache's guarantees by never deciding anything itself:
// - It is filled only with what the Rust near cache holds at that moment (`permUserNear`),
//   and only while that cache is trusted (its subscription is up).
// - Rust bumps a generation word in memory shared with this module (SharedWords in
//   src/near_cache/mod.rs) on every invalidation it applies and every change of trust: a message
//   received by the subscriber task, a local invalidation or write, a disconnect, a clear.
//   The word is written by whichever thread applies the invalidation, the moment it does, so
//   there is no delivery lag to JS. Every entry here belongs to the generation read BEFORE the
//   native call that returned its snapshot; an entry is answered from only while that
//   generation is still current and the trusted word is set. A read that raced an
//   invalidation therefore belongs to an old generation and is never answered from.
// - Coarse on purpose: any invalidation voids every entry here (the next check refills from
//   the Rust near cache, which invalidates per key). A role invalidation, which empties every
//   user snapshot in Rust, is covered by the same rule.
// - An entry lives no longer than the Rust entry it copies (`ttlMs` is what Rust had left,
//   counted from a clock read before the call), and there are at most nearCacheMax entries.

const { performance } = require('perf_hooks');
const { NEAR_WORD_GEN: GEN, NEAR_WORD_TRUSTED: TRUSTED, PERMISSION_WILDCARD: ALL } = require('./rules');

// A user snapshot compiled for the checks, by the rules of Snapshot in src/near_cache/snapshot.rs (the
// super-role answer comes from Rust). Both are pinned by one table of cases,
// __test__/fixtures/permission_rules.json, checked by a Rust unit test and __test__/rules.test.js.
function compile(json, isSuper, expires) {
  const snap = JSON.parse(json);
  let allModules = false;
  const modules = new Set();
  if (Array.isArray(snap.modules)) {
    for (const m of snap.modules) {
      if (typeof m !== 'string') continue;
      if (m === ALL) allModules = true;
      modules.add(m);
    }
  }
  const pages = new Map();
  const p = snap.pages;
  if (p !== null && typeof p === 'object' && !Array.isArray(p)) {
    for (const page of Object.keys(p)) {
      let all = false;
      const actions = new Set();
      if (Array.isArray(p[page])) {
        for (const a of p[page]) {
          if (typeof a !== 'string') continue;
          if (a === ALL) all = true;
          actions.add(a);
        }
      }
      pages.set(page, { all, actions });
    }
  }
  return { json, expires, isSuper, allModules, modules, pages };
}

const hasModule = (e, module) => e.isSuper || e.allModules || e.modules.has(module);

function hasPage(e, page, action) {
  if (e.isSuper) return true;
  const p = e.pages.get(page);
  return p !== undefined && (p.all || p.actions.has(action));
}

class NearL1 {
  // `words`: the ArrayBuffer of NativeCache#nearCacheWords (never handed out further).
  constructor(native, words, max) {
    this.native = native;
    this.words = new Int32Array(words);
    this.gen = Atomics.load(this.words, GEN);
    this.users = new Map();
    this.roles = new Map();
    this.max = max;
    this.hits = 0;
  }

  // The L1 of a native instance, or null when its near cache is disabled or the runtime
  // does not allow shared memory (then every call takes the native path, as before).
  static create(native) {
    const s = native.nearCacheStats();
    if (!s.enabled) return null;
    const words = native.nearCacheWords();
    return words === null ? null : new NearL1(native, words, s.max);
  }

  // Live entries only: after an invalidation the maps are emptied here, not left to the next
  // lookup (expired entries still count until looked up or evicted).
  size() {
    if (this.live() !== this.gen) {
      this.users.clear();
      this.roles.clear();
    }
    return this.users.size + this.roles.size;
  }

  // The current generation while the Rust near cache is trusted, else NaN (equal to nothing).
  // A detached buffer (nothing here hands it out, but JS could reach it) reads as NaN too:
  // this cache then never answers again and every call takes the native path.
  live() {
    const w = this.words;
    try {
      return Atomics.load(w, TRUSTED) === 1 ? Atomics.load(w, GEN) : NaN;
    } catch {
      return NaN;
    }
  }

  // The live entry for `id` in `map` (users or roles), or undefined. Costs two atomic loads
  // and one clock read on a hit.
  get(map, id) {
    const e = map.get(id);
    if (e === undefined) return undefined;
    if (this.live() !== this.gen) {
      this.users.clear();
      this.roles.clear();
      return undefined;
    }
    if (performance.now() >= e.expires) {
      map.delete(id);
      return undefined;
    }
    this.hits++;
    return e;
  }

  // The Rust near cache's snapshot of user `id`, copied here; undefined when it holds none.
  // Throws what the native call throws for a bad id.
  fillUser(id) {
    return this.fill(this.users, id, (n) => n.permUserNear(id), true);
  }

  fillRole(id) {
    return this.fill(this.roles, id, (n) => n.permRoleNear(id), false);
  }

  fill(map, id, peek, compiled) {
    // Both read BEFORE the call: the generation the snapshot belongs to at the latest, and a
    // time no later than the one Rust counted its `ttlMs` from.
    const gen = this.live();
    // Untrusted: the Rust near cache answers nothing; skip the crossing.
    if (Number.isNaN(gen)) return undefined;
    const t0 = performance.now();
    const s = peek(this.native);
    if (s === null) return undefined;
    const expires = t0 + s.ttlMs;
    const e = compiled ? compile(s.json, s.isSuper, expires) : { json: s.json, expires };
    if (gen !== this.gen) {
      // The first fill of a new generation: what is here belongs to an older one.
      this.users.clear();
      this.roles.clear();
      this.gen = gen;
    }
    map.delete(id);
    while (this.users.size + this.roles.size >= this.max) {
      const oldest = map.size > 0 ? map : map === this.users ? this.roles : this.users;
      oldest.delete(oldest.keys().next().value);
    }
    map.set(id, e);
    return e;
  }
}

module.exports = { NearL1, compile, hasModule, hasPage };
