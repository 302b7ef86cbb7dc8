'use strict';
// Drop-in for the ERP's old `cache/services/pubsub.js`: the `pubsub` singleton (the same
// object `require('@bisman/cache').pubsub` gives) and its methods as plain functions,
// bound to it. `require('@bisman/cache/services/pubsub')`.

const cache = require('../index.js');

const pubsub = cache.pubsub;
exports.pubsub = pubsub;
exports.subscribe = pubsub.subscribe.bind(pubsub);
exports.onMessage = pubsub.onMessage.bind(pubsub);
exports.publishPermissionInvalidation = pubsub.publishPermissionInvalidation.bind(pubsub);
exports.publishSessionInvalidation = pubsub.publishSessionInvalidation.bind(pubsub);
exports.publishCacheInvalidation = pubsub.publishCacheInvalidation.bind(pubsub);
exports.invalidateUserPermissions = pubsub.invalidateUserPermissions.bind(pubsub);
exports.invalidateRolePermissions = pubsub.invalidateRolePermissions.bind(pubsub);
exports.invalidateSession = pubsub.invalidateSession.bind(pubsub);
exports.invalidateUserSessions = pubsub.invalidateUserSessions.bind(pubsub);
exports.invalidateKeys = pubsub.invalidateKeys.bind(pubsub);
exports.invalidatePattern = pubsub.invalidatePattern.bind(pubsub);
exports.shutdown = pubsub.shutdown.bind(pubsub);
exports.PubSub = cache.PubSub;
