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
        if (buf.includes('PONG')) { sock.destroy(); resolve(true); } else if (buf.includes('-LOADING')) { sock.destroy(); resolve(false); }
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
  // `unixsocket`: the server also listens on `this.socket` (a Unix socket in its directory).
  // `tls`: { pki, authClients } — the server also listens for TLS on `this.tlsPort` with
  // `pki.cert`/`pki.key`, trusting `pki.ca` for client certificates (`tls-auth-clients`).
  // `dir`: the server's directory (e.g. a copy of another server's, to load its AOF) instead of
  // a new empty one; stop() removes it all the same.
  constructor(port, args, password, { username, app, unixsocket, tls, tlsPort, dir } = {}) {
    this.port = port;
    this.args = args;
    this.password = password;
    this.username = username;
    this.app = app;
    this.proc = null;
    this.dir = dir || fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-redis-'));
    this.clients = [];
    this.socket = unixsocket ? path.join(this.dir, 'redis.sock') : undefined;
    this.tls = tls;
    this.tlsPort = tlsPort;
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
      ...(this.socket ? ['--unixsocket', this.socket, '--unixsocketperm', '700'] : []),
      ...(this.tls
        ? ['--tls-port', String(this.tlsPort), '--tls-cert-file', this.tls.pki.cert, '--tls-key-file', this.tls.pki.key,
            '--tls-ca-cert-file', this.tls.pki.ca, '--tls-auth-clients', this.tls.authClients ? 'yes' : 'no']
        : []),
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

// `unixsocket: true` adds a Unix socket (`server.socket`); `tls: { pki, authClients }` a TLS
// port (`server.tlsPort`, see RedisServer); `dir` a directory to start from (see RedisServer).
async function startRedis({ args = [], password, username, app, unixsocket, tls, dir } = {}) {
  const port = await freePort();
  const tlsPort = tls ? await freePort() : undefined;
  return new RedisServer(port, args, password, { username, app, unixsocket, tls, tlsPort, dir }).start();
}

// A test PKI made with openssl in `dir` (paths): `ca` signs `cert`/`key` (server, for
// 127.0.0.1 and localhost) and `clientCert`/`clientKey` (mTLS); `other` is an unrelated CA;
// `selfCert`/`selfKey` a self-signed server certificate for 127.0.0.1.
function makePki(dir) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=bisman test CA');
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'other.key', '-out', 'other.crt', '-days', '2', '-subj', '/CN=some other CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf');
  run('req', ...ec, '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/CN=bisman test client');
  fs.writeFileSync(path.join(dir, 'client.cnf'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n');
  run('x509', '-req', '-in', 'client.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'client.crt', '-days', '2', '-extfile', 'client.cnf');
  run('req', '-x509', ...ec, '-keyout', 'self.key', '-out', 'self.crt', '-days', '2', '-subj', '/CN=self-signed', '-addext', 'subjectAltName=IP:127.0.0.1');
  const at = (f) => path.join(dir, f);
  return {
    ca: at('ca.crt'), other: at('other.crt'), cert: at('server.crt'), key: at('server.key'),
    clientCert: at('client.crt'), clientKey: at('client.key'), selfCert: at('self.crt'), selfKey: at('self.key'),
  };
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

module.exports = { startRedis, freePort, sleep, redisAvailable, RedisServer, makePki };
