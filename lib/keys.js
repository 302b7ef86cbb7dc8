'use strict';
// The key builders (exact outputs of API.md) and hashToken; the native side validates ids.

const native = require('./native');
const { checkIdType, checkString } = require('./errors');

module.exports = {
  sessionKey: (tokenHash) => (checkIdType(tokenHash, 'tokenHash'), native.sessionKey(tokenHash)),
  sessionUserKey: (userId) => (checkIdType(userId, 'userId'), native.sessionUserKey(userId)),
  permUserKey: (userId) => (checkIdType(userId, 'userId'), native.permUserKey(userId)),
  permRoleKey: (roleId) => (checkIdType(roleId, 'roleId'), native.permRoleKey(roleId)),
  rateKey: (ip, endpoint) => {
    checkIdType(ip, 'ip');
    checkString(endpoint, 'endpoint');
    return native.rateKey(ip, endpoint);
  },
  lockKey: (resource, id) => {
    checkIdType(resource, 'resource');
    checkIdType(id, 'id');
    return native.lockKey(resource, id);
  },
  hashToken: (token) => (checkString(token, 'token'), native.hashToken(token)),
};
