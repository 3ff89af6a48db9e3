// Bundle the bench page and worker (CommonJS libsodium, as the portal does).
import * as esbuild from 'esbuild';

const outdir = process.argv[2];
await esbuild.build({
  entryPoints: { worker: 'bench/browser/worker.js', page: 'bench/browser/page.js' },
  outdir,
  bundle: true,
  minify: true,
  format: 'iife',
  platform: 'browser',
  target: ['es2020'],
  external: ['crypto', 'fs', 'path', 'node:fs', 'node:path', 'node:crypto', 'worker_threads'],
  logLevel: 'warning',
});
