'use strict';
// The JS linter and formatter (`npm run lint` checks, `npm run format` fixes): ESLint's
// recommended rules and @stylistic's formatting rules on every JS file we write (the addon's
// generated binding.js aside). One tool rather than Biome or oxlint + Prettier: flat config in
// plain JS, the rule set the Node ecosystem already reads, formatting checked by the same run
// as the lint, and @stylistic can be set to the code's existing style (no max-len: long lines
// stay where they read best), so adopting it rewrote a few dozen lines, not thousands.
const js = require('@eslint/js');
const globals = require('globals');
const stylistic = require('@stylistic/eslint-plugin');

module.exports = [
  { ignores: ['binding.js', 'node_modules/**', 'target/**', 'npm/**', '.bench-tmp/**', 'benchmark/results/**'] },
  js.configs.recommended,
  // The formatter: @stylistic's rules in the same config (`npm run format` = eslint --fix).
  stylistic.configs.customize({ indent: 2, quotes: 'single', semi: true, commaDangle: 'always-multiline', braceStyle: '1tbs', arrowParens: true, quoteProps: 'as-needed' }),
  {
    rules: {
      // Lines are as long as they read best (no max-len); short one-statement lines are kept.
      '@stylistic/max-statements-per-line': 'off',
      '@stylistic/list-style': 'off',
      '@stylistic/operator-linebreak': ['error', 'before', { overrides: { '=': 'after' } }],
      '@stylistic/quotes': ['error', 'single', { avoidEscape: true, allowTemplateLiterals: 'always' }],
    },
  },
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
