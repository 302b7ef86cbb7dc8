// `@bisman/cache/services/permissionCache`: the ERP's old cache/services/permissionCache.js.
import type { PermissionCache } from '../index';
export { permissionCache, PermissionCache } from '../index';
export declare const getUserPermissions: PermissionCache['getUserPermissions'];
export declare const setUserPermissions: PermissionCache['setUserPermissions'];
export declare const getUserPermissionsWithFallback: PermissionCache['getUserPermissionsWithFallback'];
export declare const hasModulePermission: PermissionCache['hasModulePermission'];
export declare const hasPagePermission: PermissionCache['hasPagePermission'];
export declare const getRolePermissions: PermissionCache['getRolePermissions'];
export declare const setRolePermissions: PermissionCache['setRolePermissions'];
export declare const getRolePermissionsWithFallback: PermissionCache['getRolePermissionsWithFallback'];
export declare const invalidateUserPermissions: PermissionCache['invalidateUserPermissions'];
export declare const invalidateRolePermissions: PermissionCache['invalidateRolePermissions'];
