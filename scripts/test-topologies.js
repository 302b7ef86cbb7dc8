#!/usr/bin/env node
'use strict';
// `npm run test:topologies`: builds the addon, then runs the behavioural suites (sessions,
// permissions, pub/sub, rate limiter, locks) on a real Redis Cluster (3 primaries, 3 replicas)
// and on a Sentinel set-up (1 primary, 1 replica, 3 sentinels), then the failover tests and
// the TLS topologies (a TLS-only cluster, TLS sentinels with passwords, ACL sentinels).
// Every topology is started on free loopback ports by __test__/helpers/topologies.js.

const { spawnSync } = require('child_process');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const SUITES = ['session', 'permissions', 'pubsub', 'rate_limit', 'lock', 'revocation_journal', 'revocation_gaps', 'revocation_race', 'general_cache', 'general_cache_guards', 'express_session_store', 'fast_entry', 'rate_batch'].map((s) => path.join('__test__', `${s}.test.js`));

function step(name, cmd, args, env = {}) {
  console.log(`\n== ${name}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`\n${name} failed`);
    process.exit(r.status || 1);
  }
}

step('build the addon', 'npx', ['napi', 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts']);
for (const topology of ['sentinel', 'cluster']) {
  // only the suites parameterised by back end (`… on <backend>`); the standalone failure suites
  // (a killed or paused single redis-server) run in `npm test`
  step(`behavioural suites on ${topology}`, process.execPath, ['--test', '--test-concurrency=1', `--test-name-pattern=on ${topology}`, ...SUITES], { BISMAN_TOPOLOGY: topology });
}
step('failover, the cluster transport, per-node health and breakers, TLS and credentials to every node', process.execPath, ['--test', '--test-concurrency=1', ...['failover', 'cluster_transport', 'node_health', 'node_circuit', 'tls_nodes'].map((f) => path.join('__test__', 'topologies', `${f}.test.js`))]);
