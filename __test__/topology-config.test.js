'use strict';
// configure({ cluster }) / configure({ sentinel }) and their URL forms: shapes and URLs are
// validated with typed errors that never echo a URL. (The topologies themselves are exercised
// by `npm run test:topologies`.)

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createCache } = require('..');

function refused(options, Class = TypeError, code = 'ERR_INVALID_ARG') {
  let err;
  try {
    const cache = createCache(options);
    // shapes are checked by createCache; URLs when the native side is created (first use)
    return cache.ping().then((r) => {
      assert.fail(`accepted: ${JSON.stringify(r)}`);
    }, (e) => check(e, Class, code, options));
  } catch (e) {
    err = e;
  }
  check(err, Class, code, options);
  return Promise.resolve();
}

function check(err, Class, code, options) {
  assert.ok(err instanceof Class, `expected ${Class.name}, got ${err && err.constructor.name}: ${err && err.message}`);
  assert.equal(err.code, code);
  assert.ok(!String(err.message).includes('hunter2'), `the message echoes a secret: ${err.message}`);
  return options;
}

describe('cluster and sentinel configuration', () => {
  it('bad shapes are refused with TypeError ERR_INVALID_ARG', async () => {
    await refused({ cluster: [] });
    await refused({ cluster: 'redis://127.0.0.1:7000' });
    await refused({ cluster: [7000] });
    await refused({ sentinel: null });
    await refused({ sentinel: { nodes: ['redis://127.0.0.1:26379'] } });
    await refused({ sentinel: { masterName: '', nodes: ['redis://127.0.0.1:26379'] } });
    await refused({ sentinel: { masterName: 'm', nodes: [] } });
    await refused({ url: 'redis://127.0.0.1:6379', cluster: ['redis://127.0.0.1:7000'] });
    await refused({ cluster: ['redis://127.0.0.1:7000'], sentinel: { masterName: 'm', nodes: ['redis://127.0.0.1:26379'] } });
    await refused({ url: 'redis+cluster://127.0.0.1:7000', cluster: ['redis://127.0.0.1:7000'] });
  });

  it('bad node URLs are refused without echoing them', async () => {
    await refused({ cluster: ['http://:hunter2@127.0.0.1:7000'] });
    await refused({ cluster: ['redis://:hunter2@127.0.0.1'] });
    await refused({ cluster: ['redis://127.0.0.1:7000', 'rediss://:hunter2@127.0.0.1:7001'] });
    await refused({ sentinel: { masterName: 'm', nodes: ['redis://:hunter2@h:notaport'] } });
    await refused({ sentinel: { masterName: 'a b', nodes: ['redis://127.0.0.1:26379'] } });
    await refused({ url: 'redis+cluster://:hunter2@' });
    await refused({ url: 'redis+cluster://127.0.0.1:7000/name' });
    await refused({ url: 'redis+sentinel://127.0.0.1:26379' });
  });

  // The TLS rule: `tls` needs rediss:// cluster seeds; `sentinelTls` needs rediss:// sentinels;
  // a node list has one scheme. A contradiction is a TypeError before anything connects.
  it('TLS options that contradict the node URLs are refused', async () => {
    const sentinels = (scheme) => ({ masterName: 'm', nodes: [`${scheme}://:hunter2@127.0.0.1:1`, `${scheme}://127.0.0.1:2`] });
    await refused({ sentinel: { masterName: 'm', nodes: ['rediss://127.0.0.1:1', 'redis://:hunter2@127.0.0.1:2'] } });
    await refused({ cluster: ['redis://:hunter2@127.0.0.1:7000'], tls: {} });
    await refused({ cluster: ['redis://127.0.0.1:7000'], tls: { rejectUnauthorized: false } });
    await refused({ sentinel: sentinels('redis'), sentinelTls: { rejectUnauthorized: false } });
    await refused({ url: 'rediss://127.0.0.1:1', sentinelTls: { rejectUnauthorized: false } });
    await refused({ cluster: ['rediss://127.0.0.1:1'], sentinelTls: {} });
    await refused({ sentinel: sentinels('rediss'), sentinelTls: 'yes' });
    await refused({ sentinel: sentinels('rediss'), sentinelTls: { ca: 'not a pem and no such file' } });
    await refused({ sentinel: sentinels('rediss'), sentinelTls: { cert: '-----BEGIN CERTIFICATE-----' } });
  });

  it('valid forms are accepted; with nothing listening the calls fail soft, as with one Redis', async () => {
    for (const options of [
      { cluster: ['redis://127.0.0.1:1'] },
      { cluster: ['rediss://127.0.0.1:1', 'rediss://127.0.0.1:2'] },
      { sentinel: { masterName: 'm', nodes: ['rediss://127.0.0.1:1'] }, sentinelTls: { rejectUnauthorized: false } },
      { sentinel: { masterName: 'm', nodes: ['redis://127.0.0.1:1'] }, tls: {} },
      { url: 'redis+cluster://127.0.0.1:1,127.0.0.1:2' },
      { sentinel: { masterName: 'm', nodes: ['redis://127.0.0.1:1'] } },
      { url: 'redis+sentinel://127.0.0.1:1,127.0.0.1:2/m' },
    ]) {
      const cache = createCache({ ...options, commandTimeoutMs: 200, connectTimeoutMs: 200 });
      try {
        const r = await cache.ping();
        assert.equal(r.pong, null, JSON.stringify(options));
        assert.equal(r.enabled, false);
        assert.equal(await cache.sessionCache.getSession('abc'), null);
      } finally {
        await cache.shutdown();
      }
    }
  });
});
