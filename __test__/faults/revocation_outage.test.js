'use strict';
// Issue 15 item 4, the outage figure of the revocation journal (item 2, lib/journal.js):
// redis-server with AOF (appendfsync always); a session, a user snapshot and a role snapshot
// cached and read by node A and node B (two createCache instances, both subscribed, so their
// near caches hold the snapshots); Redis killed (SIGKILL); node A revokes them all (the user
// logs out, loses a module, the role loses it: the database already says so); reads on A during
// the outage; Redis restarted on the same port and directory; A replays its journal; then reads
// on A and on B. The control, so the test is real: before that restart the killed server's
// directory is copied and a second redis-server, which no cache node knows of, loads the copy's
// AOF: every revoked key is back there with a positive PTTL (asserted). A check on the restarted
// server itself cannot show it: A's replay usually deletes the keys before the test looks.
// Printed: "0 revived on the revoking node, 0 revived on another node once the journal is
// replayed", with the control's count and TTLs, the counts and the replay delay.
// On 38acc57 the revocations made during the outage answered false and were forgotten: after
// the restart Redis served the logged-out session (source 'cache', PTTL ~1 h) and the revoked
// snapshots to both nodes until their TTLs ran out.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { createCache, hashToken, sessionKey, permUserKey, permRoleKey } = require('../..');
const { startRedis, sleep } = require('../helpers/redis');
const { guardProcess } = require('../helpers/faults');

const guard = guardProcess();
const READS = 50; // reads of each kind, per node and phase

async function until(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await fn()) return;
    await sleep(20);
  }
  throw new Error(`timed out waiting for ${what}`);
}

// Every file of the AOF (Redis 7: appendonlydir/*), as one string.
function aofText(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (/aof/.test(e.name)) out.push(fs.readFileSync(p, 'latin1'));
    }
  };
  walk(dir);
  return out.join('\n');
}

describe('revocation outage: Redis killed with AOF on, revoke, restart', () => {
  let server;
  before(async () => {
    server = await startRedis({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
  });
  after(async () => {
    await server.stop();
  });

  it('0 revived on the revoking node and on another node once the journal is replayed', async () => {
    const id = crypto.randomBytes(4).toString('hex');
    const token = `tok-${id}`;
    const hash = hashToken(token);
    const user = `u-${id}`;
    const role = `r-${id}`;
    // the database: what the loaders answer
    const db = {
      sessions: new Map([[token, { user_id: user, role, expires_at: new Date(Date.now() + 3600_000).toISOString() }]]),
      user: { role, modules: ['finance'] },
      role: { modules: ['finance'] },
    };
    const node = (nodeId) =>
      createCache({
        url: server.url,
        nodeId,
        commandTimeoutMs: 300,
        connectTimeoutMs: 500,
        loaders: {
          session: async (t) => db.sessions.get(t) || null,
          userPermissions: async () => db.user,
          rolePermissions: async () => db.role,
        },
      });
    const A = node(`A-${id}`);
    const B = node(`B-${id}`);
    try {
      for (const n of [A, B]) {
        assert.equal(await n.pubsub.subscribe(), true);
        await n.getSessionWithFallback(token);
        assert.equal((await n.getSessionWithFallback(token)).source, 'cache');
        for (let i = 0; i < 3; i++) assert.equal(await n.permissionCache.hasModulePermission(user, 'finance'), true);
        await n.permissionCache.getRolePermissionsWithFallback(role);
        assert.equal((await n.permissionCache.getRolePermissionsWithFallback(role)).source, 'cache');
      }

      // Reads of one node → how many answered the revoked data, and how many of those came
      // from the cache.
      const readAll = async (n) => {
        const out = { revived: 0, fromCache: 0, reads: 0 };
        for (let i = 0; i < READS; i++) {
          const s = await n.getSessionWithFallback(token);
          const g = await n.sessionCache.getSession(hash);
          const m = await n.permissionCache.hasModulePermission(user, 'finance');
          const u = await n.permissionCache.getUserPermissionsWithFallback(user);
          const r = await n.permissionCache.getRolePermissionsWithFallback(role);
          out.reads += 5;
          for (const hit of [s !== null, g !== null, m, u !== null && u.modules.includes('finance'), r !== null && r.modules.includes('finance')]) if (hit) out.revived++;
          for (const x of [s, u, r]) if (x !== null && x.source === 'cache') out.fromCache++;
          if (g !== null) out.fromCache++;
        }
        return out;
      };

      await server.kill('SIGKILL');

      // A revokes: the database first, then the cache (Redis is down: kept in A's journal)
      db.sessions.delete(token);
      db.user = { role, modules: [] };
      db.role = { modules: [] };
      assert.equal(await A.invalidateSession(hash), false);
      assert.equal(await A.permissionCache.invalidateUserPermissions(user), false);
      assert.equal(await A.permissionCache.invalidateRolePermissions(role), false);
      assert.equal(A.stats().revocation.pending, 3);

      const duringA = await readAll(A);
      assert.equal(A.isEnabled(), false);

      // the AOF holds every revoked value: a restart brings them back
      const revoked = [sessionKey(hash), permUserKey(user), permRoleKey(role)];
      const aof = aofText(server.dir);
      for (const k of revoked) assert.ok(aof.includes(k), `${k} is in the AOF`);
      // the control: a copy of the directory loaded by a second redis-server that no cache node
      // knows of (so no journal replays there): without the journal every revoked key is back
      const copyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-aof-copy-'));
      let control;
      try {
        fs.cpSync(server.dir, copyDir, { recursive: true });
        const copy = await startRedis({ dir: copyDir, args: ['--appendonly', 'yes'] });
        try {
          const c = copy.client();
          control = { back: await c.exists(...revoked), pttl: await Promise.all(revoked.map((k) => c.pttl(k))) };
        } finally {
          await copy.stop();
        }
      } finally {
        fs.rmSync(copyDir, { recursive: true, force: true });
      }
      assert.equal(control.back, 3, 'the AOF copy, loaded without any cache node, has the 3 revoked keys');
      for (const [i, ms] of control.pttl.entries()) assert.ok(ms > 0, `${revoked[i]} has a positive PTTL in the AOF copy (${ms})`);
      await server.start();
      const restartedAt = Date.now();
      const admin = server.client();
      const back = await admin.exists(...revoked);

      await until('A replays its journal', () => A.stats().revocation.pending === 0, 15_000);
      const replayMs = Date.now() - restartedAt;
      assert.equal(await admin.exists(...revoked), 0);
      // A reports itself healthy only now; B's subscription is back
      await until('A healthy', async () => (await A.ping()).enabled, 5_000);
      await until('B subscribed again', () => B.pubsub.isConnected(), 10_000);

      const afterA = await readAll(A);
      const afterB = await readAll(B);
      console.log(
        `revocation outage: control (a copy of the AOF loaded by a redis-server no cache node knows): ${control.back}/3 revoked keys back, `
        + `PTTL ${control.pttl.map((ms) => `${Math.round(ms / 1000)} s`).join(' / ')} (session / user / role); `
        + `on the restarted server ${back}/3 were still there at the first check (A's replay races it). `
        + `During the outage node A: ${duringA.revived} revived / ${duringA.reads} reads (${duringA.fromCache} from the cache). `
        + `Replay ${replayMs} ms after Redis was ready (${A.stats().revocation.replayed} replayed). `
        + `${afterA.revived} revived on the revoking node (${afterA.reads} reads, ${afterA.fromCache} from the cache), `
        + `${afterB.revived} revived on another node once the journal is replayed (${afterB.reads} reads, ${afterB.fromCache} from the cache)`,
      );
      assert.deepEqual([duringA.revived, duringA.fromCache], [0, 0]);
      assert.equal(afterA.revived, 0);
      assert.equal(afterB.revived, 0);
      assert.deepEqual([guard.unhandled, guard.uncaught], [0, 0], guard.reasons.map(String).join('; '));
    } finally {
      await A.shutdown();
      await B.shutdown();
    }
  });
});
