'use strict';
// The general cache's stored form of a value (a string; the tag lets a Buffer come back a Buffer):
//   'j' + JSON            a JSON value
//   'b' + base64          a Buffer
//   's' + freshUntil + ':' + one of the above
//                         written by wrap with staleSec: fresh until that time (epoch ms of the
//                         writer's clock), then served stale while one refresh runs
// A value in any other form (written by another client) reads as a miss, counted in `corrupt`.

const { typeError } = require('../errors');

// A value → its stored form (TypeError when it is neither a Buffer nor JSON-serialisable).
function encode(value, freshUntil) {
  let body;
  if (Buffer.isBuffer(value)) body = 'b' + value.toString('base64');
  else {
    let json;
    try {
      json = JSON.stringify(value);
    } catch (err) {
      throw typeError(`the value is not serialisable to JSON: ${err.message}`);
    }
    if (json === undefined) throw typeError(`the value is not serialisable to JSON (got ${typeof value})`);
    body = 'j' + json;
  }
  return freshUntil === undefined ? body : `s${freshUntil}:${body}`;
}

// A stored string → { value, freshUntil } (freshUntil Infinity when it has none), or null
// when it is not in a form this cache writes.
function decode(s) {
  let freshUntil = Infinity;
  let body = s;
  if (s.charCodeAt(0) === 115 /* s */) {
    const colon = s.indexOf(':');
    freshUntil = colon > 1 ? Number(s.slice(1, colon)) : NaN;
    if (!Number.isFinite(freshUntil)) return null;
    body = s.slice(colon + 1);
  }
  const tag = body.charCodeAt(0);
  try {
    if (tag === 106 /* j */) return { value: JSON.parse(body.slice(1)), freshUntil };
  } catch {
    return null;
  }
  if (tag === 98 /* b */) return { value: Buffer.from(body.slice(1), 'base64'), freshUntil };
  return null;
}

module.exports = { encode, decode };
