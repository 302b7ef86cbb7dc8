'use strict';
// Real Redis topologies for tests, all on 127.0.0.1 with free ports: a 3-primary/3-replica
// Redis Cluster and a Sentinel set-up (1 primary, 1 replica, 3 sentinels). Every wait is
// bounded; stop() kills every process and removes its directory.
//
// TLS mode (`tls: pki`, a test PKI from helpers/redis.js' makePki): every process listens on a
// TLS port only (`--port 0`), cluster buses and replication run on TLS too, and `conn` below
// carries the CA the helpers trust. Passwords: `conn.password` (and `conn.username`) is what
// the helpers authenticate with.

const { spawn, execFile } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Redis = require('ioredis');
const { freePort, sleep, RedisServer } = require('./redis');

const live = new Set();

// One command on one node through a short-lived ioredis client (bounded).
function ask(port, ...args) {
  return askWith(null, port, ...args);
}

// `ask` over `conn`: { tls: { ca }, username, password } (each optional; null: plain, no AUTH).
async function askWith(conn, port, ...args) {
  const { tls, username, password } = conn || {};
  const c = new Redis({
    port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, commandTimeout: 2000, retryStrategy: () => null,
    username, password, tls: tls ? { ca: fs.readFileSync(tls.ca) } : undefined,
  });
  c.on('error', () => {});
  try {
    await c.connect();
    return await c.call(...args);
  } finally {
    c.disconnect();
  }
}

// Polls `check` (async → truthy when done) every 100 ms until `timeoutMs`.
async function until(what, check, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${last.message}` : ''}`);
}

// SIGKILL to `proc` (a child process or null) → resolves once it exited.
function killProcess(proc) {
  return new Promise((resolve) => {
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return resolve();
    proc.once('exit', () => resolve());
    proc.kill('SIGKILL');
  });
}

function run(cmd, args, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { timeout: timeoutMs }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`));
      else resolve(stdout);
    });
  });
}

// Parses INFO-style `k:v` lines.
function info(text) {
  const out = {};
  for (const line of String(text).split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

// ---------------------------------------------------------------------------------- cluster

class Cluster {
  // `conn`: how the helpers reach the nodes (TLS mode, passwords), or null.
  constructor(nodes, conn = null) {
    this.nodes = nodes; // RedisServer[] (TlsNode[] in TLS mode)
    this.conn = conn;
  }

  get urls() {
    const scheme = this.conn && this.conn.tls ? 'rediss' : 'redis';
    return this.nodes.map((n) => `${scheme}://127.0.0.1:${n.port}`);
  }

  ask(port, ...args) {
    return askWith(this.conn, port, ...args);
  }

  // Ports of the nodes that are primaries now (as the live nodes see it).
  async primaries() {
    const out = [];
    for (const n of this.nodes) {
      if (!n.proc) continue;
      try {
        const role = await this.ask(n.port, 'ROLE');
        if (role[0] === 'master') out.push(n.port);
      } catch {}
    }
    return out;
  }

  // Every live node reports cluster_state:ok and 3 primaries serving all 16384 slots.
  async waitOk(timeoutMs = 30000) {
    await until('cluster_state:ok', async () => {
      for (const n of this.nodes) {
        if (!n.proc) continue;
        const i = info(await this.ask(n.port, 'CLUSTER', 'INFO'));
        if (i.cluster_state !== 'ok' || i.cluster_slots_ok !== '16384') return false;
      }
      return (await this.primaries()).length >= 3;
    }, timeoutMs);
  }

  node(port) {
    return this.nodes.find((n) => n.port === port);
  }

  // The primary that serves `key`'s slot, as a live node sees it.
  async primaryOf(key) {
    const slot = await this.ask(this.nodes.find((n) => n.proc).port, 'CLUSTER', 'KEYSLOT', key);
    for (const port of await this.primaries()) {
      const slots = await this.ask(port, 'CLUSTER', 'SLOTS');
      for (const [from, to, master] of slots) {
        if (slot >= from && slot <= to && master[1] === port) return port;
      }
    }
    throw new Error(`no primary serves slot ${slot}`);
  }

  // Kills a primary with SIGKILL and resolves once its replica is promoted and the cluster
  // is ok again → { killed, promotedAfterMs }. The kill waits (2 s at most) until the replica
  // has acknowledged everything the primary had written: Redis replicates asynchronously, so a
  // write made a moment before the kill (a lock's grant) may otherwise be lost with it, and no
  // client can prevent that; the failover tests pin what happens to the writes that survive.
  async killPrimary(port) {
    const before = await this.primaries();
    const victim = port || before[0];
    const offsets = async () => {
      const info = String(await this.ask(victim, 'INFO', 'replication'));
      const own = Number((/master_repl_offset:(\d+)/.exec(info) || [])[1] || 0);
      const acked = [...info.matchAll(/slave\d+:[^\r\n]*offset=(\d+)/g)].map((m) => Number(m[1]));
      return acked.length > 0 && Math.max(...acked) >= own;
    };
    const syncedBy = Date.now() + 2000;
    while (Date.now() < syncedBy && !(await offsets().catch(() => false))) await new Promise((r) => setTimeout(r, 20));
    const t0 = Date.now();
    await this.node(victim).kill();
    await until('a replica promoted', async () => {
      const now = await this.primaries();
      return now.length >= 3 && !now.includes(victim);
    }, 30000);
    await this.waitOk(30000);
    return { killed: victim, promotedAfterMs: Date.now() - t0 };
  }

  // Cluster-wide inspection, as the single-instance backends expose it.
  async keys() {
    const out = [];
    for (const port of await this.primaries()) {
      let cursor = '0';
      for (let i = 0; i < 100000; i++) {
        const [next, batch] = await this.ask(port, 'SCAN', cursor, 'COUNT', '1000');
        out.push(...batch);
        cursor = next;
        if (cursor === '0') break;
      }
    }
    return out;
  }

  async on(key, ...args) {
    return this.ask(await this.primaryOf(key), ...args);
  }

  async flush() {
    for (const port of await this.primaries()) await this.ask(port, 'FLUSHALL');
  }

  // How many replies with this error prefix (e.g. CROSSSLOT) the live nodes have sent.
  async errorCount(prefix) {
    let n = 0;
    for (const node of this.nodes) {
      if (!node.proc) continue;
      const m = new RegExp(`^errorstat_${prefix}:count=(\\d+)`, 'm').exec(await this.ask(node.port, 'INFO', 'errorstats'));
      if (m) n += Number(m[1]);
    }
    return n;
  }

  async stop() {
    for (const n of this.nodes) await n.stop();
    live.delete(this);
  }
}

// A redis-server listening on a TLS port only (`--port 0`): replication and the cluster bus
// on TLS too. `conn` ({ tls, password }) is how the helpers reach it.
class TlsNode {
  constructor(port, args, pki, conn) {
    this.port = port;
    this.args = args;
    this.pki = pki;
    this.conn = conn;
    this.proc = null;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-tls-redis-'));
  }

  async start() {
    const { cert, key, ca } = this.pki;
    this.proc = spawn('redis-server', [
      '--port', '0', '--tls-port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', this.dir, '--daemonize', 'no', '--loglevel', 'warning',
      '--tls-cert-file', cert, '--tls-key-file', key, '--tls-ca-cert-file', ca, '--tls-auth-clients', 'no',
      '--tls-replication', 'yes',
      ...this.args,
    ], { stdio: 'ignore' });
    this.proc.on('error', () => {});
    await until(`TLS redis on ${this.port}`, async () => (await askWith(this.conn, this.port, 'PING')) === 'PONG', 10000);
    return this;
  }

  kill() {
    const p = this.proc;
    this.proc = null;
    return killProcess(p);
  }

  async stop() {
    await this.kill();
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// `tls`: a PKI (TLS mode, see the top); `password`: every node's `requirepass` (and
// `masterauth`); `replicas`: 1 (a replica per primary) or 0.
async function startCluster({ nodeTimeoutMs = 1000, tls, password, replicas = 1 } = {}) {
  const nodes = [];
  const conn = tls || password ? { tls, password } : null;
  const cluster = new Cluster(nodes, conn);
  live.add(cluster);
  try {
    for (let i = 0; i < 3 * (1 + replicas); i++) {
      const port = await freePort();
      const args = [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', String(nodeTimeoutMs),
        // a replica whose primary died promotes itself however long it was cut off
        '--cluster-replica-validity-factor', '0',
        ...(tls ? ['--tls-cluster', 'yes'] : []),
        ...(password ? ['--requirepass', password, '--masterauth', password] : []),
      ];
      const n = tls ? new TlsNode(port, args, tls, conn) : new RedisServer(port, args);
      nodes.push(n);
      await n.start();
    }
    const cli = [...(tls ? ['--tls', '--cacert', tls.ca] : []), ...(password ? ['-a', password, '--no-auth-warning'] : [])];
    await run('redis-cli', [...cli, '--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', String(replicas), '--cluster-yes']);
    await cluster.waitOk();
    // every replica is attached and in sync, so that killing a primary can promote one
    await until('replicas in sync', async () => {
      let synced = 0;
      for (const n of nodes) {
        const i = info(await cluster.ask(n.port, 'INFO', 'replication'));
        if (i.role === 'slave' && i.master_link_status === 'up') synced++;
      }
      return synced === 3 * replicas;
    });
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

// --------------------------------------------------------------------------------- sentinel

class SentinelProcess {
  // `conn`: how the helpers reach it (TLS mode, its password), or null.
  constructor(port, dir, conf, conn = null) {
    this.port = port;
    this.dir = dir;
    this.conf = conf;
    this.conn = conn;
    this.proc = null;
  }

  async start() {
    const file = path.join(this.dir, `sentinel-${this.port}.conf`);
    fs.writeFileSync(file, this.conf);
    this.proc = spawn('redis-server', [file, '--sentinel'], { stdio: 'ignore' });
    this.proc.on('error', () => {});
    await until(`sentinel on ${this.port}`, async () => (await askWith(this.conn, this.port, 'PING')) === 'PONG', 10000);
    return this;
  }

  async stop() {
    const p = this.proc;
    this.proc = null;
    await killProcess(p);
  }
}

class SentinelSetup {
  // `sentinelConn` / `dataConn`: how the helpers reach the sentinels / the data nodes (TLS
  // mode, passwords), or null.
  constructor(masterName, servers, sentinels, dir, { sentinelConn = null, dataConn = null } = {}) {
    this.masterName = masterName;
    this.servers = servers; // [primary, replica] at start
    this.sentinels = sentinels;
    this.dir = dir;
    this.sentinelConn = sentinelConn;
    this.dataConn = dataConn;
  }

  get nodes() {
    const scheme = this.sentinelConn && this.sentinelConn.tls ? 'rediss' : 'redis';
    return this.sentinels.map((s) => `${scheme}://127.0.0.1:${s.port}`);
  }

  askSentinel(port, ...args) {
    return askWith(this.sentinelConn, port, ...args);
  }

  askData(port, ...args) {
    return askWith(this.dataConn, port, ...args);
  }

  // The primary's port as the sentinels report it now.
  async primaryPort() {
    for (const s of this.sentinels) {
      try {
        const [, port] = await this.askSentinel(s.port, 'SENTINEL', 'get-master-addr-by-name', this.masterName);
        return Number(port);
      } catch {}
    }
    throw new Error('no sentinel answered');
  }

  server(port) {
    return this.servers.find((s) => s.port === port);
  }

  // The sentinels know the primary, each other and an in-sync replica.
  async waitReady(timeoutMs = 30000) {
    await until('sentinels ready', async () => {
      const primary = await this.primaryPort();
      for (const s of this.sentinels) {
        const m = await this.askSentinel(s.port, 'SENTINEL', 'master', this.masterName);
        const fields = {};
        for (let i = 0; i + 1 < m.length; i += 2) fields[m[i]] = m[i + 1];
        if (Number(fields.port) !== primary || fields['num-other-sentinels'] !== '2' || fields['num-slaves'] !== '1') return false;
        if (String(fields.flags).includes('down')) return false;
        const replicas = await this.askSentinel(s.port, 'SENTINEL', 'replicas', this.masterName);
        const r = {};
        for (let i = 0; i + 1 < replicas[0].length; i += 2) r[replicas[0][i]] = replicas[0][i + 1];
        if (String(r.flags).includes('down') || r['master-link-status'] !== 'ok') return false;
      }
      const i = info(await this.askData(this.servers.find((s) => s.port !== primary).port, 'INFO', 'replication'));
      return i.master_link_status === 'up';
    }, timeoutMs);
  }

  // SENTINEL FAILOVER, resolved once the sentinels name the other server and it is a
  // primary → { from, to, switchedAfterMs }.
  async failover() {
    const from = await this.primaryPort();
    const t0 = Date.now();
    await this.askSentinel(this.sentinels[0].port, 'SENTINEL', 'FAILOVER', this.masterName);
    const to = await until('the failover', async () => {
      const p = await this.primaryPort();
      if (p === from) return false;
      const role = await this.askData(p, 'ROLE');
      return role[0] === 'master' ? p : false;
    }, 30000);
    return { from, to, switchedAfterMs: Date.now() - t0 };
  }

  async stop() {
    for (const s of this.sentinels) await s.stop();
    for (const s of this.servers) await s.stop();
    fs.rmSync(this.dir, { recursive: true, force: true });
    live.delete(this);
  }
}

// `tls`: a PKI (TLS mode: data nodes and sentinels on TLS ports only). `dataPassword`: the
// data nodes' requirepass (and masterauth; the sentinels are told it). `sentinelAuth`:
// { password } → the sentinels' requirepass; { username, password } → an ACL user on the
// sentinels (Redis 7 `user` lines) with the default user off.
async function startSentinel({ masterName = 'm', downAfterMs = 1000, failoverTimeoutMs = 3000, tls, dataPassword, sentinelAuth } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-sentinel-'));
  const servers = [];
  const sentinels = [];
  const dataConn = tls || dataPassword ? { tls, password: dataPassword } : null;
  const sentinelConn = tls || sentinelAuth ? { tls, ...sentinelAuth } : null;
  const setup = new SentinelSetup(masterName, servers, sentinels, dir, { sentinelConn, dataConn });
  live.add(setup);
  const dataNode = async (args) => {
    const auth = dataPassword ? ['--requirepass', dataPassword, '--masterauth', dataPassword] : [];
    const port = await freePort();
    return (tls ? new TlsNode(port, [...auth, ...args], tls, dataConn) : new RedisServer(port, [...(dataPassword ? ['--masterauth', dataPassword] : []), ...args], dataPassword)).start();
  };
  try {
    const primary = await dataNode([]);
    servers.push(primary);
    const replica = await dataNode(['--replicaof', '127.0.0.1', String(primary.port)]);
    servers.push(replica);
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = [
        ...(tls
          ? ['port 0', `tls-port ${port}`, `tls-cert-file ${tls.cert}`, `tls-key-file ${tls.key}`, `tls-ca-cert-file ${tls.ca}`, 'tls-auth-clients no', 'tls-replication yes']
          : [`port ${port}`]),
        'bind 127.0.0.1',
        'daemonize no',
        'loglevel warning',
        `dir ${dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
        `sentinel failover-timeout ${masterName} ${failoverTimeoutMs}`,
        `sentinel parallel-syncs ${masterName} 1`,
        ...(dataPassword ? [`sentinel auth-pass ${masterName} ${dataPassword}`] : []),
        // the sentinels authenticate to each other as clients do
        ...(sentinelAuth && sentinelAuth.username
          ? ['user default off', `user ${sentinelAuth.username} on >${sentinelAuth.password} ~* &* +@all`,
              `sentinel sentinel-user ${sentinelAuth.username}`, `sentinel sentinel-pass ${sentinelAuth.password}`]
          : sentinelAuth ? [`requirepass ${sentinelAuth.password}`] : []),
        '',
      ].join('\n');
      const s = new SentinelProcess(port, dir, conf, sentinelConn);
      sentinels.push(s);
      await s.start();
    }
    await setup.waitReady();
    return setup;
  } catch (err) {
    await setup.stop();
    throw err;
  }
}

process.on('exit', () => {
  for (const t of live) {
    for (const s of [...(t.sentinels || []), ...(t.servers || []), ...(t.nodes || [])]) {
      if (s.proc) try { s.proc.kill('SIGKILL'); } catch {}
    }
  }
});

module.exports = { startCluster, startSentinel, ask, askWith, until, info };
