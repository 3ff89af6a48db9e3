// Bundle the bench page and worker (CommonJS libsodium, as the portal does).
import * as esbuild from 'esbuild';
import { bundleOptions } from '../../esbuild.options.mjs';

const outdir = process.argv[2];
await esbuild.build({
  entryPoints: { worker: 'bench/browser/worker.js', page: 'bench/browser/page.js' },
  outdir,
  ...bundleOptions,
});
