'use strict';
// Real redis-server processes for tests: started on free loopback ports, killed, paused,
// restarted on the same port. No mocks.

const { spawn, execFileSync } = require('child_process');
const net = require('net');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Redis = require('ioredis');

const servers = new Set();

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Resolves once a TCP connect to the port succeeds and PING answers PONG (bounded).
async function waitReady(port, password, timeoutMs = 10000, username = undefined) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise((resolve) => {
      const sock = net.connect(port, '127.0.0.1');
      let buf = '';
      sock.setTimeout(500, () => { sock.destroy(); resolve(false); });
      sock.on('error', () => resolve(false));
      sock.on('connect', () => {
        const auth = username ? `AUTH ${username} ${password}\r\n` : `AUTH ${password}\r\n`;
        sock.write(password ? `${auth}PING\r\n` : 'PING\r\n');
      });
      sock.on('data', (d) => {
        buf += d;
        if (buf.includes('PONG')) { sock.destroy(); resolve(true); }
        else if (buf.includes('-LOADING')) { sock.destroy(); resolve(false); }
      });
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error(`redis-server on port ${port} did not become ready`);
}

class RedisServer {
  // `username`/`password`: the admin the test helpers use. `app`: { user, pass } — then `url`
  // authenticates as that (least-privilege) user instead.
  constructor(port, args, password, { username, app } = {}) {
    this.port = port;
    this.args = args;
    this.password = password;
    this.username = username;
    this.app = app;
    this.proc = null;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-redis-'));
    this.clients = [];
  }

  get url() {
    if (this.app) return `redis://${encodeURIComponent(this.app.user)}:${encodeURIComponent(this.app.pass)}@127.0.0.1:${this.port}`;
    return this.password ? `redis://:${this.password}@127.0.0.1:${this.port}` : `redis://127.0.0.1:${this.port}`;
  }

  async start() {
    const args = [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.dir, '--daemonize', 'no', '--loglevel', 'warning',
      ...(this.password && !this.username ? ['--requirepass', this.password] : []),
      ...this.args,
    ];
    this.proc = spawn('redis-server', args, { stdio: 'ignore' });
    this.proc.on('error', () => {});
    servers.add(this);
    await waitReady(this.port, this.password, 10000, this.username);
    return this;
  }

  // A plain ioredis client to inspect the server (DBSIZE, SCAN, PTTL…).
  client() {
    const c = new Redis({ port: this.port, host: '127.0.0.1', username: this.username, password: this.password, lazyConnect: false, maxRetriesPerRequest: 1 });
    c.on('error', () => {});
    this.clients.push(c);
    return c;
  }

  kill(signal = 'SIGKILL') {
    if (!this.proc) return Promise.resolve();
    const p = this.proc;
    this.proc = null;
    return new Promise((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill(signal);
    });
  }

  async restart() {
    await this.kill();
    await this.start();
  }

  pause() { this.proc.kill('SIGSTOP'); }
  resume() { this.proc.kill('SIGCONT'); }

  async stop() {
    for (const c of this.clients) c.disconnect();
    this.clients = [];
    if (this.proc) this.resume();
    await this.kill();
    servers.delete(this);
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

async function startRedis({ args = [], password, username, app } = {}) {
  const port = await freePort();
  return new RedisServer(port, args, password, { username, app }).start();
}

function redisAvailable() {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

process.on('exit', () => {
  for (const s of servers) if (s.proc) try { s.proc.kill('SIGKILL'); } catch {}
});

module.exports = { startRedis, freePort, sleep, redisAvailable, RedisServer };
