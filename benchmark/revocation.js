'use strict';
// What the revocation guards cost per operation: the same rows run by two builds of this
// package (e.g. the commit before the guards and the current one) on one fresh redis-server,
// each row in fresh child processes that alternate A, B, A, B, … (medians of the runs).
//
//   node benchmark/revocation.js <dir of build A> <dir of build B> [--runs=5] [--calls=20000]
//                                [--in-flight=64] [--rows=sessionHit,sessionFill,…]
//
// A "dir" is a checkout of this repository with its addon built (npm run build). Rows:
//   sessionHit       getSessionWithFallback of a cached session (the hot path: unchanged)
//   sessionFill      getSessionWithFallback miss → loader → fill (the miss read and the guarded fill)
//   sessionRevoke    invalidateSession of a cached session (DEL + revision bump)
//   userRevoke       invalidateUserSessions of a user with 4 sessions
//   permFill         getUserPermissionsWithFallback miss → loader → fill
//   permRevoke       permissionCache.invalidateUserPermissions
// Every row starts from a flushed Redis and seeds what it needs before the clock starts.

const path = require('path');
const { spawn } = require('child_process');
const { performance } = require('perf_hooks');

const ROWS = ['sessionHit', 'sessionFill', 'sessionRevoke', 'userRevoke', 'permFill', 'permRevoke'];
const MAX_ROW_MS = 20_000;

function arg(name, dflt) {
  const a = process.argv.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : dflt;
}

// ---- child: one row of one build ------------------------------------------------------------
async function child(dir, url, row, calls, inFlight) {
  const { createCache, hashToken } = require(path.resolve(dir));
  const session = (i) => ({ user_id: i % 1000, user: { id: i, name: `user ${i}`, role: 'CLERK' }, roles: ['CLERK'] });
  const snapshot = { role: 'CLERK', modules: ['INVENTORY', 'REPORTS'], pages: { 'inventory-items': ['view'] } };
  const cache = createCache({
    url,
    commandTimeoutMs: 5000,
    nearCacheTtlMs: 0,
    loaders: { session: async (t) => session(Number(t.slice(4))), userPermissions: async () => snapshot },
  });
  const ioredis = new (require('ioredis'))(url);
  await ioredis.flushall();
  const n = calls;
  const token = (i) => `tok-${i}`;
  let op;
  if (row === 'sessionHit') {
    for (let i = 0; i < 1000; i++) await cache.getSessionWithFallback(token(i));
    op = (i) => cache.getSessionWithFallback(token(i % 1000));
  } else if (row === 'sessionFill') {
    op = (i) => cache.getSessionWithFallback(token(i));
  } else if (row === 'sessionRevoke') {
    for (let i = 0; i < n; i += 256) await Promise.all(Array.from({ length: Math.min(256, n - i) }, (_, j) => cache.getSessionWithFallback(token(i + j))));
    const hashes = Array.from({ length: n }, (_, i) => hashToken(token(i)));
    op = (i) => cache.invalidateSession(hashes[i]);
  } else if (row === 'userRevoke') {
    const users = Math.floor(n / 4);
    for (let i = 0; i < users * 4; i += 256) {
      await Promise.all(Array.from({ length: Math.min(256, users * 4 - i) }, (_, j) => cache.sessionCache.setSession(`h${i + j}`, { user_id: (i + j) % users })));
    }
    op = (i) => cache.sessionCache.invalidateUserSessions(i % users);
  } else if (row === 'permFill') {
    op = (i) => cache.permissionCache.getUserPermissionsWithFallback(i, 'CLERK');
  } else if (row === 'permRevoke') {
    for (let i = 0; i < n; i += 256) await Promise.all(Array.from({ length: Math.min(256, n - i) }, (_, j) => cache.permissionCache.setUserPermissions(i + j, snapshot)));
    op = (i) => cache.permissionCache.invalidateUserPermissions(i);
  } else {
    throw new Error(`unknown row ${row}`);
  }
  const total = row === 'userRevoke' ? Math.floor(n / 4) : n;
  let next = 0;
  const started = performance.now();
  const lane = async () => {
    while (next < total && performance.now() - started < MAX_ROW_MS) await op(next++);
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const ms = performance.now() - started;
  const done = next;
  await ioredis.quit();
  await cache.shutdown();
  process.stdout.write(JSON.stringify({ opsPerSec: (done / ms) * 1000, done }) + '\n');
}

// ---- parent ---------------------------------------------------------------------------------
function runChild(dir, url, row, calls, inFlight) {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [__filename, '--child', dir, url, row, String(calls), String(inFlight)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), MAX_ROW_MS * 4);
    p.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== 0) return reject(new Error(`${row} in ${dir} exited ${code}`));
      resolve(JSON.parse(out.trim().split('\n').pop()).opsPerSec);
    });
  });
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main() {
  const [a, b] = process.argv.slice(2).filter((x) => !x.startsWith('--'));
  if (!a || !b) throw new Error('usage: node benchmark/revocation.js <dir A> <dir B> [--runs=5] [--calls=20000] [--in-flight=64] [--rows=…]');
  const runs = Number(arg('runs', '5'));
  const calls = Number(arg('calls', '20000'));
  const inFlight = Number(arg('in-flight', '64'));
  const rows = arg('rows', ROWS.join(',')).split(',');
  const { startBenchRedis } = require('./lib/redis');
  const redis = await startBenchRedis();
  try {
    console.log(`| row | A ops/s | B ops/s | B ÷ A |\n|---|---:|---:|---:|`);
    for (const row of rows) {
      const ra = [];
      const rb = [];
      for (let r = 0; r < runs; r++) {
        ra.push(await runChild(a, redis.url, row, calls, inFlight));
        rb.push(await runChild(b, redis.url, row, calls, inFlight));
      }
      const ma = median(ra);
      const mb = median(rb);
      console.log(`| ${row} | ${Math.round(ma)} | ${Math.round(mb)} | ${(mb / ma).toFixed(2)}× |`);
    }
    console.log(`\n${runs} alternating runs per build and row, ${calls} calls, ${inFlight} in flight; A = ${a}, B = ${b}`);
  } finally {
    await redis.stop();
  }
}

if (process.argv[2] === '--child') {
  const [, , , dir, url, row, calls, inFlight] = process.argv;
  child(dir, url, row, Number(calls), Number(inFlight)).catch((err) => {
    console.error(err);
    process.exit(1);
  });
} else {
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}
