'use strict';
// The `tls` option → the PEM the native side trusts as the only root for `rediss://`.

const fs = require('fs');
const { typeError } = require('./errors');

// `tls: { ca }`: a PEM string or Buffer, or the path of a PEM file. → PEM string or undefined.
function tlsCaOf(tls) {
  if (tls == null) return undefined;
  if (typeof tls !== 'object' || Array.isArray(tls)) throw typeError('tls must be an object { ca }');
  const { ca } = tls;
  if (ca == null) return undefined;
  if (Buffer.isBuffer(ca)) return ca.toString('utf8');
  if (typeof ca !== 'string' || ca === '') throw typeError('tls.ca must be a PEM string, a Buffer or a file path');
  if (ca.includes('-----BEGIN')) return ca;
  try {
    return fs.readFileSync(ca, 'utf8');
  } catch (err) {
    // The path is the caller's own configuration: naming it helps, and it is no secret.
    throw typeError(`tls.ca: cannot read ${JSON.stringify(ca)} (${err.code || err.message})`);
  }
}

module.exports = { tlsCaOf };
