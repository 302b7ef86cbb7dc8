'use strict';
// The middleware types with and without `@types/express`. With it (ts-consumer), the middleware
// are Express RequestHandlers and the callbacks receive Express's Request and Response. Without
// it, a project that has only @types/node still compiles with `tsc --strict` and skipLibCheck off:
// the package's declarations fall back to node:http's request and response. The project is
// built in the OS temporary directory, holding the package's declaration files (as published)
// and @types/node, and no express anywhere above it.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const { spawnSync } = require('child_process');
const fs = require('fs');
const os = require('os');
const path = require('path');

const ROOT = path.join(__dirname, '..');
// The project's TypeScript (7) and the TypeScript 5 that @arethetypeswrong/core (a devDependency)
// bundles: the fallback must work on both compilers.
const TSC = path.join(path.dirname(require.resolve('typescript/package.json')), 'bin', 'tsc');
const TSC5 = path.join(path.dirname(require.resolve('typescript/package.json', { paths: [path.dirname(require.resolve('@arethetypeswrong/core/package.json'))] })), 'bin', 'tsc');
const COMPILERS = { [`typescript ${require('typescript/package.json').version}`]: TSC, [`typescript ${require(path.join(TSC5, '..', '..', 'package.json')).version}`]: TSC5 };
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

// The published declaration files: every .d.ts/.d.mts that package.json `files` names.
function declarationFiles() {
  const out = [];
  for (const entry of PKG.files) {
    const abs = path.join(ROOT, entry);
    const names = fs.statSync(abs).isDirectory() ? fs.readdirSync(abs).map((f) => path.join(entry, f)) : [entry];
    out.push(...names.filter((f) => /\.d\.m?ts$/.test(f)));
  }
  return out;
}

const CONSUMER = `import * as http from 'node:http';
import { rateLimiter, type RateLimitMiddleware, type HttpRequest } from '@bisman/cache';

const limiter: RateLimitMiddleware = rateLimiter.createLimiter({
  max: (req) => (req.headers['x-plan'] === 'pro' ? 100 : 10),
  keyGenerator: (req) => req.ip ?? req.socket.remoteAddress ?? 'unknown',
  skip: (req, res) => req.url === '/health' || res.headersSent,
  handler: (req, res, next, options) => {
    res.statusCode = options.statusCode;
    res.end(String(req.rateLimit?.remaining));
    void next;
  },
  requestWasSuccessful: (_req, res) => res.statusCode < 400,
});
// @ts-expect-error without @types/express the request is node:http's, not any
rateLimiter.createLimiter({ keyGenerator: (req) => req.notAField });

http
  .createServer((req: HttpRequest, res) => {
    const answer: void = rateLimiter.authLimiter(req, res, (err?: unknown) => {
      res.end(err ? 'error' : 'ok');
    });
    void answer;
    limiter(req, res, () => res.end());
  })
  .listen(0);
`;

function tsc(dir, bin) {
  return spawnSync(process.execPath, [bin, '-p', path.join(dir, 'tsconfig.json')], { cwd: dir, encoding: 'utf8', timeout: 180000 });
}

function project(files) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-types-noexpress-'));
  const pkgDir = path.join(dir, 'node_modules', '@bisman', 'cache');
  fs.mkdirSync(path.join(pkgDir, 'services'), { recursive: true });
  fs.writeFileSync(path.join(pkgDir, 'package.json'), JSON.stringify({ name: PKG.name, version: PKG.version, types: PKG.types, exports: PKG.exports }));
  for (const f of declarationFiles()) fs.copyFileSync(path.join(ROOT, f), path.join(pkgDir, f));
  fs.mkdirSync(path.join(dir, 'node_modules', '@types'), { recursive: true });
  fs.symlinkSync(path.join(ROOT, 'node_modules', '@types', 'node'), path.join(dir, 'node_modules', '@types', 'node'), 'dir');
  fs.symlinkSync(path.join(ROOT, 'node_modules', 'undici-types'), path.join(dir, 'node_modules', 'undici-types'), 'dir');
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'consumer', private: true }));
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  const compilerOptions = { strict: true, noEmit: true, module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', lib: ['es2022'], types: ['node'], skipLibCheck: false };
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: Object.keys(files) }));
  return dir;
}

describe('middleware types without @types/express', () => {
  it('a project with only @types/node compiles with --strict, the callbacks typed as node:http', () => {
    const dir = project({ 'server.ts': CONSUMER, 'esm.mts': "import cache, { rateLimiter } from '@bisman/cache';\nconst same: typeof rateLimiter = cache.rateLimiter;\nvoid same;\n" });
    try {
      assert.equal(fs.existsSync(path.join(dir, 'node_modules', 'express')), false);
      for (const [name, bin] of Object.entries(COMPILERS)) {
        const r = tsc(dir, bin);
        assert.equal(r.status, 0, `${name} failed:\n${r.stdout}${r.stderr}`);
      }
      console.log(`# ${declarationFiles().length} declaration files compiled without @types/express by ${Object.keys(COMPILERS).join(' and ')}`);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a misuse there is still an error (the fallback is not any)', () => {
    const bad = "import { rateLimiter } from '@bisman/cache';\nrateLimiter.createLimiter({ skip: (req) => req.ip.toUpperCase() === 'X' });\nrateLimiter.createLimiter({ handler: (_req, res) => res.status(429) });\n";
    const dir = project({ 'bad.ts': bad });
    try {
      for (const [name, bin] of Object.entries(COMPILERS)) {
        const r = tsc(dir, bin);
        assert.notEqual(r.status, 0, `${name} accepted a misuse`);
        assert.match(r.stdout, /bad\.ts\(2,\d+\): error TS18048: 'req\.ip' is possibly 'undefined'/, name);
        assert.match(r.stdout, /bad\.ts\(3,\d+\): error TS2339: Property 'status' does not exist on type 'ServerResponse/, name);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
