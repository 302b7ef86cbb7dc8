'use strict';
// The `tls` option → the fields the native side builds its rustls configuration from (for
// `rediss://` only; the native side refuses them with any other URL).

const fs = require('fs');
const { typeError } = require('./errors');

const KEYS = '{ ca, cert, key, servername, rejectUnauthorized }';

// One PEM option: a PEM string or Buffer, or the path of a PEM file. → PEM string or undefined.
function pemOf(value, name) {
  if (value == null) return undefined;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (typeof value !== 'string' || value === '') throw typeError(`${name} must be a PEM string, a Buffer or a file path`);
  if (value.includes('-----BEGIN')) return value;
  try {
    return fs.readFileSync(value, 'utf8');
  } catch (err) {
    // The path is the caller's own configuration: naming it helps, and it is no secret.
    throw typeError(`${name}: cannot read ${JSON.stringify(value)} (${err.code || err.message})`);
  }
}

// `tls: { ca, cert, key, servername, rejectUnauthorized }` → the native options
// (`tlsCa`, `tlsCert`, `tlsKey`, `tlsServername`, `tlsRejectUnauthorized`), each undefined
// when not given.
function tlsOptionsOf(tls) {
  if (tls == null) return {};
  if (typeof tls !== 'object' || Array.isArray(tls)) throw typeError(`tls must be an object ${KEYS}`);
  const { servername, rejectUnauthorized } = tls;
  if (servername != null && (typeof servername !== 'string' || servername === '' || servername.length > 253)) {
    throw typeError('tls.servername must be a DNS name or an IP address (a non-empty string)');
  }
  if (rejectUnauthorized != null && typeof rejectUnauthorized !== 'boolean') {
    throw typeError('tls.rejectUnauthorized must be a boolean');
  }
  const out = {
    tlsCa: pemOf(tls.ca, 'tls.ca'),
    tlsCert: pemOf(tls.cert, 'tls.cert'),
    tlsKey: pemOf(tls.key, 'tls.key'),
    tlsServername: servername == null ? undefined : servername,
    tlsRejectUnauthorized: rejectUnauthorized == null ? undefined : rejectUnauthorized,
  };
  if ((out.tlsCert === undefined) !== (out.tlsKey === undefined)) {
    throw typeError('tls.cert and tls.key go together (a client certificate and its key)');
  }
  return out;
}

module.exports = { tlsOptionsOf };
