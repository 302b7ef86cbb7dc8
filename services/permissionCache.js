'use strict';
// Drop-in for the ERP's old `cache/services/permissionCache.js`: the `permissionCache` singleton (the same
// object `require('@bisman/cache').permissionCache` gives) and its methods as plain functions,
// bound to it. `require('@bisman/cache/services/permissionCache')`.

const cache = require('../index.js');

const permissionCache = cache.permissionCache;
exports.permissionCache = permissionCache;
exports.getUserPermissions = permissionCache.getUserPermissions.bind(permissionCache);
exports.setUserPermissions = permissionCache.setUserPermissions.bind(permissionCache);
exports.getUserPermissionsWithFallback = permissionCache.getUserPermissionsWithFallback.bind(permissionCache);
exports.hasModulePermission = permissionCache.hasModulePermission.bind(permissionCache);
exports.hasPagePermission = permissionCache.hasPagePermission.bind(permissionCache);
exports.getRolePermissions = permissionCache.getRolePermissions.bind(permissionCache);
exports.setRolePermissions = permissionCache.setRolePermissions.bind(permissionCache);
exports.getRolePermissionsWithFallback = permissionCache.getRolePermissionsWithFallback.bind(permissionCache);
exports.invalidateUserPermissions = permissionCache.invalidateUserPermissions.bind(permissionCache);
exports.invalidateRolePermissions = permissionCache.invalidateRolePermissions.bind(permissionCache);
exports.PermissionCache = cache.PermissionCache;
