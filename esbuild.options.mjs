// Bundling options shared by the portal's build and the benchmark's.
// libsodium's CommonJS build mentions Node modules only on its Node path.
export const bundleOptions = {
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  external: ['crypto', 'fs', 'path', 'node:fs', 'node:path', 'node:crypto', 'worker_threads'],
  logLevel: 'warning',
};
