'use strict';
// The connection options as ioredis and node-redis users write them — `username`, `password`,
// `db`, `connectionName` — besides the URL: each given one replaces the URL's part, bad values
// are refused with a TypeError/RangeError (a password never shown), memory:// accepts and
// ignores them. On real redis-servers: requirepass, an ACL user, SELECT, and CLIENT SETNAME on
// every connection of a cache (the pipeline and the pub/sub subscriber).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { createCache } = require('..');
const { startRedis } = require('./helpers/redis');

const SECRET = 'conn-opt-s3cret-pw';

// `fn` throws a `Type`Error with `code`, and its message does not show `hidden`.
function refuses(fn, Type, code, hidden = SECRET) {
  let err;
  try {
    const c = fn();
    c.shutdown();
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof Type, `expected a ${Type.name}, got ${err}`);
  assert.equal(err.code, code, err.message);
  assert.ok(!String(err.message).includes(hidden), err.message);
  return err;
}

// The clients connected to `server` now, but the inspecting one: [{ name, db, user }].
async function clientsOf(admin) {
  const me = await admin.client('ID');
  const list = await admin.client('LIST');
  return list
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => Object.fromEntries(l.trim().split(' ').map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)])))
    .filter((c) => Number(c.id) !== me)
    .map((c) => ({ name: c.name, db: Number(c.db), user: c.user }));
}

describe('connection options: validation', () => {
  const url = 'redis://127.0.0.1:1';
  it('wrong types are TypeErrors that never show the value', () => {
    refuses(() => createCache({ url, password: { SECRET } }), TypeError, 'ERR_INVALID_ARG');
    refuses(() => createCache({ url, username: 5, password: SECRET }), TypeError, 'ERR_INVALID_ARG');
    refuses(() => createCache({ url, db: '1' }), TypeError, 'ERR_INVALID_ARG');
    refuses(() => createCache({ url, connectionName: 7 }), TypeError, 'ERR_INVALID_ARG');
    refuses(() => createCache({ url, sentinelPassword: [SECRET] }), TypeError, 'ERR_INVALID_ARG');
  });

  it('out-of-range values are RangeErrors; bad characters and combinations TypeErrors', () => {
    for (const db of [-1, 1.5, 2 ** 31, NaN, Infinity]) refuses(() => createCache({ url, db }), RangeError, 'ERR_OUT_OF_RANGE');
    refuses(() => createCache({ url, connectionName: '' }), RangeError, 'ERR_OUT_OF_RANGE');
    refuses(() => createCache({ url, connectionName: 'n'.repeat(129) }), RangeError, 'ERR_OUT_OF_RANGE');
    for (const name of ['erp api', 'erp\napi', 'érp']) refuses(() => createCache({ url, connectionName: name }), TypeError, 'ERR_INVALID_ARG');
    const long = SECRET.repeat(300);
    refuses(() => createCache({ url, password: long }), RangeError, 'ERR_OUT_OF_RANGE', long.slice(0, 40));
    refuses(() => createCache({ url, username: 'a b', password: SECRET }), TypeError, 'ERR_INVALID_ARG');
    // a user name alone cannot authenticate (AUTH needs a password: the option's or the URL's)
    refuses(() => createCache({ url, username: 'app' }), TypeError, 'ERR_INVALID_ARG');
    // Redis Cluster has database 0 only
    refuses(() => createCache({ cluster: ['redis://127.0.0.1:7000'], db: 2 }), RangeError, 'ERR_OUT_OF_RANGE');
    // the sentinels' credentials need sentinels
    refuses(() => createCache({ url, sentinelPassword: SECRET }), TypeError, 'ERR_INVALID_ARG');
    refuses(() => createCache({ sentinel: { masterName: 'm', nodes: ['redis://127.0.0.1:1'] }, sentinelUsername: 'u' }), TypeError, 'ERR_INVALID_ARG');
    // configure() checks the same way
    const c = createCache({ url: 'memory://conn-opts-configure' });
    try {
      refuses(() => c.configure({ url, db: -1 }), RangeError, 'ERR_OUT_OF_RANGE');
    } finally {
      c.shutdown();
    }
  });

  it('valid values are accepted (null and an empty string mean not given)', () => {
    for (const o of [
      { db: 0, connectionName: 'erp-api-1' },
      { db: 2 ** 31 - 1, username: 'app', password: SECRET, connectionName: 'n'.repeat(128) },
      { username: '', password: '', db: null, connectionName: null },
      { url: 'redis://:pw@127.0.0.1:1', username: 'app' },
    ]) {
      createCache({ url, ...o }).shutdown();
    }
    createCache({ cluster: ['redis://127.0.0.1:7000'], db: 0, password: SECRET }).shutdown();
    createCache({ sentinel: { masterName: 'm', nodes: ['redis://127.0.0.1:1'] }, password: SECRET, sentinelUsername: 'u', sentinelPassword: SECRET }).shutdown();
  });

  it('memory:// accepts them, validated, and ignores them', async () => {
    const c = createCache({ url: 'memory://conn-opts', username: 'app', password: SECRET, db: 3, connectionName: 'erp-api-1' });
    try {
      assert.equal((await c.ping()).pong, 'PONG');
      assert.equal(await c.sessionCache.setSession('m1', { user_id: 1 }), true);
      assert.equal((await c.sessionCache.getSession('m1')).user_id, 1);
    } finally {
      c.shutdown();
    }
    refuses(() => createCache({ url: 'memory://conn-opts', db: -1 }), RangeError, 'ERR_OUT_OF_RANGE');
  });
});

describe('connection options on redis-server', () => {
  let server, aclServer, admin, aclAdmin;
  before(async () => {
    server = await startRedis({ password: SECRET });
    admin = server.client();
    aclServer = await startRedis({
      username: 'admin',
      password: 'admin-pw-123',
      args: [
        '--user', 'default', 'off',
        '--user', 'admin', 'on', '>admin-pw-123', '~*', '&*', '+@all',
        '--user', 'app', 'on', `>${SECRET}`, '~*', '&*', '+@all', '-flushall',
      ],
    });
    aclAdmin = aclServer.client();
  });
  after(async () => {
    await server.stop();
    await aclServer.stop();
  });

  it('password (requirepass) with a URL without one; the option replaces the URL\'s', async () => {
    const plain = `redis://127.0.0.1:${server.port}`;
    const cases = [
      { url: plain, password: SECRET },
      { url: `redis://:wrong-pw@127.0.0.1:${server.port}`, password: SECRET },
    ];
    for (const o of cases) {
      const c = createCache(o);
      try {
        assert.equal((await c.ping()).pong, 'PONG');
        assert.equal(await c.sessionCache.setSession('p1', { user_id: 2 }), true);
        assert.equal((await c.sessionCache.getSession('p1')).user_id, 2);
      } finally {
        c.shutdown();
      }
    }
    // a wrong password option wins over the URL's right one: refused, and never shown
    const wrong = 'wrong-opt-pw-xyz';
    const c = createCache({ url: server.url, password: wrong });
    try {
      const p = await c.ping();
      assert.equal(p.pong, null);
      assert.match(p.error, /WRONGPASS|invalid password|NOAUTH/i);
      assert.ok(!p.error.includes(wrong) && !p.error.includes(SECRET), p.error);
      assert.ok(!JSON.stringify(c.stats()).includes(wrong));
      assert.ok(!c.metrics().includes(wrong));
    } finally {
      c.shutdown();
    }
  });

  it('username + password (an ACL user) and db: the option\'s database replaces the URL\'s', async () => {
    const c = createCache({ url: `redis://127.0.0.1:${aclServer.port}/1`, username: 'app', password: SECRET, db: 3, keyPrefix: 'co:' });
    try {
      assert.equal((await c.ping()).pong, 'PONG');
      assert.equal(await c.sessionCache.setSession('a1', { user_id: 3 }), true);
      assert.equal((await c.sessionCache.getSession('a1')).user_id, 3);
      await aclAdmin.select(3);
      const inDb3 = await aclAdmin.keys('co:*');
      await aclAdmin.select(1);
      const inDb1 = await aclAdmin.keys('co:*');
      await aclAdmin.select(0);
      console.log(`# ACL user app, db 3: ${inDb3.length} key(s) in db 3, ${inDb1.length} in db 1`);
      assert.ok(inDb3.length >= 1, 'written in db 3');
      assert.equal(inDb1.length, 0, 'nothing in the URL\'s db 1');
      const mine = (await clientsOf(aclAdmin)).filter((x) => x.user === 'app');
      assert.ok(mine.length >= 1 && mine.every((x) => x.db === 3), JSON.stringify(mine));
    } finally {
      c.shutdown();
    }
    // the URL's user with the option's password
    const d = createCache({ url: `redis://app@127.0.0.1:${aclServer.port}`, password: SECRET });
    try {
      assert.equal((await d.ping()).pong, 'PONG');
    } finally {
      d.shutdown();
    }
  });

  it('connectionName: CLIENT LIST names every connection of the cache (the subscriber with :sub)', async () => {
    const c = createCache({ url: `redis://127.0.0.1:${server.port}`, password: SECRET, connectionName: 'erp-api-1' });
    try {
      assert.equal((await c.ping()).pong, 'PONG');
      assert.equal(await c.pubsub.subscribe(), true);
      const clients = await clientsOf(admin);
      console.log(`# CLIENT LIST: ${clients.map((x) => x.name || '(none)').join(', ')}`);
      assert.deepEqual(clients.map((x) => x.name).sort(), ['erp-api-1', 'erp-api-1:sub']);
    } finally {
      c.shutdown();
    }
    // and after a reconnect (the server closed every connection)
    const d = createCache({ url: `redis://127.0.0.1:${server.port}`, password: SECRET, connectionName: 'erp-worker' });
    try {
      assert.equal((await d.ping()).pong, 'PONG');
      await admin.client('KILL', 'TYPE', 'normal', 'SKIPME', 'yes');
      let pong = null;
      for (let i = 0; i < 50 && pong !== 'PONG'; i++) {
        pong = (await d.ping()).pong;
        if (pong !== 'PONG') await new Promise((r) => setTimeout(r, 50));
      }
      assert.equal(pong, 'PONG');
      const names = (await clientsOf(admin)).map((x) => x.name);
      assert.deepEqual(names, ['erp-worker']);
    } finally {
      d.shutdown();
    }
  });
});
