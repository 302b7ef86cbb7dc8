'use strict';
// Runs a snippet of the ERP guide as written: in a fresh app folder whose `cache/index.js` is
// the one-line migration (`module.exports = require('@bisman/cache')`, here by path).

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFile } = require('child_process');

const ROOT = path.join(__dirname, '..', '..');

// → { code, stdout, stderr, ms }. The app may require `express` (the repo's dev dependency).
function runApp(body, env) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bisman-guide-'));
  fs.mkdirSync(path.join(dir, 'cache'));
  fs.writeFileSync(path.join(dir, 'cache', 'index.js'), `module.exports = require(${JSON.stringify(ROOT)});\n`);
  fs.writeFileSync(path.join(dir, 'app.js'), body);
  const started = Date.now();
  return new Promise((resolve) => {
    const options = { cwd: dir, env: { ...process.env, NODE_PATH: path.join(ROOT, 'node_modules'), ...env }, timeout: 20000 };
    execFile(process.execPath, ['app.js'], options, (err, stdout, stderr) => {
      fs.rmSync(dir, { recursive: true, force: true });
      resolve({ code: err ? err.code || 1 : 0, stdout, stderr, ms: Date.now() - started });
    });
  });
}

module.exports = { runApp };
