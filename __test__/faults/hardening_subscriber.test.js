'use strict';
// Hardening 15 (subscriber connection): the pub/sub subscriber does not trust a reply's
// announced length either. The scenario it pins: a subscribed link hears a message whose payload
// is announced as `$9223372036854775807` (2^63-1), followed by as many bytes as the client reads.
// The link must be dropped at that header, not when the next once-a-second PING times out, and
// the process must not grow meanwhile (before the fix it stayed up ~950 ms and grew ~930 MiB,
// with the default maxReplyBytes and with 1 MiB alike). After the drop the subscriber reconnects
// and ordinary messages arrive again.
//
// The "fake server" is a loopback proxy in front of a real redis-server: every connection is
// passed through, except that the test can make one subscriber connection lie (from then on the
// proxy drops what Redis sends on it and writes the lie instead).

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const net = require('net');
const { createCache } = require('../..');
const { startRedis, sleep } = require('../helpers/redis');
const { guardProcess, waitFor, within } = require('../helpers/faults');

const guard = guardProcess();
const TIMEOUT = 200;
const STREAM = 256 * 1024 * 1024; // the most the liar pushes (before the fix the client took it all)
const LIE = '*3\r\n$7\r\nmessage\r\n$1\r\nx\r\n$9223372036854775807\r\n';

// A pass-through proxy to `targetPort`; `subscribers` are the pairs whose client sent SUBSCRIBE.
async function liarProxy(targetPort) {
  const pairs = new Set();
  const subscribers = [];
  const srv = net.createServer((client) => {
    const upstream = net.connect(targetPort, '127.0.0.1');
    const pair = { client, upstream, lying: false };
    pairs.add(pair);
    client.on('error', () => {});
    upstream.on('error', () => {});
    client.on('data', (d) => {
      if (!pair.subscriber && /SUBSCRIBE/i.test(d.toString('latin1'))) {
        pair.subscriber = true;
        subscribers.push(pair);
      }
      if (!upstream.destroyed) upstream.write(d);
    });
    upstream.on('data', (d) => {
      if (!pair.lying && !client.destroyed) client.write(d);
    });
    client.on('close', () => {
      pairs.delete(pair);
      upstream.destroy();
    });
    upstream.on('close', () => client.destroy());
  });
  await new Promise((resolve) => srv.listen(0, '127.0.0.1', resolve));
  return {
    url: `redis://127.0.0.1:${srv.address().port}`,
    subscribers,
    // Makes `pair` lie: → a promise of { closedAfterMs, pushedMiB, rssGrowthMiB } (the peak RSS
    // growth of this process, sampled every 10 ms, from the lie until the link closed).
    lie(pair) {
      pair.lying = true;
      const s = pair.client;
      const chunk = Buffer.alloc(1024 * 1024, 0x7a);
      const rss0 = process.memoryUsage().rss;
      let peak = rss0;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 10);
      const t0 = performance.now();
      let sent = 0;
      const closed = new Promise((resolve) => s.once('close', () => resolve(performance.now() - t0)));
      s.write(LIE);
      const pump = () => {
        while (!s.destroyed && sent < STREAM) {
          sent += chunk.length;
          if (!s.write(chunk)) return s.once('drain', pump);
        }
      };
      pump();
      return closed.then((ms) => {
        clearInterval(sampler);
        peak = Math.max(peak, process.memoryUsage().rss);
        return { closedAfterMs: ms, pushedMiB: sent / 1048576, rssGrowthMiB: (peak - rss0) / 1048576 };
      });
    },
    close() {
      for (const p of pairs) {
        p.client.destroy();
        p.upstream.destroy();
      }
      return new Promise((resolve) => srv.close(() => resolve()));
    },
  };
}

describe('Hardening 15 (subscriber): a message announced as $2^63-1 drops the subscriber link at once', () => {
  let server;
  let proxy;
  before(async () => {
    server = await startRedis();
    proxy = await liarProxy(server.port);
  });
  after(async () => {
    await proxy.close();
    await server.stop();
  });

  for (const [label, extra] of [['default maxReplyBytes', {}], ['maxReplyBytes 1 MiB', { maxReplyBytes: 1048576 }]]) {
    it(`${label}: dropped well under a second after the lie, RSS grows < 48 MiB; messages arrive after the resubscribe`, async () => {
      const sub = createCache({ url: proxy.url, commandTimeoutMs: TIMEOUT, ...extra });
      const pub = createCache({ url: server.url });
      try {
        const known = proxy.subscribers.length;
        assert.equal(await sub.pubsub.subscribe(), true);
        await waitFor(async () => proxy.subscribers.length > known, { timeoutMs: 2000 });
        const pair = proxy.subscribers[proxy.subscribers.length - 1];
        global.gc && global.gc();
        await sleep(50);
        const r = await within(proxy.lie(pair), 20000, 'the lying link closing');
        const up = await waitFor(async () => sub.pubsub.isConnected() && sub.pubsub.status().resubscribes >= 1, { timeoutMs: 5000 });
        let got = null;
        const off = sub.pubsub.onMessage('cache:invalidate', (m) => (got = m));
        let deliveredMs = -1;
        try {
          const t0 = performance.now();
          assert.equal(await pub.pubsub.publishCacheInvalidation({ keys: ['after-the-lie'] }), 1, 'one subscriber again');
          await waitFor(async () => got !== null, { timeoutMs: 2000 });
          deliveredMs = performance.now() - t0;
        } finally {
          off();
        }
        console.log(`# Hardening 15 (subscriber): ${label}: link dropped ${r.closedAfterMs.toFixed(1)} ms after the lie (${r.pushedMiB.toFixed(0)} MiB pushed by then), RSS grew ${r.rssGrowthMiB.toFixed(1)} MiB; resubscribed ${up.toFixed(0)} ms later, a message then arrived in ${deliveredMs.toFixed(1)} ms`);
        assert.ok(r.closedAfterMs < 300, `the link was dropped ${r.closedAfterMs.toFixed(0)} ms after the lie`);
        assert.ok(r.rssGrowthMiB < 48, `RSS grew ${r.rssGrowthMiB.toFixed(1)} MiB`);
        assert.ok(up >= 0, 'resubscribed');
        assert.ok(got && Array.isArray(got.keys) && got.keys[0] === 'after-the-lie', `message after the resubscribe: ${JSON.stringify(got)}`);
      } finally {
        await sub.shutdown();
        await pub.shutdown();
      }
    });
  }

  it('no unhandled rejection or uncaught exception in this file', () => {
    assert.equal(guard.unhandled, 0, String(guard.reasons));
    assert.equal(guard.uncaught, 0, String(guard.reasons));
  });
});
