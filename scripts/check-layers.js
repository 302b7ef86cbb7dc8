#!/usr/bin/env node
'use strict';
// `npm run lint` (and CI): the Rust modules' dependency graph has no cycle, and no module uses
// one of a higher layer. A module is a file of src/ (src/a/b.rs → a::b, src/a/mod.rs → a); an
// edge is a path it names: `crate::x::y`, `super::x` (resolved), `self::x`. A parent's
// `mod child;` declaration is ownership, not use. The layers, lowest first, are LAYERS below;
// a module not listed is reported (every new file must take its place).
//
//   node scripts/check-layers.js           # check; exit 1 on a cycle or an upward use
//   node scripts/check-layers.js --graph   # print every edge as well

const fs = require('fs');
const path = require('path');

const SRC = path.join(__dirname, '..', 'src');

// Lowest first. A module may use modules of its own layer (without a cycle) and of lower ones.
const LAYERS = [
  ['error', 'rules'],
  ['names'],
  ['config', 'tls'],
  ['store'],
  ['near_cache', 'subscription'],
  ['bridge'],
  ['api', 'lib', 'test_hooks'],
];

function modules(dir, prefix, out) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) modules(full, [...prefix, entry.name], out);
    else if (entry.name.endsWith('.rs')) {
      const name = entry.name.slice(0, -3);
      const mod = name === 'mod' || (prefix.length === 0 && name === 'lib') ? prefix : [...prefix, name];
      out.set(mod.join('::') || 'lib', full);
    }
  }
  return out;
}

// The source without comments and string literals (so that a path in a doc comment or a
// message is not a use).
function code(text) {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/\/\/.*$/gm, '')
    .replace(/r#*"[\s\S]*?"#*/g, '""')
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/'(?:[^'\\]|\\.)'/g, "''");
}

// Every module path named in `src` from module `self` → the set of module names it uses.
function uses(self, src, known) {
  const found = new Set();
  const segs = self === 'lib' ? [] : self.split('::');
  // The module a path resolves to: the longest known prefix.
  const resolve = (parts) => {
    for (let n = parts.length; n > 0; n--) {
      const name = parts.slice(0, n).join('::');
      if (known.has(name)) return name;
    }
    return null;
  };
  const add = (parts) => {
    const m = resolve(parts);
    if (m && m !== self) found.add(m);
  };
  // Expand `use a::{b, c::{d, e}}` into paths.
  const expand = (text) => {
    const out = [];
    const walk = (prefix, body) => {
      let depth = 0;
      let start = 0;
      const items = [];
      for (let i = 0; i < body.length; i++) {
        if (body[i] === '{') depth++;
        else if (body[i] === '}') depth--;
        else if (body[i] === ',' && depth === 0) {
          items.push(body.slice(start, i));
          start = i + 1;
        }
      }
      items.push(body.slice(start));
      for (let item of items) {
        item = item.trim().replace(/\s+as\s+\w+$/, '');
        if (!item) continue;
        const brace = item.indexOf('{');
        if (brace >= 0) walk([...prefix, ...item.slice(0, brace).split('::').filter(Boolean)], item.slice(brace + 1, item.lastIndexOf('}')));
        else out.push([...prefix, ...item.split('::').filter(Boolean)]);
      }
    };
    walk([], text);
    return out;
  };
  const absolute = (parts) => {
    // relative to the module the path is written in; each `super` goes one up
    let base = [...segs];
    let i = 0;
    if (parts[0] === 'crate') return parts.slice(1);
    if (parts[0] === 'self') return [...base, ...parts.slice(1)];
    while (parts[i] === 'super') {
      base = base.slice(0, -1);
      i++;
    }
    if (i > 0) return [...base, ...parts.slice(i)];
    return null; // an external crate or a local name
  };
  for (const m of src.matchAll(/\buse\s+([^;]+);/g)) {
    for (const parts of expand(m[1].replace(/\s+/g, ' '))) {
      const abs = absolute(parts);
      if (abs) add(abs);
    }
  }
  for (const m of src.matchAll(/\b((?:crate|super|self)(?:::(?:super|[A-Za-z_]\w*))+)/g)) {
    const abs = absolute(m[1].split('::'));
    if (abs) add(abs);
  }
  return found;
}

function layerOf(mod) {
  const top = mod === 'lib' ? 'lib' : mod.split('::')[0];
  return LAYERS.findIndex((l) => l.includes(top));
}

// Tarjan's strongly connected components → the cycles (components of more than one module).
function cycles(graph) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const out = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) || []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1) out.push(comp.sort());
    }
  };
  for (const v of graph.keys()) if (!idx.has(v)) visit(v);
  return out;
}

function main() {
  const files = modules(SRC, [], new Map());
  const known = new Set(files.keys());
  const graph = new Map();
  for (const [mod, file] of files) graph.set(mod, uses(mod, code(fs.readFileSync(file, 'utf8')), known));
  const problems = [];
  for (const mod of known) if (layerOf(mod) < 0) problems.push(`${mod}: in no layer (add its top-level name to LAYERS in scripts/check-layers.js)`);
  for (const [mod, deps] of graph) {
    for (const dep of deps) {
      if (process.argv.includes('--graph')) console.log(`${mod} -> ${dep}`);
      const a = layerOf(mod);
      const b = layerOf(dep);
      if (a >= 0 && b > a) problems.push(`${mod} (layer ${a}) uses ${dep} (layer ${b}): a lower layer must not use a higher one`);
    }
  }
  for (const c of cycles(graph)) problems.push(`cycle: ${c.join(' ↔ ')}`);
  if (problems.length) {
    console.error(`check-layers: ${problems.length} problem(s)\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(`check-layers: ${known.size} modules, ${[...graph.values()].reduce((n, s) => n + s.size, 0)} uses, no cycle, every use points down`);
}

main();
