'use strict';
// The JS linter (`npm run lint`): ESLint's recommended rules on every JS file we write (the
// addon's generated binding.js aside). ESLint rather than Biome or oxlint: flat config in plain
// JS, the rule set the Node ecosystem already reads, and it runs on the Node CI already has.
const js = require('@eslint/js');
const globals = require('globals');

module.exports = [
  { ignores: ['binding.js', 'node_modules/**', 'target/**', 'npm/**', '.bench-tmp/**', 'benchmark/results/**'] },
  js.configs.recommended,
  {
    files: ['**/*.js'],
    languageOptions: { ecmaVersion: 2024, sourceType: 'commonjs', globals: { ...globals.node } },
    rules: {
      'no-unused-vars': ['error', { args: 'none', caughtErrors: 'none', ignoreRestSiblings: true }],
      'no-empty': ['error', { allowEmptyCatch: true }],
    },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { ecmaVersion: 2024, sourceType: 'module', globals: { ...globals.node } },
  },
];
