'use strict';
// One JS module decodes every structured native answer (lib/replies.js), and each decoder is
// checked here against the Rust encoder of the same name (src/api/replies.rs): the test build's
// testReply hook answers an operation with that encoder's sample, through the real delivery
// path (the batch array, the waiting slot), and the decoder must give the expected object.
// Pins: a change to an encoder's shape that its decoder does not follow (a field moved, a
// number sent as a string) fails here instead of reaching a lock, limit or fill as garbage.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { createCache } = require('..');
const replies = require('../lib/replies');
const { testReply } = require('./helpers/hooks');

delete process.env.REDIS_URL;

// sample name (src/api/replies.rs `samples`) → [decoder, expected decoded value]
const CASES = {
  pingNodes: [
    'pingNodes',
    [
      { address: '10.0.0.1:7000', role: 'primary', ms: 0.5, circuit: 'closed', pong: 'PONG' },
      { address: '10.0.0.2:7000', role: 'primary', ms: 200, circuit: 'open', pong: null, error: 'Redis did not answer within 200 ms' },
    ],
  ],
  missEmpty: ['miss', { rev: '1700000000123', t: '1700000000456', value: null }],
  missValue: ['miss', { rev: '1700000000123', t: '1700000000456', value: '{"a":1}' }],
  cacheMissTaken: ['cacheMiss', { rev: '1700000000123', t: '1700000000456', lease: 'taken', value: null }],
  cacheMissHeld: ['cacheMiss', { rev: '1700000000123', t: '1700000000456', lease: 'held', value: null }],
  cacheMissValue: ['cacheMiss', { rev: '1700000000123', t: '1700000000456', lease: 'none', value: 'j{}' }],
  sessionList: [
    'sessionList',
    [
      { hash: 'ab'.repeat(32), json: '{"user_id":7}' },
      { hash: 'cd'.repeat(32), json: '{"user_id":8}' },
    ],
  ],
  sessionListEmpty: ['sessionList', []],
  counter: ['counter', { total: 7, leftMs: 59001 }],
  counterExpired: ['counter', { total: 1, leftMs: 0 }],
  rateStatus: ['rateStatus', { '/login': { current: 2, limit: 5, resetIn: 2 } }],
  lockGranted: ['lockAcquired', { granted: true, owner: 'node:abc', fence: 42 }],
  lockBusy: ['lockAcquired', { granted: false, holder: 'node:def', pttlMs: 1500 }],
  lockHeld: ['lockHolder', { owner: 'node:def', pttlMs: 900 }],
  lockFree: ['lockHolder', null],
  semGranted: ['semAcquired', { granted: true, owner: 'node:abc', fence: 9, held: 2 }],
  semFull: ['semAcquired', { granted: false, held: 3, retryMs: 250 }],
  semStatus: ['semStatus', { held: 3, nextExpiryMs: -1 }],
};

// The raw answer to an operation answered with sample `name`.
function sample(cache, name) {
  return cache.ctx.op(
    (n, id) => testReply(n, id, name),
    (v) => v,
  );
}

describe('native replies', () => {
  it('every encoder sample decodes to what its decoder promises', async () => {
    const cache = createCache({ url: 'memory://replies' });
    try {
      for (const [name, [decoder, expected]] of Object.entries(CASES)) {
        const raw = await sample(cache, name);
        const decoded = decoder === 'counter' ? replies.counter(raw, {}) : replies[decoder](raw);
        assert.deepEqual(decoded, expected, `${name} through replies.${decoder}`);
      }
      console.log(`# ${Object.keys(CASES).length} encoder samples decoded by ${new Set(Object.values(CASES).map(([d]) => d)).size} decoders`);
    } finally {
      await cache.shutdown();
    }
  });

  it('every decoder is checked, and an unknown sample name is refused by the encoder side', async () => {
    const checked = new Set(Object.values(CASES).map(([d]) => d));
    assert.deepEqual(Object.keys(replies).sort(), [...checked].sort(), 'a decoder with no encoder sample (or the reverse)');
    const cache = createCache({ url: 'memory://replies' });
    try {
      await assert.rejects(sample(cache, 'noSuchSample'), { code: 'ERR_CACHE_INTERNAL' });
    } finally {
      await cache.shutdown();
    }
  });

  it('no other module reads a structured native answer by position', () => {
    // The call sites that used to index replies (r[0] === '1', r.length > 2 …) go through
    // lib/replies.js; this keeps new ones from appearing.
    const fs = require('node:fs');
    const path = require('node:path');
    const offenders = [];
    const walk = (dir) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const p = path.join(dir, e.name);
        if (e.isDirectory()) walk(p);
        else if (e.name.endsWith('.js') && p !== path.join(__dirname, '..', 'lib', 'replies.js')) {
          const text = fs.readFileSync(p, 'utf8');
          if (/\br\[[0-3]\]/.test(text)) offenders.push(path.relative(path.join(__dirname, '..'), p));
        }
      }
    };
    walk(path.join(__dirname, '..', 'lib'));
    assert.deepEqual(offenders, [], 'these modules still index a native reply `r[…]`');
  });
});
