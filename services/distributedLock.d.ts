// `@bisman/cache/services/distributedLock`: the ERP's old cache/services/distributedLock.js.
import type { DistributedLock } from '../index';
export { distributedLock, DistributedLock } from '../index';
export declare const acquire: DistributedLock['acquire'];
export declare const release: DistributedLock['release'];
export declare const extend: DistributedLock['extend'];
export declare const isLocked: DistributedLock['isLocked'];
export declare const withLock: DistributedLock['withLock'];
export declare const mutex: DistributedLock['mutex'];
export declare const acquireTaskLock: DistributedLock['acquireTaskLock'];
export declare const acquireApprovalLock: DistributedLock['acquireApprovalLock'];
export declare const acquirePaymentLock: DistributedLock['acquirePaymentLock'];
