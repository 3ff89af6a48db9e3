// The JavaScript linter over the browser code, its vector tests and the bench's
// browser side (`make lint`). Pinned in package.json; no network, no plugins.
import js from '@eslint/js';

const browser = Object.fromEntries([
  'window', 'document', 'self', 'navigator', 'location', 'history', 'fetch', 'crypto',
  'performance', 'TextEncoder', 'TextDecoder', 'Worker', 'Blob', 'File', 'FileReader', 'FormData',
  'URL', 'Event', 'MutationObserver', 'requestAnimationFrame', 'sessionStorage',
  'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'postMessage', 'console',
  'Intl', 'HTMLElement', 'KeyboardEvent', 'AbortController', 'DOMException', 'btoa', 'atob',
  'require', 'globalThis', 'queueMicrotask', 'structuredClone', 'Response', 'Headers',
  'Element', 'Node', 'RadioNodeList', 'HTMLFormElement', 'URLSearchParams', 'addEventListener',
  'XMLHttpRequest',
].map((name) => [name, 'readonly']));
const node = Object.fromEntries(['process', 'Buffer', 'Blob', 'require', 'console', 'globalThis',
  'TextEncoder', 'TextDecoder', 'crypto', 'URL', 'setTimeout'].map((n) => [n, 'readonly']));

export default [
  { ignores: ['static/dist/**', 'node_modules/**', '.venv/**', 'tests/e2e/**'] },
  js.configs.recommended,
  {
    files: ['static/src/**/*.js', 'bench/browser/**/*.js'],
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: browser },
    rules: {
      'no-unused-vars': ['error', { argsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
      eqeqeq: 'error',
      'no-eval': 'error',
      'no-implied-eval': 'error',
      'no-new-func': 'error',
      'prefer-const': 'error',
      'no-var': 'error',
    },
  },
  {
    files: ['tests/js/**/*.mjs', '*.mjs', 'bench/browser/*.mjs'],
    languageOptions: { ecmaVersion: 2023, sourceType: 'module', globals: node },
    rules: { 'no-unused-vars': ['error', { caughtErrorsIgnorePattern: '^_' }] },
  },
];
