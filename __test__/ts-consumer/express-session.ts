// `@bisman/cache/express-session` as express-session sees it: the store is accepted by
// `session({ store })` and by its `Store` type, with either of the module's names.
import session, { type Store } from 'express-session';
import SessionStoreDefault, { SessionStore } from '@bisman/cache/express-session';
import { createCache } from '@bisman/cache';
import type { RequestHandler } from 'express';

const store = new SessionStore({ cache: createCache({ url: 'memory://ts' }), prefix: 'app', ttlSec: 1800, userId: (s) => s.cookie && 7, scanCount: 500 });
const asStore: Store = new SessionStoreDefault();
const mw: RequestHandler = session({ store, secret: 's3cret', resave: false, saveUninitialized: false, rolling: true });
const count: Promise<number> = store.length();
store.get('sid', (err, sess) => void [err, sess?.cookie.maxAge]);
// @ts-expect-error prefix is a string
new SessionStore({ prefix: 1 });
void [asStore, mw, count];
