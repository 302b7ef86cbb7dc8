'use strict';
// Drop-in for the ERP's old `cache/namespaces.js`: the key patterns and builders.
// `require('@bisman/cache/namespaces')`.

const cache = require('./index.js');

// The key patterns of the guide's quick reference ({…} = an id; the keyPrefix comes first).
exports.KEY_PATTERNS = Object.freeze({
  session: 'session:{session_id}',
  sessionUser: 'session:user:{userId}',
  permUser: 'perm:user:{userId}',
  permRole: 'perm:role:{roleId}',
  rate: 'rate:{ip}:{endpoint}',
  lock: 'lock:{resource}:{id}',
});
exports.sessionKey = cache.sessionKey;
exports.sessionUserKey = cache.sessionUserKey;
exports.permUserKey = cache.permUserKey;
exports.permRoleKey = cache.permRoleKey;
exports.rateKey = cache.rateKey;
exports.lockKey = cache.lockKey;
exports.hashToken = cache.hashToken;
