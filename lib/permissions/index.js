'use strict';
// permissionCache: this file only gathers the module's names; each job lives in its own file
// (service, database, near, snapshot, rules).

const { PermissionCache } = require('./service');
const { nearCacheOptions } = require('./near');
const { allowsModule, allowsPage, DEFAULT_SUPER_ROLES } = require('./rules');

module.exports = { PermissionCache, nearCacheOptions, allowsModule, allowsPage, DEFAULT_SUPER_ROLES };
