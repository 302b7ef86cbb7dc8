// `@bisman/cache/services/distributedLock`: the ERP's old cache/services/distributedLock.js.
// The functions are the singleton's methods, bound to it; `distributedLock.lock()` (handles
// for `await using`) and `distributedLock.semaphore()` are on the singleton.
import type { DistributedLock } from '../index';
export { distributedLock, DistributedLock } from '../index';
/** One attempt (or `retries`/`waitMs` of them) → granted, busy (`heldBy`) or refused (`error`); `signal` cancels. */
export declare const acquire: DistributedLock['acquire'];
/** Compare-and-delete: true only if `owner` still held the lock. */
export declare const release: DistributedLock['release'];
/** Compare-and-expire: true only if `owner` still holds the lock. */
export declare const extend: DistributedLock['extend'];
/** The holder and its TTL, or `{ locked: false }`. */
export declare const isLocked: DistributedLock['isLocked'];
/** Runs `fn` under the lock with the watchdog; ELOCKED when busy; `signal` cancels. */
export declare const withLock: DistributedLock['withLock'];
/** `withLock` on `lock:mutex:{name}` that waits its turn (10 s by default). */
export declare const mutex: DistributedLock['mutex'];
/** `acquire('task', id, options)`. */
export declare const acquireTaskLock: DistributedLock['acquireTaskLock'];
/** `acquire('approval', id, options)`. */
export declare const acquireApprovalLock: DistributedLock['acquireApprovalLock'];
/** `acquire('payment', id, options)`. */
export declare const acquirePaymentLock: DistributedLock['acquirePaymentLock'];
