'use strict';
// Drop-in for the ERP's old `cache/services/sessionCache.js`: the `sessionCache` singleton (the same
// object `require('@bisman/cache').sessionCache` gives) and its methods as plain functions,
// bound to it. `require('@bisman/cache/services/sessionCache')`.

const cache = require('../index.js');

const sessionCache = cache.sessionCache;
exports.sessionCache = sessionCache;
exports.setSession = sessionCache.setSession.bind(sessionCache);
exports.getSession = sessionCache.getSession.bind(sessionCache);
exports.getSessionWithFallback = sessionCache.getSessionWithFallback.bind(sessionCache);
exports.invalidateSession = sessionCache.invalidateSession.bind(sessionCache);
exports.invalidateUserSessions = sessionCache.invalidateUserSessions.bind(sessionCache);
exports.getUserSessions = sessionCache.getUserSessions.bind(sessionCache);
exports.SessionCache = cache.SessionCache;
