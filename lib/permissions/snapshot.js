'use strict';
// A permissions snapshot as stored: its shape checked, parsed from and written as JSON, and
// tagged with where an answer came from.

const { typeError } = require('../errors');

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
// (the same rule as Stored::read in src/near_cache/snapshot.rs): such a value is corrupt.
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

// An answer of the *WithFallback reads: the snapshot and where it came from ('cache' | 'database').
const withSource = (snap, source) => ({ ...snap, source });

module.exports = { checkSnapshot, parseStored, snapshotJson, withSource };
