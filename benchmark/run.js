'use strict';
// `npm run bench:micro`: runs every single-service benchmark file in benchmark/ (not this one, not lib/ or
// baseline/, nor suite.js, which is `npm run bench`) one after the other, each in its own Node process so none disturbs the next.
// Arguments are passed on to each benchmark (e.g. `npm run bench -- --quick`).
// Exits non-zero if any benchmark fails; each is bounded in time.

const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');

const PER_BENCHMARK_LIMIT_MS = 30 * 60 * 1000;

const files = fs
  .readdirSync(__dirname)
  .filter((f) => f.endsWith('.js') && f !== path.basename(__filename) && f !== 'suite.js')
  .sort();

function runOne(file, args) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, [path.join(__dirname, file), ...args], { stdio: 'inherit' });
    const timer = setTimeout(() => {
      console.error(`bench: ${file} still running after ${PER_BENCHMARK_LIMIT_MS / 1000} s; stopping it`);
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    }, PER_BENCHMARK_LIMIT_MS);
    // Ctrl-C reaches the child too (same process group); wait for it to clean up.
    const ignore = () => {};
    process.on('SIGINT', ignore);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      process.removeListener('SIGINT', ignore);
      resolve({ file, code, signal, seconds: Math.round((Date.now() - started) / 100) / 10 });
    });
  });
}

async function main() {
  const args = process.argv.slice(2);
  const results = [];
  for (const file of files) {
    console.log(`\n=== ${file} ===`);
    results.push(await runOne(file, args));
  }
  console.log('\n=== summary ===');
  for (const r of results) {
    const status = r.code === 0 ? 'ok' : `FAILED (${r.signal || `exit ${r.code}`})`;
    console.log(`${r.file.padEnd(20)} ${status}  ${r.seconds} s`);
  }
  if (results.some((r) => r.code !== 0)) process.exitCode = 1;
}

main();
