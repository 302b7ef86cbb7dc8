'use strict';
// Drop-in for the ERP's old `cache/services/distributedLock.js`: the `distributedLock` singleton (the same
// object `require('@bisman/cache').distributedLock` gives) and its methods as plain functions,
// bound to it. `require('@bisman/cache/services/distributedLock')`.

const cache = require('../index.js');

const distributedLock = cache.distributedLock;
exports.distributedLock = distributedLock;
exports.acquire = distributedLock.acquire.bind(distributedLock);
exports.release = distributedLock.release.bind(distributedLock);
exports.extend = distributedLock.extend.bind(distributedLock);
exports.isLocked = distributedLock.isLocked.bind(distributedLock);
exports.withLock = distributedLock.withLock.bind(distributedLock);
exports.mutex = distributedLock.mutex.bind(distributedLock);
exports.acquireTaskLock = distributedLock.acquireTaskLock.bind(distributedLock);
exports.acquireApprovalLock = distributedLock.acquireApprovalLock.bind(distributedLock);
exports.acquirePaymentLock = distributedLock.acquirePaymentLock.bind(distributedLock);
exports.DistributedLock = cache.DistributedLock;
