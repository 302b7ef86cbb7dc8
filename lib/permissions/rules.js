'use strict';
// The permission rules, identical to Snapshot in src/near_cache/snapshot.rs: a super role grants
// everything; '*' in modules grants every module; '*' in a page's list grants every action on
// that page.

// The super roles when the `superRoles` option is not given, and the wildcard: the native
// side's (src/rules.rs).
const { DEFAULT_SUPER_ROLES, PERMISSION_WILDCARD: ANY } = require('../rules');
const hasOwn = Object.prototype.hasOwnProperty;

function isSuper(snap, superRoles) {
  const r = snap.role;
  return (typeof r === 'string' || typeof r === 'number') && superRoles.includes(String(r));
}

function allowsModule(snap, module, superRoles) {
  if (snap === null || typeof snap !== 'object') return false;
  if (isSuper(snap, superRoles)) return true;
  const m = snap.modules;
  return Array.isArray(m) && (m.includes(ANY) || m.includes(module));
}

function allowsPage(snap, page, action, superRoles) {
  if (snap === null || typeof snap !== 'object') return false;
  if (isSuper(snap, superRoles)) return true;
  const pages = snap.pages;
  if (pages === null || typeof pages !== 'object' || !hasOwn.call(pages, page)) return false;
  const list = pages[page];
  return Array.isArray(list) && (list.includes(ANY) || list.includes(action));
}

module.exports = { DEFAULT_SUPER_ROLES, allowsModule, allowsPage };
