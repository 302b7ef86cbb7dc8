'use strict';
// A TCP proxy of our own between the client and Redis, on loopback, to make network faults:
//   pass      — bytes flow both ways;
//   blackhole — connections stay open (new ones are accepted) but every byte is swallowed;
//   delay     — every chunk is forwarded `delayMs` later, in order;
//   reset     — new connections are reset (RST) at once; `resetAll()` resets the open ones.
// The mode applies to open connections too, so a live link can go silent mid-flight.

const net = require('net');

class FaultProxy {
  constructor(targetPort, targetHost = '127.0.0.1') {
    this.targetPort = targetPort;
    this.targetHost = targetHost;
    this.mode = 'pass';
    this.delayMs = 0;
    this.pairs = new Set();
    this.accepted = 0;
    this.server = net.createServer((client) => this.onClient(client));
    this.server.on('error', () => {});
  }

  listen() {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1', () => {
        this.port = this.server.address().port;
        resolve(this);
      });
    });
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  pass() { this.mode = 'pass'; }
  blackhole() { this.mode = 'blackhole'; }
  delay(ms) { this.mode = 'delay'; this.delayMs = ms; }
  reset() { this.mode = 'reset'; }

  // Resets (RST) every open connection, both sides.
  resetAll() {
    for (const pair of this.pairs) this.drop(pair);
  }

  get open() {
    return this.pairs.size;
  }

  drop(pair) {
    this.pairs.delete(pair);
    for (const s of [pair.client, pair.upstream]) {
      if (typeof s.resetAndDestroy === 'function') s.resetAndDestroy();
      else s.destroy();
    }
  }

  onClient(client) {
    this.accepted++;
    client.on('error', () => {});
    if (this.mode === 'reset') {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(this.targetPort, this.targetHost);
    upstream.on('error', () => {});
    const pair = { client, upstream };
    this.pairs.add(pair);
    const forward = (from, to) => {
      from.on('data', (chunk) => {
        if (this.mode === 'blackhole' || this.mode === 'reset') return;
        if (this.mode === 'delay' && this.delayMs > 0) {
          // Chunks keep their order: every chunk waits the same delay, timers fire in order.
          setTimeout(() => { if (!to.destroyed) to.write(chunk); }, this.delayMs);
          return;
        }
        if (!to.destroyed) to.write(chunk);
      });
      from.on('close', () => {
        if (this.pairs.has(pair)) {
          this.pairs.delete(pair);
          to.destroy();
        }
      });
    };
    forward(client, upstream);
    forward(upstream, client);
  }

  close() {
    this.resetAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

async function startProxy(targetPort) {
  return new FaultProxy(targetPort).listen();
}

module.exports = { FaultProxy, startProxy };
