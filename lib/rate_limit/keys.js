'use strict';
// Client keys built from request input (a username, an API key, any string): spelled so that
// the input can never inject key syntax or unbounded length into a Redis key.

const crypto = require('crypto');
const { typeError } = require('../errors');
const { clientIp } = require('./addresses');

// A key made only of these characters (and at most SAFE_KEY_MAX long) is used as it is; any
// other key is hashed. `~` is not among them: it marks a hashed key, so no raw key can spell
// another key's hash.
const SAFE_KEY = /^[A-Za-z0-9_.:@/%+=-]{1,128}$/;
// How much of a username is read before it is normalised and hashed (a form field can be
// megabytes long; the hash of a prefix this long still tells real usernames apart).
const USERNAME_MAX_CHARS = 256;

// SHA-256 of `s`, 128 bits as base64url (22 characters).
function digest(s) {
  return crypto.createHash('sha256').update(s).digest('base64url').slice(0, 22);
}

// Any request-derived key → a key that is safe in Redis and at most 128 characters: itself when
// it is already plain (SAFE_KEY), else `~` and its hash.
function safeKey(raw) {
  const s = typeof raw === 'string' ? raw : String(raw);
  return SAFE_KEY.test(s) ? s : `~${digest(s)}`;
}

// A username from request input → the form it is counted under: a string (a number is spelled
// as one; anything else, a missing field included, is ''), cut to USERNAME_MAX_CHARS, Unicode
// NFKC, trimmed and lower-cased, so `Alice`, ` alice ` and `ａｌｉｃｅ` are one user.
function normalizeUsername(v) {
  let s;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number' && Number.isFinite(v)) s = String(v);
  else return '';
  return s.slice(0, USERNAME_MAX_CHARS).normalize('NFKC').trim().toLowerCase();
}

// rateLimiter.keys.usernameAndIp(fieldOrFn) → a keyGenerator for "username + IP" login limits:
// the key is `u~{hash of the normalised username}~{the client's address bucket}`. `fieldOrFn`
// is the name of the body field holding the username (read from req.body, then req.query), or a
// function (req) → the username. Whatever the request holds, the key is an answer: a missing,
// huge or odd username is hashed like any other.
/**
 * @param {{ ipv6Subnet: number | false }} limiter
 * @param {string | ((req: any) => unknown)} fieldOrFn
 * @returns {(req: any) => string | Promise<string>}
 */
function usernameAndIp(limiter, fieldOrFn) {
  let read;
  if (typeof fieldOrFn === 'function') {
    read = fieldOrFn;
  } else if (typeof fieldOrFn === 'string' && fieldOrFn !== '') {
    read = (req) => {
      const b = req.body;
      if (b !== null && typeof b === 'object' && Object.hasOwn(b, fieldOrFn)) return b[fieldOrFn];
      const q = req.query;
      return q !== null && typeof q === 'object' && Object.hasOwn(q, fieldOrFn) ? q[fieldOrFn] : undefined;
    };
  } else {
    throw typeError('usernameAndIp needs the name of the username field or a function (req) → username');
  }
  const keyOf = (req, username) => `u~${digest(normalizeUsername(username))}~${clientIp(req, limiter.ipv6Subnet)}`;
  return function usernameAndIpKey(req) {
    const u = read(req);
    if (u !== null && typeof u === 'object' && typeof u.then === 'function') return Promise.resolve(u).then((v) => keyOf(req, v));
    return keyOf(req, u);
  };
}

module.exports = { safeKey, digest, normalizeUsername, usernameAndIp };
