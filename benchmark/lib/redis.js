'use strict';
// Fresh Redis for one benchmark run, stopped at the end; if the process is interrupted
// (Ctrl-C) or dies, the servers are killed with it. All on loopback, free ports, no
// persistence (`--save '' --appendonly no`, set by the test helpers):
//   startBenchRedis()          one redis-server (plain TCP)
//   startBenchRedis({ tls })   one redis-server that also listens with TLS (`--tls-port`), its
//                              certificate signed by a CA made here with openssl
//   startBenchCluster()        the test helpers' Redis Cluster: 3 primaries, 3 replicas
// Each also has `primaries()` (→ the plaintext redis:// URLs of the primaries, for INFO and
// CONFIG) and `flush()` (FLUSHALL and SCRIPT FLUSH on every primary: an empty server again).

const { execFileSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { startRedis, redisAvailable, freePort } = require('../../__test__/helpers/redis.js');
const { startCluster } = require('../../__test__/helpers/topologies.js');

function redisServerVersion() {
  try {
    const out = execFileSync('redis-server', ['--version'], { encoding: 'utf8' });
    const m = /v=(\S+)/.exec(out);
    return m ? m[1] : out.trim();
  } catch {
    return null;
  }
}

function requireRedis() {
  if (!redisAvailable()) throw new Error('redis-server is not installed (apt-get install redis-server)');
}

// `stop` made idempotent, and run before the process dies of SIGINT/SIGTERM.
function guarded(stopServers) {
  let stopped = false;
  const onSignal = (signal) => {
    // Kill the servers, then die of the same signal as we would have without this handler.
    stop().finally(() => process.kill(process.pid, signal));
  };
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
    await stopServers();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return stop;
}

// A CA and a certificate for 127.0.0.1/localhost signed by it, in `dir` (openssl, the same
// commands as the TLS tests in __test__/faults/security.test.js).
function makePki(dir) {
  const run = (...args) => execFileSync('openssl', args, { cwd: dir, stdio: 'ignore', timeout: 30000 });
  run('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', '/CN=bisman bench CA');
  run('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
  fs.writeFileSync(path.join(dir, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n');
  run('x509', '-req', '-in', 'server.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'ext.cnf');
  return { ca: path.join(dir, 'ca.crt'), cert: path.join(dir, 'server.crt'), key: path.join(dir, 'server.key') };
}

// → { url, port, pid, version, client(), primaries(), flush(), stop() } (client() is a plain
// ioredis client on the plaintext port, disconnected by stop()); with `tls`, also `tlsUrl`
// (rediss://127.0.0.1:<port>) and `ca` (the CA's PEM, for `tls: { ca }`). `stop()` is idempotent.
async function startBenchRedis({ tls = false } = {}) {
  requireRedis();
  let dir = null;
  let pki = null;
  let tlsPort = null;
  const args = [];
  if (tls) {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-bench-tls-'));
    try {
      pki = makePki(dir);
    } catch (err) {
      fs.rmSync(dir, { recursive: true, force: true });
      throw new Error(`openssl could not make the bench's certificates: ${err.message}`, { cause: err });
    }
    tlsPort = await freePort();
    args.push('--tls-port', String(tlsPort), '--tls-cert-file', pki.cert, '--tls-key-file', pki.key, '--tls-ca-cert-file', pki.ca, '--tls-auth-clients', 'no');
  }
  const server = await startRedis({ args });
  const stop = guarded(async () => {
    await server.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  let admin = null;
  const flush = async () => {
    if (admin === null) admin = server.client();
    await admin.flushall();
    await admin.script('FLUSH');
  };
  const primaries = async () => [server.url];
  const out = { url: server.url, port: server.port, pid: server.proc.pid, version: redisServerVersion(), client: () => server.client(), primaries, flush, stop };
  if (tls) Object.assign(out, { tlsUrl: `rediss://127.0.0.1:${tlsPort}`, ca: fs.readFileSync(pki.ca, 'utf8') });
  return out;
}

// → { nodes: ['redis://127.0.0.1:<port>', …] (all six), primaries(), flush(), stop() }.
async function startBenchCluster() {
  requireRedis();
  const cluster = await startCluster();
  const primaries = async () => (await cluster.primaries()).map((port) => `redis://127.0.0.1:${port}`);
  const flush = async () => {
    for (const port of await cluster.primaries()) {
      await cluster.ask(port, 'FLUSHALL');
      await cluster.ask(port, 'SCRIPT', 'FLUSH');
    }
  };
  return { nodes: cluster.urls, primaries, flush, stop: guarded(() => cluster.stop()) };
}

// `startRedis` too, for benchmarks written against the test helper's name.
module.exports = { startBenchRedis, startBenchCluster, startRedis: startBenchRedis, redisServerVersion };
