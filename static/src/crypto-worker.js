// The crypto worker: libsodium and WebCrypto run here so the page stays
// responsive (and can show progress) at every Tor Browser level.
import { closeCase, deriveForOpening, openCase, sealFollowUp } from './protocol/replies.js';
import { beginFile, cancelFile, endFile, nextPart } from './protocol/filecrypt.js';
import { solveWork } from './protocol/pow.js';
import { sealReport } from './protocol/reports.js';

// require(), not import: it resolves libsodium's CommonJS build, which keeps the
// pure-JavaScript fallback used when WebAssembly is off (the ESM build lacks it).
const sodium = require('libsodium-wrappers-sumo');

const OPERATIONS = {
  'seal-report': sealReport,
  'derive-code': deriveForOpening,
  'open-case': openCase,
  'seal-follow-up': sealFollowUp,
  'close-case': closeCase,
  'solve-work': (_sodium, offer) => solveWork(offer),
  'file-begin': beginFile,
  'file-part': nextPart,
  'file-end': endFile,
  'file-cancel': cancelFile,
};

self.addEventListener('message', async (event) => {
  const { id, op, args } = event.data;
  const progress = (step) => self.postMessage({ id, type: 'progress', step });
  try {
    progress(1);
    await sodium.ready;
    const operation = OPERATIONS[op];
    if (!operation) throw new Error(`unknown operation ${op}`);
    const result = await operation(sodium, args, progress);
    // Operations that hand back large buffers say so, and they move instead of copying.
    if (result && result.transfer) {
      self.postMessage({ id, type: 'done', result: result.value }, result.transfer);
    } else {
      self.postMessage({ id, type: 'done', result });
    }
  } catch (error) {
    self.postMessage({ id, type: 'error', message: String((error && error.message) || error) });
  }
});
