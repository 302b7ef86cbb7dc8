#!/usr/bin/env node
'use strict';
// `npm run test:pack`: the install a user gets from the registry, proved on this machine.
//   1. builds the linux-x64-gnu binary (release, without the test hooks),
//   2. packs the root package (JS, types and the loader only) with the optionalDependencies that
//      `napi pre-publish` writes at publish time, and the npm/linux-x64-gnu platform package
//      holding the binary, and proves neither holds a test hook,
//   2b. lints the tarballs: publint (package.json fields and files) on both, and
//      @arethetypeswrong/cli (the types under node10, node16 CJS and ESM, bundler resolution) on
//      the root package; `npm publish --dry-run` of both (to an unreachable loopback registry),
//   3. installs both tarballs into a new temporary project with cargo and rustc off the PATH,
//   4. there requires the package (CommonJS, ESM, the drop-in subpaths) and runs a few calls on
//      memory:// and on a real redis-server.
// Prints the tarball sizes and the install test's output; exits non-zero on any failure.

const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const { NAMES: HOOK_FNS, METHODS: HOOK_METHODS } = require('../__test__/helpers/hooks');

const HOOKS = [...HOOK_FNS, ...HOOK_METHODS];
const TARGET = 'x86_64-unknown-linux-gnu';

class PackFailure extends Error {}

function fail(msg) {
  throw new PackFailure(msg);
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', stdio: opts.capture ? 'pipe' : 'inherit', timeout: 15 * 60 * 1000, ...opts });
  if (r.status !== 0) {
    if (opts.capture) process.stderr.write(`${r.stdout || ''}${r.stderr || ''}`);
    fail(`${cmd} ${args.join(' ')} exited ${r.status}${r.error ? ` (${r.error.message})` : ''}`);
  }
  return r;
}

const isExecutable = (file) => {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
};

// PATH without any directory that holds cargo or rustc (~/.cargo/bin, /usr/local/cargo/bin…).
function pathWithoutRust() {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter((d) => d && !['cargo', 'rustc', 'rustup'].some((b) => isExecutable(path.join(d, b))));
  return dirs.join(path.delimiter);
}

// publint on both tarballs (errors and warnings fail; suggestions are printed), attw on the root
// one (any problem in any resolution mode fails). Both are devDependencies, run from
// node_modules/.bin: no network.
function lintTarballs(rootTgz, platTgz) {
  const bin = (name) => path.join(ROOT, 'node_modules', '.bin', name);
  for (const tgz of [rootTgz, platTgz]) {
    const r = run(bin('publint'), ['run', tgz, '--strict'], { capture: true });
    const out = `${r.stdout}${r.stderr}`;
    if (/^(Errors|Warnings):/m.test(out)) {
      process.stderr.write(out);
      fail(`publint reports errors or warnings for ${path.basename(tgz)}`);
    }
    console.log(`  publint ${path.basename(tgz)}: ${/^Suggestions:/m.test(out) ? 'suggestions only' : 'no issues'}`);
    if (/^Suggestions:/m.test(out)) process.stdout.write(`${out.trimEnd().replace(/^/gm, '    ')}\n`);
  }
  const r = spawnSync(bin('attw'), [rootTgz, '--format', 'ascii'], { cwd: ROOT, encoding: 'utf8', timeout: 5 * 60 * 1000 });
  if (r.status !== 0 || !/No problems found/.test(r.stdout)) {
    process.stderr.write(`${r.stdout}${r.stderr}`);
    fail(`@arethetypeswrong/cli reports problems in ${path.basename(rootTgz)} (exit ${r.status})`);
  }
  console.log(`  attw ${path.basename(rootTgz)}: no problems (node10, node16 CJS and ESM, bundler; every subpath)`);
}

const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;

async function main() {
  if (process.platform !== 'linux' || process.arch !== 'x64') fail(`this proof builds ${TARGET}; this machine is ${process.platform}-${process.arch}`);
  const glibc = process.report.getReport().header.glibcVersionRuntime;
  if (!glibc) fail('this proof needs a glibc Linux (linux-x64-gnu)');
  const { parseTriple, readNapiConfig } = require('@napi-rs/cli');
  const host = parseTriple(TARGET);

  console.log(`== 1. build the ${host.platformArchABI} binary (release)`);
  // On an x86_64 glibc host the host build *is* the x86_64-unknown-linux-gnu build (and reuses
  // npm test's compilation instead of a second one under target/<triple>/).
  run('npx', ['napi', 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts']);
  const binaryName = `bisman-cache.${host.platformArchABI}.node`;
  const binary = path.join(ROOT, binaryName);
  if (!fs.existsSync(binary)) fail(`${binaryName} was not built`);

  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-pack-'));
  let ok = false;
  try {
    console.log('\n== 2. pack the root package and the platform package');
    const rootPkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
    // What `napi pre-publish` writes: `${name}-${platformArchABI}`: version, for every target.
    const napiConfig = await readNapiConfig(path.join(ROOT, 'package.json'));
    const optionalDependencies = {};
    for (const t of napiConfig.targets) optionalDependencies[`${rootPkg.name}-${t.platformArchABI}`] = rootPkg.version;

    const raw = path.join(tmp, 'raw');
    fs.mkdirSync(raw);
    const packed = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', raw], { capture: true }).stdout)[0];
    const files = packed.files.map((f) => f.path);
    for (const must of ['package.json', 'index.js', 'index.mjs', 'index.d.ts', 'index.d.mts', 'binding.js', 'namespaces.js', 'services/sessionCache.js', 'lib/cache.js']) {
      if (!files.includes(must)) fail(`the root package lacks ${must}`);
    }
    const stray = files.filter((f) => f.endsWith('.node') || /^(src|__test__|examples|benchmark|npm|scripts|target)\//.test(f) || f.startsWith('Cargo'));
    if (stray.length) fail(`the root package must ship only JS, types and the loader; it holds ${stray.join(', ')}`);
    // Stage it as it is published: the tarball's own files plus the optionalDependencies.
    run('tar', ['-xzf', path.join(raw, packed.filename), '-C', raw]);
    // The test hooks (cargo feature `test-hooks`) are in neither the loader, its types, nor
    // the published binary.
    for (const f of ['binding.js', 'binding.d.ts']) {
      const text = fs.readFileSync(path.join(raw, 'package', f), 'utf8');
      const named = HOOKS.filter((h) => text.includes(h));
      if (named.length) fail(`the packed ${f} names the test hooks ${named.join(', ')}`);
    }
    const probeHooks = `const b = require(process.argv[1]); const h = [...${JSON.stringify(HOOK_FNS)}.filter((n) => n in b), ...${JSON.stringify(HOOK_METHODS)}.filter((n) => n in b.NativeCache.prototype)]; if (typeof b.rules !== 'function' || h.length) { console.error('exports ' + h.join(', ')); process.exit(1); }`;
    if (spawnSync(process.execPath, ['-e', probeHooks, binary], { stdio: 'inherit' }).status !== 0) fail(`${binaryName} exports test hooks (or lacks rules)`);
    console.log(`  test hooks: none in binding.js, binding.d.ts and ${binaryName} (${HOOKS.join(', ')})`);
    const stagedJson = path.join(raw, 'package', 'package.json');
    const staged = JSON.parse(fs.readFileSync(stagedJson, 'utf8'));
    staged.optionalDependencies = optionalDependencies;
    // `prepare` builds the addon from source in a clone; a registry install must never run it
    // (the release workflow deletes it the same way before `npm publish`).
    delete staged.scripts.prepare;
    fs.writeFileSync(stagedJson, `${JSON.stringify(staged, null, 2)}\n`);
    const rootTgz = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { capture: true, cwd: path.join(raw, 'package') }).stdout)[0];

    const platDir = path.join(tmp, 'platform');
    fs.mkdirSync(platDir);
    for (const f of fs.readdirSync(path.join(ROOT, 'npm', host.platformArchABI))) fs.copyFileSync(path.join(ROOT, 'npm', host.platformArchABI, f), path.join(platDir, f));
    fs.copyFileSync(binary, path.join(platDir, binaryName));
    const platTgz = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp], { capture: true, cwd: platDir }).stdout)[0];
    if (!platTgz.files.some((f) => f.path === binaryName)) fail(`the platform package lacks ${binaryName}`);

    console.log(`  ${rootTgz.filename}: ${rootTgz.size} bytes packed (${kib(rootTgz.size)}), ${rootTgz.unpackedSize} unpacked, ${rootTgz.entryCount} files`);
    console.log(`  ${platTgz.filename}: ${platTgz.size} bytes packed (${kib(platTgz.size)}), ${platTgz.unpackedSize} unpacked, ${platTgz.entryCount} files`);
    console.log(`  optionalDependencies of the root package: ${Object.keys(optionalDependencies).join(', ')}`);

    console.log('\n== 2b. lint the packed tarballs (publint, @arethetypeswrong/cli)');
    lintTarballs(path.join(tmp, rootTgz.filename), path.join(tmp, platTgz.filename));
    // What the release workflow runs, without publishing: npm's own checks of each package
    // (name, version, files, access). The registry is an unreachable loopback address, so
    // nothing leaves this machine.
    for (const dir of [path.join(raw, 'package'), platDir]) {
      const r = run('npm', ['publish', '--dry-run', '--ignore-scripts', '--access', 'public', '--registry', 'http://127.0.0.1:9/'], { capture: true, cwd: dir });
      const name = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).name;
      if (!/total files/.test(`${r.stdout}${r.stderr}`)) fail(`npm publish --dry-run of ${name} printed no package summary`);
      console.log(`  npm publish --dry-run ${name}: ok`);
    }

    console.log('\n== 3. install both into a new project, cargo and rustc off the PATH');
    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), `${JSON.stringify({ name: 'pack-consumer', version: '1.0.0', private: true }, null, 2)}\n`);
    const env = { ...process.env, PATH: pathWithoutRust(), CARGO: '/nonexistent/cargo', RUSTC: '/nonexistent/rustc' };
    delete env.npm_config_prefix;
    const probe = spawnSync('sh', ['-c', 'command -v cargo || command -v rustc'], { env, encoding: 'utf8' });
    if (probe.status === 0) fail(`cargo/rustc still on the PATH: ${probe.stdout.trim()}`);
    console.log('  cargo and rustc: not on the PATH of the install and of the test');
    run('npm', ['install', '--no-audit', '--no-fund', path.join(tmp, rootTgz.filename), path.join(tmp, platTgz.filename)], { cwd: app, env });
    const installed = path.join(app, 'node_modules', '@bisman', 'cache');
    if (fs.readdirSync(installed).some((f) => f.endsWith('.node'))) fail('a .node file landed in the root package');
    if (fs.existsSync(path.join(app, 'target')) || fs.existsSync(path.join(installed, 'target'))) fail('something was compiled during the install');

    console.log('\n== 4. require the package there and run calls on memory:// and redis-server');
    const { startRedis } = require('../__test__/helpers/redis');
    const check = path.join(app, 'check.js');
    fs.copyFileSync(path.join(__dirname, 'pack-consumer-check.js'), check);
    const server = await startRedis();
    let r;
    try {
      r = spawnSync(process.execPath, [check], { cwd: app, env: { ...env, CHECK_REDIS_URL: server.url, REDIS_URL: '' }, encoding: 'utf8', timeout: 120000 });
    } finally {
      await server.stop();
    }
    process.stdout.write(r.stdout);
    process.stderr.write(r.stderr);
    if (r.status !== 0) fail(`the install test exited ${r.status} ${r.signal || ''}`);
    ok = true;
    console.log(`\ntest:pack OK: root ${rootTgz.size} bytes, ${host.platformArchABI} ${platTgz.size} bytes (packed)`);
  } finally {
    if (!ok && process.env.KEEP_PACK_TMP) console.error(`kept ${tmp}`);
    else fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(`\ntest:pack FAILED: ${err instanceof PackFailure ? err.message : err.stack || err}`);
  process.exitCode = 1;
});
