'use strict';
// The TypeScript consumer (__test__/ts-consumer) compiles with `tsc --strict --noEmit`: every
// export, option and result of index.d.ts, the ESM default + named imports, the drop-in
// subpaths, and the middleware as Express RequestHandlers. Its `@ts-expect-error` lines make
// the check two-sided: if a type decayed to `any`, the unused directive fails the build.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const TSC = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
const PROJECT = path.join(__dirname, 'ts-consumer', 'tsconfig.json');

function tsc(args) {
  return spawnSync(process.execPath, [TSC, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 120000 });
}

describe('TypeScript consumer', () => {
  it('compiles with tsc --strict --noEmit', () => {
    const r = tsc(['-p', PROJECT, '--strict', '--noEmit']);
    assert.equal(r.status, 0, `tsc failed:\n${r.stdout}${r.stderr}`);
  });

  it('fails on a misuse of the types (the check is not vacuous)', () => {
    const dir = fs.mkdtempSync(path.join(__dirname, 'ts-consumer', '.tmp-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'bad.ts'),
        "import { rateLimiter, distributedLock } from '@bisman/cache';\n"
        + 'const n: number = rateLimiter.authLimiter;\n'
        + "distributedLock.acquire('payment', { id: 1 });\n"
        + 'void n;\n',
      );
      const cfg = JSON.parse(fs.readFileSync(PROJECT, 'utf8'));
      cfg.files = ['bad.ts'];
      fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify(cfg));
      const r = tsc(['-p', path.join(dir, 'tsconfig.json')]);
      assert.notEqual(r.status, 0, 'tsc accepted a misuse');
      assert.match(r.stdout, /bad\.ts\(2,7\): error TS2322/);
      assert.match(r.stdout, /bad\.ts\(3,\d+\): error TS2345/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('types every runtime export of the package (and nothing that is not exported)', () => {
    const cache = require('..');
    const dts = fs.readFileSync(path.join(ROOT, 'index.d.ts'), 'utf8');
    const declared = new Set([...dts.matchAll(/^export declare (?:const|function|class) (\w+)/gm)].map((m) => m[1]));
    assert.deepEqual([...Object.keys(cache)].sort(), [...declared].sort());
  });
});
