#!/usr/bin/env node
'use strict';
// `npm test`: makes sure redis-server exists (installing it on Debian as root), builds the
// addon from the current source with the test hooks (unless the build in place is already that
// build of this very source), then runs the Rust unit tests and the JS suites.
// `node scripts/test.js --build-only` (`npm run build:test`): only the build step.
//
// The test build is the release build with the cargo feature `test-hooks` (src/test_hooks.rs).
// It writes no binding.js and its type definitions go to target/, so the committed loader and
// types (which list no hook) stay as they are.

const { spawnSync } = require('child_process');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const STAMP = path.join(ROOT, 'target', 'test-build.stamp.json');
const BUILD_ARGS = ['napi', 'build', '--platform', '--release', '--features', 'test-hooks', '--no-js', '--dts', 'target/test-hooks.d.ts'];
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

// Every file the binary is compiled from, sorted: src/**, Cargo.toml, Cargo.lock, build.rs.
function buildInputs() {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(path.join(ROOT, 'src'));
  for (const f of ['Cargo.toml', 'Cargo.lock', 'build.rs']) {
    const p = path.join(ROOT, f);
    if (fs.existsSync(p)) out.push(p);
  }
  return out.map((p) => path.relative(ROOT, p).split(path.sep).join('/')).sort();
}

// The hash of the build: its command line and the path and content of every input.
function sourceHash() {
  const h = crypto.createHash('sha256');
  h.update(`${BUILD_ARGS.join(' ')}\0`);
  for (const rel of buildInputs()) {
    h.update(`${rel}\0`);
    h.update(fs.readFileSync(path.join(ROOT, rel)));
    h.update('\0');
  }
  return h.digest('hex');
}

const fileHash = (file) => crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');

// The file name napi gives the binary of this host (`bisman-cache.linux-x64-gnu.node`).
function binaryPath() {
  const r = spawnSync('rustc', ['-vV'], { encoding: 'utf8' });
  const host = r.status === 0 ? /^host: (\S+)$/m.exec(r.stdout) : null;
  if (!host) return null;
  const { parseTriple } = require('@napi-rs/cli');
  const { binaryName } = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).napi;
  return path.join(ROOT, `${binaryName}.${parseTriple(host[1]).platformArchABI}.node`);
}

// Why the build in place cannot be reused, or null when it can: it must be the binary this
// script built (same hash) from the same inputs with the same command.
function staleReason(hash, binary) {
  if (binary === null) return 'the host triple is unknown (rustc -vV)';
  if (!fs.existsSync(binary)) return `${path.basename(binary)} does not exist`;
  let stamp;
  try {
    stamp = JSON.parse(fs.readFileSync(STAMP, 'utf8'));
  } catch {
    return 'no stamp of a test build (target/test-build.stamp.json)';
  }
  if (stamp.source !== hash) return 'the sources (src/**, Cargo.toml, Cargo.lock, build.rs) changed since the last test build';
  if (stamp.binary !== fileHash(binary)) return `${path.basename(binary)} is not the last test build (another build replaced it)`;
  return null;
}

function ensureBuild() {
  const hash = sourceHash();
  const binary = binaryPath();
  const why = staleReason(hash, binary);
  if (why === null) {
    console.log(`\n== build the addon: up to date, reusing ${path.basename(binary)} (release, test-hooks; sources ${hash.slice(0, 12)})`);
    return;
  }
  console.log(`\n== build the addon: rebuilding (release, test-hooks) because ${why}`);
  fs.rmSync(STAMP, { force: true });
  step('build the addon', 'npx', BUILD_ARGS);
  const built = binary !== null ? binary : binaryPath();
  if (built === null || !fs.existsSync(built)) {
    console.error('\nthe build wrote no binary for this host');
    process.exit(1);
  }
  fs.mkdirSync(path.dirname(STAMP), { recursive: true });
  fs.writeFileSync(STAMP, `${JSON.stringify({ source: hash, binary: fileHash(built), args: BUILD_ARGS }, null, 2)}\n`);
}

if (process.argv.includes('--build-only')) {
  ensureBuild();
} else {
  ensureRedis();
  ensureBuild();
  step('Rust unit tests', 'cargo', ['test', '--quiet', '--features', 'test-hooks']);
  const suites = fs
    .readdirSync(path.join(ROOT, '__test__'))
    .filter((f) => f.endsWith('.test.js'))
    .map((f) => path.join('__test__', f));
  step('JS suites against real redis-server processes and memory://', process.execPath, ['--test', '--test-concurrency=1', ...suites]);
}
