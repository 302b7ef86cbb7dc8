'use strict';
// Issue 14, items 10–12: hardening of rate limiting, on a real redis-server and on memory://.
//   10. two limiters on one route count on their own counters (key with the window, TTL per
//       window, per-request memo per limiter config);
//   11. a reset made on one node reaches every node's block cache (pub/sub broadcast);
//   12. client addresses are normalised (mapped IPv4, brackets, zones, ports) and IPv6 clients
//       are grouped by prefix (`ipv6Subnet`, default 56).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { serve } = require('./helpers/http');
const crypto = require('crypto');
const { performance } = require('perf_hooks');
const express = require('express');
const { createCache } = require('..');
const { BACKENDS } = require('./helpers/backends');
const { sleep } = require('./helpers/redis');

delete process.env.REDIS_URL; // these tests choose their back end explicitly

const freshIp = () => Array.from(crypto.randomBytes(4), (b) => String(b)).join('.');
// A fresh IPv6 /56 (2001:db8:xxxx:yy00::/56): its /64s are 2001:db8:xxxx:yyzz::/64.
// Both random groups are kept free of leading zeros, so `${p56}00` is the canonical spelling.
const freshV6 = () => {
  const g3 = 0x1000 + crypto.randomInt(0xf000);
  const top = 0x10 + crypto.randomInt(0xf0);
  return { p56: `2001:db8:${g3.toString(16)}:${top.toString(16)}`, hex: () => crypto.randomBytes(2).toString('hex') };
};
const ok = (req, res) => res.json({ ok: true });

async function post(base, path, xff) {
  const r = await fetch(base + path, { method: 'POST', headers: xff === undefined ? {} : { 'x-forwarded-for': xff } });
  const text = await r.text();
  return { status: r.status, text };
}

// Polls `fn` until it answers truthy or `ms` pass → the truthy answer, or undefined.
async function until(fn, ms) {
  const deadline = performance.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (performance.now() > deadline) return undefined;
    await sleep(2);
  }
}

for (const [name, make] of BACKENDS) {
  describe(`hardening of rate limiting on ${name}`, () => {
    let backend;
    let cache;
    let rl;

    before(async () => {
      backend = await make();
      cache = createCache({ url: backend.url });
      rl = cache.rateLimiter;
    });
    after(async () => {
      await cache.shutdown();
      await backend.close();
    });

    // ---- item 10 --------------------------------------------------------------------------

    it('Hardening 10: an app-wide 100-per-second limiter in front of a 5-per-hour route lets only 5 requests through', async () => {
      const app = express();
      app.set('trust proxy', true);
      app.use(rl.createLimiter({ max: 100, windowSec: 1 }));
      app.post('/api/auth/login', rl.createLimiter({ max: 5, windowSec: 3600 }), ok);
      const srv = await serve(app);
      try {
        const ip = freshIp();
        const t0 = performance.now();
        let passed = 0;
        let sent = 0;
        while (performance.now() - t0 < 3600) {
          if ((await post(srv.base, '/api/auth/login', ip)).status === 200) passed++;
          sent++;
          await sleep(150);
        }
        const secs = ((performance.now() - t0) / 1000).toFixed(1);
        console.log(`# Hardening 10 (${name}): ${passed} of ${sent} requests passed in ${secs} s (app-wide 100/1 s + route 5/3600 s)`);
        assert.equal(passed, 5);
        const status = await rl.getIpStatus(ip);
        assert.deepEqual(Object.keys(status).sort(), ['/api/auth/login#100per1s', '/api/auth/login#5per3600s']);
        // the store saw the hits up to the first blocked one; the block cache answered the rest
        assert.equal(status['/api/auth/login#5per3600s'].current, 6, 'the hourly counter kept counting across seconds');
        assert.equal(status['/api/auth/login#5per3600s'].limit, 5);
        const ttl = await backend.pttl(`rate:${ip}:_api_auth_login#5per3600s`);
        assert.ok(ttl > 3_500_000 && ttl <= 3_600_000, `hourly counter pttl ${ttl}`);
        const short = await backend.pttl(`rate:${ip}:_api_auth_login#100per1s`);
        assert.ok(short <= 1000, `per-second counter pttl ${short}`);
      } finally {
        await srv.close();
      }
    });

    it('Hardening 10: each limiter config has its own per-request memo; the endpoint limit keeps rate:{ip}:{endpoint}; identical limiters share', async () => {
      const app = express();
      app.set('trust proxy', true);
      const a = rl.createLimiter({ max: 3, windowSec: 30 });
      const b = rl.createLimiter({ max: 3, windowSec: 30 }); // identical to a: shares its counter
      app.post('/api/auth/login', rl.createLimiter({ max: 50, windowSec: 10 }), a, b, rl.authLimiter, ok);
      const srv = await serve(app);
      try {
        const ip = freshIp();
        const statuses = [];
        for (let i = 0; i < 5; i++) statuses.push((await post(srv.base, '/api/auth/login', ip)).status);
        const status = await rl.getIpStatus(ip);
        console.log(`# Hardening 10 (${name}): statuses ${statuses.join(',')}; counters ${JSON.stringify(Object.fromEntries(Object.entries(status).map(([k, v]) => [k, v.current])))}`);
        assert.deepEqual(statuses, [200, 200, 200, 429, 429]);
        assert.equal(status['/api/auth/login#50per10s'].current, 5, 'the 50/10 s limiter counted every request once');
        // 3 passed, the 4th was counted and blocked, the 5th answered by the block cache; had
        // the two identical limiters not shared, each request would count twice (2 would pass)
        assert.equal(status['/api/auth/login#3per30s'].current, 4, 'the two identical limiters counted each request once');
        assert.equal(status['/api/auth/login'].current, 3, "authLimiter (the endpoint's own limit) counted the 3 that reached it");
        assert.equal(status['/api/auth/login'].limit, 5);
        const ttl = await backend.pttl(`rate:${ip}:_api_auth_login`);
        assert.ok(ttl > 50_000 && ttl <= 60_000, `endpoint counter pttl ${ttl}`);
        // checkLimit counts on the endpoint's key, the guide's rate:{ip}:{endpoint}
        assert.equal((await rl.checkLimit(ip, '/api/auth/login')).total, 4);
        assert.equal(cache.rateKey(ip, '/api/auth/login'), `rate:${ip}:_api_auth_login`);
      } finally {
        await srv.close();
      }
    });

    it('Hardening 10: a new window of a custom limiter gets its TTL again', async () => {
      const app = express();
      app.set('trust proxy', true);
      app.post('/api/w', rl.createLimiter({ max: 2, windowSec: 1 }), ok);
      const srv = await serve(app);
      try {
        const ip = freshIp();
        const first = [];
        for (let i = 0; i < 3; i++) first.push((await post(srv.base, '/api/w', ip)).status);
        assert.deepEqual(first, [200, 200, 429]);
        await sleep(1100);
        assert.equal((await post(srv.base, '/api/w', ip)).status, 200, 'the next window starts afresh');
        const ttl = await backend.pttl(`rate:${ip}:_api_w#2per1s`);
        assert.ok(ttl > 0 && ttl <= 1000, `pttl ${ttl}`);
      } finally {
        await srv.close();
      }
    });

    // ---- item 11 --------------------------------------------------------------------------

    for (const kind of ['resetAllLimitsForIp', 'resetLimit']) {
      it(`Hardening 11: node B's ${kind} (after CAPTCHA) unblocks node A within one pub/sub delivery`, async () => {
        // two nodes on one store; neither app calls pubsub.subscribe()
        const A = createCache({ url: backend.url });
        const B = createCache({ url: backend.url });
        try {
          const ip = freshIp();
          for (let i = 0; i < 6; i++) await A.rateLimiter.checkLimit(ip, '/api/auth/login');
          // A answers from its block cache (bounded wait: its subscription starts with the block)
          const cachedBefore = A.stats().rateLimit.blockCacheHits;
          await until(() => A.pubsub.status().connected, 2000);
          const blocked = await A.rateLimiter.checkLimit(ip, '/api/auth/login');
          assert.equal(blocked.allowed, false);
          assert.equal(A.stats().rateLimit.blockCacheHits - cachedBefore, 1, 'answered by the block cache');
          const removed = kind === 'resetLimit' ? await B.rateLimiter.resetLimit(ip, '/api/auth/login') : await B.rateLimiter.resetAllLimitsForIp(ip);
          assert.equal(removed, 1);
          const t0 = performance.now();
          const r = await until(async () => {
            const x = await A.rateLimiter.checkLimit(ip, '/api/auth/login');
            return x.allowed ? x : null;
          }, 3000);
          const ms = performance.now() - t0;
          console.log(`# Hardening 11 (${name}, ${kind}): node A let the client in ${ms.toFixed(1)} ms after node B's reset answered`);
          assert.ok(r, `node A still answers 429 ${ms.toFixed(0)} ms after node B's reset`);
          assert.equal(r.total, 1);
        } finally {
          await A.shutdown();
          await B.shutdown();
        }
      });
    }

    // (a real redis-server only: memory:// has no link to lose)
    if (name === 'redis') it('Hardening 11: a reset missed while the subscription was down: the block cache is dropped once the link is back', async () => {
      const A = createCache({ url: backend.url });
      const admin = backend.server.client();
      try {
        const ip = freshIp();
        for (let i = 0; i < 6; i++) await A.rateLimiter.checkLimit(ip, '/api/auth/login');
        assert.ok(await until(() => A.pubsub.status().connected, 2000), 'the limiter subscribed by itself');
        // the counter goes without a broadcast (as if the message was lost)
        await admin.del(`rate:${ip}:_api_auth_login`);
        const hits = A.stats().rateLimit.blockCacheHits;
        assert.equal((await A.rateLimiter.checkLimit(ip, '/api/auth/login')).allowed, false);
        assert.equal(A.stats().rateLimit.blockCacheHits - hits, 1, 'still answered by the block cache');
        const before = A.pubsub.status().resubscribes;
        await admin.client('KILL', 'TYPE', 'pubsub');
        const t0 = performance.now();
        assert.ok(await until(() => A.pubsub.status().resubscribes > before, 5000), 'the link came back');
        const r = await until(async () => {
          const x = await A.rateLimiter.checkLimit(ip, '/api/auth/login');
          return x.allowed ? x : null;
        }, 2000);
        const ms = performance.now() - t0;
        console.log(`# Hardening 11 (${name}): after the subscription was killed, node A let the client in ${ms.toFixed(1)} ms later`);
        assert.ok(r, 'the block cache was not dropped after the link came back');
        assert.equal(r.total, 1);
      } finally {
        await A.shutdown();
      }
    });

    // ---- item 12 --------------------------------------------------------------------------

    describe('Hardening 12: client addresses over Express with trust proxy', () => {
      let srv;
      let errors;
      before(async () => {
        errors = [];
        const app = express();
        app.set('trust proxy', true);
        app.post('/api/auth/login', rl.authLimiter, ok);
        app.use((err, req, res, next) => {
          errors.push(err);
          res.status(500).json({ error: err.message });
        });
        srv = await serve(app);
      });
      after(() => srv.close());

      it('::ffff:a.b.c.d and a.b.c.d share one counter, and a reset of either form frees both', async () => {
        const ip = freshIp();
        const forms = [`::ffff:${ip}`, ip, `[::ffff:${ip}]:8080`, `${ip}:5678`, `::FFFF:${ip}`, `[${ip}]`];
        const statuses = [];
        for (const f of forms) statuses.push((await post(srv.base, '/api/auth/login', f)).status);
        console.log(`# Hardening 12 (${name}): ${forms.join(' | ')} → ${statuses.join(',')}`);
        assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
        assert.deepEqual(await rl.getIpStatus(`::ffff:${ip}`), await rl.getIpStatus(ip));
        assert.equal((await rl.getIpStatus(ip))['/api/auth/login'].current, 6);
        assert.equal(await rl.resetAllLimitsForIp(`::ffff:${ip}`), 1);
        assert.equal((await post(srv.base, '/api/auth/login', ip)).status, 200, 'the reset of the mapped form freed the plain form');
        assert.equal((await rl.checkLimit(`::ffff:${ip}`, '/api/auth/login')).total, 2, 'checkLimit normalises too');
        assert.equal(errors.length, 0);
      });

      it('[::1], fe80::1%eth0, 1.2.3.4:5678, [2001:db8::1]:443 and garbage get an answer, never a 500', async () => {
        const v6 = freshV6();
        const forms = ['[::1]', `fe80::${v6.hex()}%eth0`, `${freshIp()}:5678`, `[${v6.p56}00::1]:443`, `${v6.p56}00::2%25en0`, 'not-an-ip', '999.1.1.1', '[::1', 'a*b?[c]', '::ffff:1.2.3', '1.2.3.4:99999'];
        const statuses = [];
        for (const f of forms) statuses.push((await post(srv.base, '/api/auth/login', f)).status);
        console.log(`# Hardening 12 (${name}): ${forms.map((f, i) => `${f} → ${statuses[i]}`).join('; ')}`);
        assert.equal(errors.length, 0, `next(err) was called: ${errors.map((e) => e.message).join('; ')}`);
        for (const s of statuses) assert.ok(s === 200 || s === 429, `status ${s}`);
        // the two addresses of one /56 share its bucket; the garbage shares the 'unknown' bucket
        assert.equal((await rl.getIpStatus(`${v6.p56}00::/56`))['/api/auth/login'].current, 2);
        assert.equal((await rl.getIpStatus(`[${v6.p56}00::7]:1`))['/api/auth/login'].current, 2);
        assert.equal((await rl.getIpStatus('unknown'))['/api/auth/login'].current >= 5, true);
        assert.ok((await rl.getIpStatus('::1'))['/api/auth/login'].current >= 1);
        assert.ok((await rl.getIpStatus('[::1]:80'))['/api/auth/login'].current >= 1);
        assert.ok((await rl.getIpStatus('fe80::1%eth0'))['/api/auth/login'].current >= 1);
        assert.ok((await backend.keys()).every((k) => !/[[\]*?%]/.test(k.split(':_api')[0])), 'no bracket, glob or zone in any key');
        await rl.resetAllLimitsForIp('unknown');
      });

      it('a keyGenerator that answers an address is counted under its bucket, so a reset by any form finds it', async () => {
        const app = express();
        app.post('/api/kg', rl.createLimiter({ max: 2, windowSec: 30, keyGenerator: (req) => req.get('x-client') }), ok);
        app.use((err, req, res, next) => res.status(500).json({ error: err.message }));
        const s = await serve(app);
        try {
          const ip = freshIp();
          const statuses = [];
          for (const f of [`[::ffff:${ip}]:80`, ip, `::ffff:${ip}`]) {
            const r = await fetch(`${s.base}/api/kg`, { method: 'POST', headers: { 'x-client': f } });
            statuses.push(r.status);
          }
          console.log(`# Hardening 12 (${name}): keyGenerator keys [::ffff:${ip}]:80, ${ip}, ::ffff:${ip} → ${statuses.join(',')}`);
          assert.deepEqual(statuses, [200, 200, 429]);
          assert.equal(await rl.resetAllLimitsForIp(`::ffff:${ip}`), 1);
        } finally {
          await s.close();
        }
      });

      it('50 logins from one IPv6 /64: only 5 pass with the default ipv6Subnet 56', async () => {
        const v6 = freshV6();
        const sub = `${v6.p56}${v6.hex().slice(0, 2)}`; // one /64
        let passed = 0;
        for (let i = 0; i < 50; i++) {
          if ((await post(srv.base, '/api/auth/login', `${sub}:${v6.hex()}:${v6.hex()}:${v6.hex()}:${(i + 1).toString(16)}`)).status === 200) passed++;
        }
        // another /64 of the same /56 is the same client
        const other = (await post(srv.base, '/api/auth/login', `${v6.p56}ff::1`)).status;
        console.log(`# Hardening 12 (${name}): ${passed} of 50 logins from one /64 passed (ipv6Subnet 56); another /64 of the /56 → ${other}`);
        assert.equal(passed, 5);
        assert.equal(other, 429);
        const status = await rl.getIpStatus(`${sub}::1`);
        // one counter (the keys below); the store saw the hits up to the first blocked one, and
        // again after any drop of the block cache (the link test above kills every subscriber)
        assert.ok(status['/api/auth/login'].current >= 6, `current ${status['/api/auth/login'].current}`);
        assert.equal(await rl.resetAllLimitsForIp(`[${sub}::abcd]:443`), 1, 'a reset by any address of the /56');
        assert.equal((await post(srv.base, '/api/auth/login', `${sub}::9`)).status, 200);
        const keys = (await backend.keys()).filter((k) => k.startsWith(`rate:${v6.p56}`));
        assert.deepEqual(keys, [`rate:${v6.p56}00::/56:_api_auth_login`]);
      });

      it('ipv6Subnet: false counts each address; ipv6Subnet: 64 groups by /64', async () => {
        for (const [opt, expected] of [[false, 50], [64, 5]]) {
          const c = createCache({ url: backend.url, ipv6Subnet: opt });
          const app = express();
          app.set('trust proxy', true);
          app.post('/api/auth/login', c.rateLimiter.authLimiter, ok);
          const s = await serve(app);
          try {
            const v6 = freshV6();
            const sub = `${v6.p56}${v6.hex().slice(0, 2)}`;
            let passed = 0;
            for (let i = 0; i < 50; i++) if ((await post(s.base, '/api/auth/login', `${sub}::${(i + 1).toString(16)}`)).status === 200) passed++;
            console.log(`# Hardening 12 (${name}): ipv6Subnet ${opt}: ${passed} of 50 logins from one /64 passed`);
            assert.equal(passed, expected);
            if (opt === false) {
              assert.equal((await c.rateLimiter.getIpStatus(`[${sub}:0:0:0:7]:443`))['/api/auth/login'].current, 1);
              assert.equal(await c.rateLimiter.resetAllLimitsForIp(`${sub}::7%eth0`), 1);
              assert.deepEqual(await c.rateLimiter.getIpStatus(`${sub}::7`), {});
              assert.equal((await c.rateLimiter.getIpStatus(`${sub}::8`))['/api/auth/login'].current, 1, 'never another address');
            } else {
              assert.ok((await c.rateLimiter.getIpStatus(`${sub}::1`))['/api/auth/login'].current >= 6, 'one /64, one counter');
            }
          } finally {
            await s.close();
            await c.shutdown();
          }
        }
      });
    });
  });
}

describe('Hardening 12: the ipv6Subnet option is validated', () => {
  it('bad values throw a typed error at createCache and configure', () => {
    for (const [bad, Class, code] of [
      [0, RangeError, 'ERR_OUT_OF_RANGE'],
      [129, RangeError, 'ERR_OUT_OF_RANGE'],
      [56.5, RangeError, 'ERR_OUT_OF_RANGE'],
      [NaN, RangeError, 'ERR_OUT_OF_RANGE'],
      [true, TypeError, 'ERR_INVALID_ARG'],
      ['56', TypeError, 'ERR_INVALID_ARG'],
      [{}, TypeError, 'ERR_INVALID_ARG'],
    ]) {
      assert.throws(() => createCache({ url: 'memory://v6opt', ipv6Subnet: bad }), (err) => err instanceof Class && err.code === code, String(bad));
      const c = createCache({ url: 'memory://v6opt' });
      assert.throws(() => c.configure({ url: 'memory://v6opt', ipv6Subnet: bad }), (err) => err instanceof Class && err.code === code, String(bad));
      c.shutdown();
    }
    for (const good of [undefined, false, 1, 48, 56, 64, 128]) createCache({ url: 'memory://v6opt', ipv6Subnet: good }).shutdown();
  });
});

// The hot path's address check (isDottedQuad) stands in for net.isIPv4: it must agree with it
// on every string, or an address would be bucketed differently from before.
describe('the dotted-quad check of every hit', () => {
  it('agrees with net.isIPv4 on edge cases and on 200,000 random strings', () => {
    const net = require('net');
    const { isDottedQuad } = require('../lib/rate_limit/addresses');
    const cases = [
      '0.0.0.0', '255.255.255.255', '1.2.3.4', '10.0.0.1', '256.1.1.1', '1.2.3.256', '01.2.3.4', '1.02.3.4', '1.2.3.04',
      '1.2.3', '1.2.3.4.5', '1..2.3', '.1.2.3', '1.2.3.', '1.2.3.4 ', ' 1.2.3.4', '1.2.3.-4', '1.2.3.a', '1234.1.1.1',
      '999.999.999.999', '00.0.0.0', '0.0.0.00', '100.200.250.199', '249.255.199.99', '', '::1', '::ffff:1.2.3.4',
      '1.2.3.4:80', '１.2.3.4', '1.2.3.4\n', '300.0.0.0', '25.5.25.5',
    ];
    for (const s of cases) assert.equal(isDottedQuad(s), net.isIPv4(s), JSON.stringify(s));
    // random strings over the alphabet that matters, lengths 0-17
    const alphabet = '0123456789.....:a ';
    let seed = 12345;
    const rand = (n) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    let valid = 0;
    for (let k = 0; k < 200000; k++) {
      let s = '';
      if (k % 2 === 0) {
        // free-form
        const len = rand(18);
        for (let i = 0; i < len; i++) s += alphabet[rand(alphabet.length)];
      } else {
        // near an address: 3-5 parts of 0-4 digits, one character sometimes replaced
        const n = 3 + rand(3);
        const ps = [];
        for (let p = 0; p < n; p++) {
          let part = '';
          const d = rand(5);
          for (let i = 0; i < d; i++) part += String(rand(10));
          ps.push(part);
        }
        s = ps.join('.');
        if (rand(4) === 0 && s.length > 0) {
          const i = rand(s.length);
          s = s.slice(0, i) + alphabet[rand(alphabet.length)] + s.slice(i + 1);
        }
      }
      const want = net.isIPv4(s);
      if (want) valid++;
      assert.equal(isDottedQuad(s), want, JSON.stringify(s));
    }
    // and every address of the form a.b.c.d with parts drawn around the edges
    const parts = ['0', '1', '9', '10', '01', '99', '100', '199', '200', '249', '250', '255', '256', '260', '300', '001'];
    for (const a of parts) for (const b of parts) for (const c of ['0', '255', '256', '07']) for (const d of parts) {
      const s = `${a}.${b}.${c}.${d}`;
      assert.equal(isDottedQuad(s), net.isIPv4(s), s);
    }
    assert.ok(valid > 100, `random valid addresses: ${valid}`);
  });
});
