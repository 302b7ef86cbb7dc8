// `@bisman/cache/services/pubsub`: the ERP's old cache/services/pubsub.js.
import type { PubSub } from '../index';
export { pubsub, PubSub } from '../index';
export declare const subscribe: PubSub['subscribe'];
export declare const onMessage: PubSub['onMessage'];
export declare const publishPermissionInvalidation: PubSub['publishPermissionInvalidation'];
export declare const publishSessionInvalidation: PubSub['publishSessionInvalidation'];
export declare const publishCacheInvalidation: PubSub['publishCacheInvalidation'];
export declare const invalidateUserPermissions: PubSub['invalidateUserPermissions'];
export declare const invalidateRolePermissions: PubSub['invalidateRolePermissions'];
export declare const invalidateSession: PubSub['invalidateSession'];
export declare const invalidateUserSessions: PubSub['invalidateUserSessions'];
export declare const invalidateKeys: PubSub['invalidateKeys'];
export declare const invalidatePattern: PubSub['invalidatePattern'];
export declare const shutdown: PubSub['shutdown'];
