// Bench worker: times the portal's real browser crypto (static/src/crypto).
import { deriveCode } from '../../static/src/protocol/codes.js';
import { sealEnvelope } from '../../static/src/protocol/envelopes.js';
import { beginFile, endFile, nextPart } from '../../static/src/protocol/filecrypt.js';
import { solveWork } from '../../static/src/protocol/pow.js';

const sodium = require('libsodium-wrappers-sumo');

const POW_ROUNDS = 16;

async function timeFile(fileMiB) {
  const pieces = [];
  for (let i = 0; i < fileMiB * 16; i += 1) pieces.push(sodium.randombytes_buf(65536));
  const blob = new Blob(pieces);
  const started = performance.now();
  await beginFile(sodium, { id: 'bench', file: blob, strip: false });
  for (let done = false; !done;) done = (await nextPart(sodium, { id: 'bench' })).value.done;
  await endFile(sodium, { id: 'bench' });
  return performance.now() - started;
}

self.onmessage = async (event) => {
  const { organization, fileMiB, derivations } = event.data;
  const loadStart = performance.now();
  await sodium.ready;
  const out = { wasm: typeof WebAssembly !== 'undefined', load_ms: performance.now() - loadStart };
  const report = sodium.randombytes_buf(2000);
  let n = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 1500 || n < 10) {
    sealEnvelope(sodium, 'report', report, organization.encrypt, 'browser');
    n += 1;
  }
  out.seal_ms = (performance.now() - t0) / n;
  const t1 = performance.now();
  for (let i = 0; i < derivations; i += 1) await deriveCode(sodium, '391822074471038599621548', organization);
  out.derive_ms = (performance.now() - t1) / derivations;
  // The proof of work at the portal's default difficulty, over several challenges.
  const t2 = performance.now();
  for (let i = 0; i < POW_ROUNDS; i += 1) {
    const challenge = sodium.to_base64(sodium.randombytes_buf(16), sodium.base64_variants.URLSAFE_NO_PADDING);
    await solveWork({ challenge, bits: 8, iterations: 1000 });
  }
  out.pow_ms = (performance.now() - t2) / POW_ROUNDS;
  out.file_ms = await timeFile(fileMiB);
  out.file_mib = fileMiB;
  self.postMessage(out);
};
