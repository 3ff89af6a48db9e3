// A case's mailbox key, what the server keeps of a code: the twin of
// portal/protocol/mailbox.py (DESIGN §7). The server keeps SHA-256(lookup) as the
// index and the reporter's secret key wrapped under `wrap`; never `wrap` itself.
import { b64, concat, unb64 } from './encoding.js';
import { deriveCode } from './codes.js';

// nonce ‖ secretbox(secretKey, nonce, wrap): the reporter key as the server keeps it.
export function wrapKey(sodium, secretKey, wrap) {
  const nonce = sodium.randombytes_buf(sodium.crypto_secretbox_NONCEBYTES);
  return concat(nonce, sodium.crypto_secretbox_easy(secretKey, nonce, wrap));
}

export function unwrapKey(sodium, wrappedKey, wrap) {
  const nonce = wrappedKey.subarray(0, sodium.crypto_secretbox_NONCEBYTES);
  return sodium.crypto_secretbox_open_easy(
    wrappedKey.subarray(sodium.crypto_secretbox_NONCEBYTES), nonce, wrap,
  );
}

// Derive the code and wrap the reporter's secret key under it (new_mailbox_key).
export async function newMailboxKey(sodium, secretKey, code, organization) {
  const { lookup, wrap } = await deriveCode(sodium, code, organization);
  const key = {
    index: b64(sodium, sodium.crypto_hash_sha256(lookup)),
    wrapped_key: b64(sodium, wrapKey(sodium, secretKey, wrap)),
  };
  sodium.memzero(wrap);
  return key;
}

// The reporter's key pair from the server's record and the code's `wrap` (base64url).
export function openMailbox(sodium, wrappedKey, wrap) {
  const privateKey = unwrapKey(sodium, unb64(sodium, wrappedKey), unb64(sodium, wrap));
  return { privateKey, publicKey: sodium.crypto_scalarmult_base(privateKey) };
}
