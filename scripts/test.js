#!/usr/bin/env node
'use strict';
// `npm test`: makes sure redis-server exists (installing it on Debian as root), builds the
// addon from the current source, then runs the Rust unit tests and the JS suites.

const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const run = (cmd, args, opts = {}) => spawnSync(cmd, args, { stdio: 'inherit', cwd: ROOT, ...opts });
const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

function ensureRedis() {
  if (has('redis-server')) return;
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && has('apt-get')) {
    console.log('redis-server is missing: installing it with apt-get …');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    if (run('apt-get', ['update', '-qq'], { env }).status === 0 && run('apt-get', ['install', '-y', '-qq', 'redis-server'], { env }).status === 0 && has('redis-server')) {
      // The package starts a service on 6379; the tests start their own servers.
      return;
    }
  }
  console.error('npm test needs redis-server: install it (Debian/Ubuntu: sudo apt-get install -y redis-server; macOS: brew install redis) and run npm test again.');
  process.exit(1);
}

function step(name, cmd, args) {
  console.log(`\n== ${name}`);
  const r = run(cmd, args);
  if (r.status !== 0) {
    console.error(`\n${name} failed`);
    process.exit(r.status || 1);
  }
}

ensureRedis();
step('build the addon', 'npx', ['napi', 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts']);
step('Rust unit tests', 'cargo', ['test', '--quiet']);
const suites = fs
  .readdirSync(path.join(ROOT, '__test__'))
  .filter((f) => f.endsWith('.test.js'))
  .map((f) => path.join('__test__', f));
step('JS suites against real redis-server processes and memory://', process.execPath, ['--test', '--test-concurrency=1', ...suites]);
