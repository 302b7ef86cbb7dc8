'use strict';
// The `tls` and `sentinelTls` options → the fields the native side builds its rustls
// configurations from (src/config.rs `tls_of` says where each applies and refuses
// contradictions).

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

// One TLS option object (`name` is `tls` or `sentinelTls`) → { ca, cert, key, servername,
// rejectUnauthorized } with PEM texts, each undefined when not given; null when not given.
function fieldsOf(tls, name) {
  if (tls == null) return null;
  if (typeof tls !== 'object' || Array.isArray(tls)) throw typeError(`${name} must be an object ${KEYS}`);
  const { servername, rejectUnauthorized } = tls;
  if (servername != null && (typeof servername !== 'string' || servername === '' || servername.length > 253)) {
    throw typeError(`${name}.servername must be a DNS name or an IP address (a non-empty string)`);
  }
  if (rejectUnauthorized != null && typeof rejectUnauthorized !== 'boolean') {
    throw typeError(`${name}.rejectUnauthorized must be a boolean`);
  }
  const out = {
    ca: pemOf(tls.ca, `${name}.ca`),
    cert: pemOf(tls.cert, `${name}.cert`),
    key: pemOf(tls.key, `${name}.key`),
    servername: servername == null ? undefined : servername,
    rejectUnauthorized: rejectUnauthorized == null ? undefined : rejectUnauthorized,
  };
  if ((out.cert === undefined) !== (out.key === undefined)) {
    throw typeError(`${name}.cert and ${name}.key go together (a client certificate and its key)`);
  }
  return out;
}

// `tls` and `sentinelTls` → the native options (`tlsCa`, `tlsCert`, `tlsKey`, `tlsServername`,
// `tlsRejectUnauthorized`, `tlsGiven`, and the same with `sentinelTls…`), each undefined when
// not given. `tlsGiven` / `sentinelTlsGiven` say the option was given even as `{}` (behind
// Sentinel the data nodes then use TLS; `sentinelTls: {}` replaces `tls` for the sentinels).
function tlsOptionsOf(tls, sentinelTls) {
  const t = fieldsOf(tls, 'tls');
  const s = fieldsOf(sentinelTls, 'sentinelTls');
  const out = {};
  if (t) {
    Object.assign(out, { tlsCa: t.ca, tlsCert: t.cert, tlsKey: t.key, tlsServername: t.servername, tlsRejectUnauthorized: t.rejectUnauthorized, tlsGiven: true });
  }
  if (s) {
    Object.assign(out, { sentinelTlsCa: s.ca, sentinelTlsCert: s.cert, sentinelTlsKey: s.key, sentinelTlsServername: s.servername, sentinelTlsRejectUnauthorized: s.rejectUnauthorized, sentinelTlsGiven: true });
  }
  return out;
}

module.exports = { tlsOptionsOf };
