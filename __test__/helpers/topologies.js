'use strict';
// Real Redis topologies for tests, all on 127.0.0.1 with free ports: a 3-primary/3-replica
// Redis Cluster and a Sentinel set-up (1 primary, 1 replica, 3 sentinels). Every wait is
// bounded; stop() kills every process and removes its directory.

const { spawn, execFile } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');
const Redis = require('ioredis');
const { freePort, sleep, RedisServer } = require('./redis');

const live = new Set();

// One command on one node through a short-lived ioredis client (bounded).
async function ask(port, ...args) {
  const c = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 1000, commandTimeout: 2000, retryStrategy: () => null });
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
  constructor(nodes) {
    this.nodes = nodes; // RedisServer[]
  }

  get urls() {
    return this.nodes.map((n) => `redis://127.0.0.1:${n.port}`);
  }

  // Ports of the nodes that are primaries now (as the live nodes see it).
  async primaries() {
    const out = [];
    for (const n of this.nodes) {
      if (!n.proc) continue;
      try {
        const role = await ask(n.port, 'ROLE');
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
        const i = info(await ask(n.port, 'CLUSTER', 'INFO'));
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
    const slot = await ask(this.nodes.find((n) => n.proc).port, 'CLUSTER', 'KEYSLOT', key);
    for (const port of await this.primaries()) {
      const slots = await ask(port, 'CLUSTER', 'SLOTS');
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
      const info = String(await ask(victim, 'INFO', 'replication'));
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
        const [next, batch] = await ask(port, 'SCAN', cursor, 'COUNT', '1000');
        out.push(...batch);
        cursor = next;
        if (cursor === '0') break;
      }
    }
    return out;
  }

  async on(key, ...args) {
    return ask(await this.primaryOf(key), ...args);
  }

  async flush() {
    for (const port of await this.primaries()) await ask(port, 'FLUSHALL');
  }

  // How many replies with this error prefix (e.g. CROSSSLOT) the live nodes have sent.
  async errorCount(prefix) {
    let n = 0;
    for (const node of this.nodes) {
      if (!node.proc) continue;
      const m = new RegExp(`^errorstat_${prefix}:count=(\\d+)`, 'm').exec(await ask(node.port, 'INFO', 'errorstats'));
      if (m) n += Number(m[1]);
    }
    return n;
  }

  async stop() {
    for (const n of this.nodes) await n.stop();
    live.delete(this);
  }
}

async function startCluster({ nodeTimeoutMs = 1000 } = {}) {
  const nodes = [];
  const cluster = new Cluster(nodes);
  live.add(cluster);
  try {
    for (let i = 0; i < 6; i++) {
      const port = await freePort();
      const n = new RedisServer(port, [
        '--cluster-enabled', 'yes',
        '--cluster-config-file', `nodes-${port}.conf`,
        '--cluster-node-timeout', String(nodeTimeoutMs),
        // a replica whose primary died promotes itself however long it was cut off
        '--cluster-replica-validity-factor', '0',
      ]);
      nodes.push(n);
      await n.start();
    }
    await run('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes']);
    await cluster.waitOk();
    // every replica is attached and in sync, so that killing a primary can promote one
    await until('replicas in sync', async () => {
      let synced = 0;
      for (const n of nodes) {
        const i = info(await ask(n.port, 'INFO', 'replication'));
        if (i.role === 'slave' && i.master_link_status === 'up') synced++;
      }
      return synced === 3;
    });
    return cluster;
  } catch (err) {
    await cluster.stop();
    throw err;
  }
}

// --------------------------------------------------------------------------------- sentinel

class SentinelProcess {
  constructor(port, dir, conf) {
    this.port = port;
    this.dir = dir;
    this.conf = conf;
    this.proc = null;
  }

  async start() {
    const file = path.join(this.dir, `sentinel-${this.port}.conf`);
    fs.writeFileSync(file, this.conf);
    this.proc = spawn('redis-server', [file, '--sentinel'], { stdio: 'ignore' });
    this.proc.on('error', () => {});
    await until(`sentinel on ${this.port}`, async () => (await ask(this.port, 'PING')) === 'PONG', 10000);
    return this;
  }

  async stop() {
    if (!this.proc) return;
    const p = this.proc;
    this.proc = null;
    await new Promise((resolve) => {
      if (p.exitCode !== null || p.signalCode !== null) return resolve();
      p.once('exit', () => resolve());
      p.kill('SIGKILL');
    });
  }
}

class SentinelSetup {
  constructor(masterName, servers, sentinels, dir) {
    this.masterName = masterName;
    this.servers = servers; // [primary, replica] at start
    this.sentinels = sentinels;
    this.dir = dir;
  }

  get nodes() {
    return this.sentinels.map((s) => `redis://127.0.0.1:${s.port}`);
  }

  // The primary's port as the sentinels report it now.
  async primaryPort() {
    for (const s of this.sentinels) {
      try {
        const [, port] = await ask(s.port, 'SENTINEL', 'get-master-addr-by-name', this.masterName);
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
        const m = await ask(s.port, 'SENTINEL', 'master', this.masterName);
        const fields = {};
        for (let i = 0; i + 1 < m.length; i += 2) fields[m[i]] = m[i + 1];
        if (Number(fields.port) !== primary || fields['num-other-sentinels'] !== '2' || fields['num-slaves'] !== '1') return false;
        if (String(fields.flags).includes('down')) return false;
        const replicas = await ask(s.port, 'SENTINEL', 'replicas', this.masterName);
        const r = {};
        for (let i = 0; i + 1 < replicas[0].length; i += 2) r[replicas[0][i]] = replicas[0][i + 1];
        if (String(r.flags).includes('down') || r['master-link-status'] !== 'ok') return false;
      }
      const i = info(await ask(this.servers.find((s) => s.port !== primary).port, 'INFO', 'replication'));
      return i.master_link_status === 'up';
    }, timeoutMs);
  }

  // SENTINEL FAILOVER, resolved once the sentinels name the other server and it is a
  // primary → { from, to, switchedAfterMs }.
  async failover() {
    const from = await this.primaryPort();
    const t0 = Date.now();
    await ask(this.sentinels[0].port, 'SENTINEL', 'FAILOVER', this.masterName);
    const to = await until('the failover', async () => {
      const p = await this.primaryPort();
      if (p === from) return false;
      const role = await ask(p, 'ROLE');
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

async function startSentinel({ masterName = 'm', downAfterMs = 1000, failoverTimeoutMs = 3000 } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-sentinel-'));
  const servers = [];
  const sentinels = [];
  const setup = new SentinelSetup(masterName, servers, sentinels, dir);
  live.add(setup);
  try {
    const primary = await new RedisServer(await freePort(), []).start();
    servers.push(primary);
    const replica = await new RedisServer(await freePort(), ['--replicaof', '127.0.0.1', String(primary.port)]).start();
    servers.push(replica);
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      const conf = [
        `port ${port}`,
        'bind 127.0.0.1',
        'daemonize no',
        'loglevel warning',
        `dir ${dir}`,
        `sentinel monitor ${masterName} 127.0.0.1 ${primary.port} 2`,
        `sentinel down-after-milliseconds ${masterName} ${downAfterMs}`,
        `sentinel failover-timeout ${masterName} ${failoverTimeoutMs}`,
        `sentinel parallel-syncs ${masterName} 1`,
        '',
      ].join('\n');
      const s = new SentinelProcess(port, dir, conf);
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

module.exports = { startCluster, startSentinel, ask, until, info };
