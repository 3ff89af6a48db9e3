// Seal a file with the browser's own modules (beginFile, nextPart, endFile: the real
// chunking, last flags and part boundaries), for tests/test_vectors.py to open in
// Python. Usage: node tests/js/seal_file.mjs IN OUT  (prints the sealed entry as JSON)
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

import { beginFile, endFile, nextPart } from '../../static/src/protocol/filecrypt.js';

const require = createRequire(import.meta.url);
const sodium = require('libsodium-wrappers-sumo');
await sodium.ready;
const [input, output] = process.argv.slice(2);
const file = new Blob([readFileSync(input)]);
file.name = 'evidence.bin';
const info = await beginFile(sodium, { id: 'f', file, strip: false });
const parts = [];
for (let n = 0; n < Math.max(1, Math.ceil(info.cipherSize / info.partSize)); n += 1) {
  parts.push(Buffer.from((await nextPart(sodium, { id: 'f' })).value.data));
}
let refused = false;
try { await nextPart(sodium, { id: 'f' }); } catch (_) { refused = true; }
writeFileSync(output, Buffer.concat(parts));
const entry = await endFile(sodium, { id: 'f' });
process.stdout.write(JSON.stringify({ entry, info, partsSealed: parts.length, oneMoreRefused: refused }));
