// `@bisman/cache/services/pubsub`: the ERP's old cache/services/pubsub.js.
import type { PubSub } from '../index';
export { pubsub, PubSub } from '../index';
/**
 * `pubsub.subscribe`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.subscribe}.
 */
export declare const subscribe: PubSub['subscribe'];
/**
 * `pubsub.onMessage`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.onMessage}.
 */
export declare const onMessage: PubSub['onMessage'];
/**
 * `pubsub.publishPermissionInvalidation`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.publishPermissionInvalidation}.
 */
export declare const publishPermissionInvalidation: PubSub['publishPermissionInvalidation'];
/**
 * `pubsub.publishSessionInvalidation`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.publishSessionInvalidation}.
 */
export declare const publishSessionInvalidation: PubSub['publishSessionInvalidation'];
/**
 * `pubsub.publishCacheInvalidation`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.publishCacheInvalidation}.
 */
export declare const publishCacheInvalidation: PubSub['publishCacheInvalidation'];
/**
 * `pubsub.invalidateUserPermissions`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.invalidateUserPermissions}.
 */
export declare const invalidateUserPermissions: PubSub['invalidateUserPermissions'];
/**
 * `pubsub.invalidateRolePermissions`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.invalidateRolePermissions}.
 */
export declare const invalidateRolePermissions: PubSub['invalidateRolePermissions'];
/**
 * `pubsub.invalidateSession`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.invalidateSession}.
 */
export declare const invalidateSession: PubSub['invalidateSession'];
/**
 * `pubsub.invalidateUserSessions`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.invalidateUserSessions}.
 */
export declare const invalidateUserSessions: PubSub['invalidateUserSessions'];
/**
 * `pubsub.invalidateKeys`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.invalidateKeys}.
 */
export declare const invalidateKeys: PubSub['invalidateKeys'];
/**
 * `pubsub.invalidatePattern`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.invalidatePattern}.
 */
export declare const invalidatePattern: PubSub['invalidatePattern'];
/**
 * `pubsub.shutdown`, bound to the singleton (so it can be passed around):
 * see {@link PubSub.shutdown}.
 */
export declare const shutdown: PubSub['shutdown'];
