'use strict';
// Drop-in for the ERP's old `cache/services/rateLimiter.js`: the `rateLimiter` singleton (the same
// object `require('@bisman/cache').rateLimiter` gives) and its methods as plain functions,
// bound to it. `require('@bisman/cache/services/rateLimiter')`.

const cache = require('../index.js');

const rateLimiter = cache.rateLimiter;
exports.rateLimiter = rateLimiter;
exports.checkLimit = rateLimiter.checkLimit.bind(rateLimiter);
exports.resetLimit = rateLimiter.resetLimit.bind(rateLimiter);
exports.resetAllLimitsForIp = rateLimiter.resetAllLimitsForIp.bind(rateLimiter);
exports.getIpStatus = rateLimiter.getIpStatus.bind(rateLimiter);
exports.createLimiter = rateLimiter.createLimiter.bind(rateLimiter);
exports.authLimiter = rateLimiter.authLimiter;
exports.strictLimiter = rateLimiter.strictLimiter;
exports.RateLimiter = cache.RateLimiter;
