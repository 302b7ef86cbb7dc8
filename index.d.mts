// Types of the ESM entry (index.mjs): the named exports of index.d.ts, and the module object
// as the default export (`import cache, { rateLimiter } from '@bisman/cache'`).
import * as cache from './index.js';

export * from './index.js';
export default cache;
