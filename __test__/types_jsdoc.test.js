'use strict';
// Every public declaration of the package's hand-written .d.ts files carries a JSDoc comment
// (`/** … */`): each top-level declaration (interface, type, class, function, const, namespace)
// and each member of an interface, class, object type or namespace (property, method,
// constructor, accessor, call or index signature) as an editor shows it on hover. Re-exports
// (`export { x } from`) carry no comment of their own: the editor shows the original's.
//
// The files are parsed with the TypeScript compiler API. The project's `typescript` (7) exposes
// its parser only through a separate language-server process, so this uses the in-process API of
// the TypeScript 5 that @arethetypeswrong/core (a devDependency) bundles.

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const ts = require(require.resolve('typescript', { paths: [path.dirname(require.resolve('@arethetypeswrong/core/package.json'))] }));

const FILES = [
  'index.d.ts',
  'index.d.mts',
  'namespaces.d.ts',
  'prom-client.d.ts',
  'express-rate-limit.d.ts',
  'express-session.d.ts',
  ...fs
    .readdirSync(path.join(ROOT, 'services'))
    .filter((f) => f.endsWith('.d.ts'))
    .map((f) => `services/${f}`),
];

// A non-empty `/** … */` right before the node (the parser attaches it as `jsDoc`, except on a
// member written on the line of its type's `{`: there the leading comment itself is read).
function hasJsDoc(node, text) {
  if (Array.isArray(node.jsDoc) && node.jsDoc.some((d) => d.comment || (d.tags && d.tags.length))) return true;
  const ranges = [...(ts.getTrailingCommentRanges(text, node.pos) ?? []), ...(ts.getLeadingCommentRanges(text, node.pos) ?? [])];
  return ranges.some((r) => r.kind === ts.SyntaxKind.MultiLineCommentTrivia && /^\/\*\*\s*\S/.test(text.slice(r.pos, r.end)) && !/^\/\*\*\s*\*\/$/.test(text.slice(r.pos, r.end)));
}

const nameOf = (node, sf) => {
  if (ts.isVariableStatement(node)) return node.declarationList.declarations.map((d) => d.name.getText(sf)).join(', ');
  if (ts.isConstructorDeclaration(node) || ts.isConstructSignatureDeclaration(node)) return 'constructor';
  if (ts.isCallSignatureDeclaration(node)) return '(call)';
  if (ts.isIndexSignatureDeclaration(node)) return `[${node.parameters.map((p) => p.getText(sf)).join(', ')}]`;
  return node.name ? node.name.getText(sf) : ts.SyntaxKind[node.kind];
};

// The declarations of one file that have no JSDoc → ['file:line Outer.member', …].
function undocumented(file) {
  const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const missing = [];
  let count = 0;
  const report = (node, qualified) => {
    count++;
    if (!hasJsDoc(node, text)) missing.push(`${file}:${sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1} ${qualified}`);
  };
  const members = (list, outer) => {
    for (const m of list) {
      const name = `${outer}.${nameOf(m, sf)}`;
      report(m, name);
      typeMembers(m, name);
    }
  };
  // An inline object type in a property's or a constant's declared type (`foo: { a: number }`,
  // `Readonly<{ … }>`) documents its members too; function types and type aliases' own
  // expressions are not descended into.
  const typeMembers = (node, outer) => {
    const visit = (n) => {
      if (ts.isTypeLiteralNode(n)) members(n.members, outer);
      else if (!ts.isFunctionTypeNode(n) && !ts.isConditionalTypeNode(n)) ts.forEachChild(n, visit);
    };
    if ((ts.isPropertySignature(node) || ts.isPropertyDeclaration(node)) && node.type) visit(node.type);
    if (ts.isVariableStatement(node)) for (const d of node.declarationList.declarations) if (d.type) visit(d.type);
  };
  const statements = (list, outer) => {
    for (const s of list) {
      if (ts.isImportDeclaration(s) || ts.isImportEqualsDeclaration(s) || ts.isExportDeclaration(s) || ts.isExportAssignment(s)) continue;
      const name = outer ? `${outer}.${nameOf(s, sf)}` : nameOf(s, sf);
      if (ts.isModuleDeclaration(s) && s.name.getText(sf) === 'global') {
        if (s.body) statements(s.body.statements, outer);
        continue;
      }
      report(s, name);
      if (ts.isInterfaceDeclaration(s) || ts.isClassDeclaration(s)) members(s.members, name);
      else if (ts.isModuleDeclaration(s) && s.body && ts.isModuleBlock(s.body)) statements(s.body.statements, name);
      else typeMembers(s, name);
    }
  };
  statements(sf.statements, '');
  return { missing, count };
}

describe('JSDoc on every public declaration', () => {
  it('each declaration and member of the hand-written .d.ts files has a /** */ comment', () => {
    const missing = [];
    let count = 0;
    for (const f of FILES) {
      const r = undocumented(f);
      missing.push(...r.missing);
      count += r.count;
    }
    console.log(`# ${count} declarations in ${FILES.length} files, ${count - missing.length} documented`);
    assert.deepEqual(missing, [], `${missing.length} declarations without JSDoc`);
  });

  it('the check finds an undocumented declaration and member (it is not vacuous)', () => {
    const dir = fs.mkdtempSync(path.join(__dirname, '.tmp-jsdoc-'));
    try {
      const file = path.relative(ROOT, path.join(dir, 'probe.d.ts'));
      fs.writeFileSync(
        path.join(dir, 'probe.d.ts'),
        '/** Documented. */\nexport interface A {\n  /** Documented. */\n  a: number;\n  b: { /** Documented. */ c: string; d: string };\n}\n// a line comment is not JSDoc\nexport declare function f(): void;\nexport { A as B };\n',
      );
      assert.deepEqual(undocumented(file).missing, [`${file}:5 A.b`, `${file}:5 A.b.d`, `${file}:8 f`]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
