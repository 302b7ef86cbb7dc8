// `@bisman/cache/services/permissionCache`: the ERP's old cache/services/permissionCache.js.
import type { PermissionCache } from '../index';
export { permissionCache, PermissionCache } from '../index';
/**
 * `permissionCache.getUserPermissions`, bound to the singleton (so it can be passed around):
 * see {@link PermissionCache.getUserPermissions}.
 */
export declare const getUserPermissions: PermissionCache['getUserPermissions'];
/**
 * `permissionCache.setUserPermissions`, bound to the singleton (so it can be passed around):
 * see {@link PermissionCache.setUserPermissions}.
 */
export declare const setUserPermissions: PermissionCache['setUserPermissions'];
/**
 * `permissionCache.getUserPermissionsWithFallback`, bound to the singleton (so it can be passed
 * around): see {@link PermissionCache.getUserPermissionsWithFallback}.
 */
export declare const getUserPermissionsWithFallback: PermissionCache['getUserPermissionsWithFallback'];
/**
 * `permissionCache.hasModulePermission`, bound to the singleton (so it can be passed around):
 * see {@link PermissionCache.hasModulePermission}.
 */
export declare const hasModulePermission: PermissionCache['hasModulePermission'];
/**
 * `permissionCache.hasPagePermission`, bound to the singleton (so it can be passed around):
 * see {@link PermissionCache.hasPagePermission}.
 */
export declare const hasPagePermission: PermissionCache['hasPagePermission'];
/**
 * `permissionCache.getRolePermissions`, bound to the singleton (so it can be passed around):
 * see {@link PermissionCache.getRolePermissions}.
 */
export declare const getRolePermissions: PermissionCache['getRolePermissions'];
/**
 * `permissionCache.setRolePermissions`, bound to the singleton (so it can be passed around):
 * see {@link PermissionCache.setRolePermissions}.
 */
export declare const setRolePermissions: PermissionCache['setRolePermissions'];
/**
 * `permissionCache.getRolePermissionsWithFallback`, bound to the singleton (so it can be passed
 * around): see {@link PermissionCache.getRolePermissionsWithFallback}.
 */
export declare const getRolePermissionsWithFallback: PermissionCache['getRolePermissionsWithFallback'];
/**
 * `permissionCache.invalidateUserPermissions`, bound to the singleton (so it can be passed around):
 * see {@link PermissionCache.invalidateUserPermissions}.
 */
export declare const invalidateUserPermissions: PermissionCache['invalidateUserPermissions'];
/**
 * `permissionCache.invalidateRolePermissions`, bound to the singleton (so it can be passed around):
 * see {@link PermissionCache.invalidateRolePermissions}.
 */
export declare const invalidateRolePermissions: PermissionCache['invalidateRolePermissions'];
