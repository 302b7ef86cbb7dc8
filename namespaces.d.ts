// `@bisman/cache/namespaces`: the key patterns and builders of the ERP's old cache/namespaces.js.
export { sessionKey, sessionUserKey, permUserKey, permRoleKey, rateKey, lockKey, hashToken } from './index';

export declare const KEY_PATTERNS: Readonly<{
  session: 'session:{session_id}';
  sessionUser: 'session:user:{userId}';
  permUser: 'perm:user:{userId}';
  permRole: 'perm:role:{roleId}';
  rate: 'rate:{ip}:{endpoint}';
  lock: 'lock:{resource}:{id}';
}>;
