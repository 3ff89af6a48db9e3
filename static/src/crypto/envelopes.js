// Envelopes in the browser: the same format as portal/envelopes.py (DESIGN §6).
import { b64, concat, unb64 } from './encoding.js';

const STEP = 1024;
const LINEAR_LIMIT = 16 * 1024;

export function bucketSize(length) {
  const need = length + 1;
  if (need <= LINEAR_LIMIT) return Math.ceil(need / STEP) * STEP;
  let size = LINEAR_LIMIT;
  while (size < need) size *= 2;
  return size;
}

export function sealEnvelope(sodium, kind, plaintext, recipients, sealedBy) {
  const fileKey = sodium.crypto_secretbox_keygen();
  const padded = sodium.pad(plaintext, bucketSize(plaintext.length));
  const nonce = sodium.randombytes_buf(sodium.crypto_secretbox_NONCEBYTES);
  const body = concat(nonce, sodium.crypto_secretbox_easy(padded, nonce, fileKey));
  sodium.memzero(padded);
  const sealedKeys = recipients.map((r) => ({
    kid: r.kid,
    key: b64(sodium, sodium.crypto_box_seal(fileKey, unb64(sodium, r.pk))),
  }));
  sodium.memzero(fileKey);
  return { v: 1, kind, sealed_by: sealedBy, recipients: sealedKeys, body: b64(sodium, body) };
}

// nonce ‖ secretbox(secretKey, nonce, wrap): the reporter key as the server keeps it.
export function wrapKey(sodium, secretKey, wrap) {
  const nonce = sodium.randombytes_buf(sodium.crypto_secretbox_NONCEBYTES);
  return concat(nonce, sodium.crypto_secretbox_easy(secretKey, nonce, wrap));
}
