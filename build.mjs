// Build the browser code into static/dist/ with hashed names, and write
// static/dist/manifest.json (file name and Subresource Integrity per asset).
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import * as esbuild from 'esbuild';
import { bundleOptions } from './esbuild.options.mjs';

const outdir = 'static/dist';
rmSync(outdir, { recursive: true, force: true });

// logical name (used by the templates) -> [output base name, source]
const entries = {
  'portal.js': ['portal', 'static/src/portal.js'],
  'crypto-worker.js': ['crypto-worker', 'static/src/crypto-worker.js'],
  'portal.css': ['style', 'static/css/portal.css'],
};

const result = await esbuild.build({
  entryPoints: Object.fromEntries(Object.values(entries)),
  entryNames: '[name]-[hash]',
  outdir,
  ...bundleOptions,
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});

const manifest = {};
for (const [file, info] of Object.entries(result.metafile.outputs)) {
  if (!info.entryPoint) continue;
  const name = Object.keys(entries).find((k) => entries[k][1] === info.entryPoint);
  const bytes = readFileSync(file);
  const digest = createHash('sha384').update(bytes).digest('base64');
  // Pre-compressed copy, served to browsers that accept gzip (static files only).
  writeFileSync(`${file}.gz`, gzipSync(bytes, { level: 9 }));
  manifest[name] = { file: file.replace(/^static\//, ''), integrity: `sha384-${digest}` };
}
writeFileSync(`${outdir}/manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
console.log(Object.entries(manifest).map(([k, v]) => `${k} -> ${v.file}`).join('\n'));
