// `@bisman/cache/namespaces`: the key patterns and builders of the ERP's old cache/namespaces.js.
export { sessionKey, sessionUserKey, permUserKey, permRoleKey, rateKey, lockKey, hashToken } from './index';

/** The key patterns of the ERP's guide, by name (documentation strings, not templates to fill). */
export declare const KEY_PATTERNS: Readonly<{
  /** A session, JSON. */
  session: 'session:{session_id}';
  /** The set of a user's session token hashes. */
  sessionUser: 'session:user:{userId}';
  /** A user's permissions snapshot, JSON. */
  permUser: 'perm:user:{userId}';
  /** A role's permissions snapshot, JSON. */
  permRole: 'perm:role:{roleId}';
  /** A rate-limit counter. */
  rate: 'rate:{ip}:{endpoint}';
  /** A lock: the owner token. */
  lock: 'lock:{resource}:{id}';
}>;
