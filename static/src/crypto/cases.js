// Opening a case in the browser (DESIGN §7, §8); the server-side twin is
// portal/casework.py. The server only ever sees `lookup` and ciphertext.
import { b64, unb64 } from './encoding.js';
import { deriveCode, generateCode } from './codes.js';
import { sealEnvelope, wrapKey } from './envelopes.js';
import { reportPlaintext } from './reports.js';

export function deriveForOpening(sodium, { code, organization }) {
  const { lookup, wrap } = deriveCode(sodium, code, organization);
  return { lookup: b64(sodium, lookup), wrap: b64(sodium, wrap) };
}

// Open, check the desk's signature and the mailbox id; text stays text.
function openReply(sodium, sealed, keyPair, verifyKey, mailbox) {
  const padded = sodium.crypto_box_seal_open(unb64(sodium, sealed), keyPair.publicKey,
    keyPair.privateKey);
  const signed = sodium.unpad(padded, padded.length);
  const doc = JSON.parse(sodium.to_string(sodium.crypto_sign_open(signed, verifyKey)));
  if (doc.v !== 1 || doc.mailbox !== mailbox || typeof doc.text !== 'string') {
    throw new Error('reply for another case');
  }
  return { date: doc.date, status: doc.status || null, text: doc.text, type: doc.type };
}

export function openCase(sodium, { wrap, record, organization }, progress) {
  const wrapped = unb64(sodium, record.wrapped_key);
  const privateKey = sodium.crypto_secretbox_open_easy(
    wrapped.subarray(24), wrapped.subarray(0, 24), unb64(sodium, wrap),
  );
  const keyPair = { privateKey, publicKey: sodium.crypto_scalarmult_base(privateKey) };
  const verifyKey = unb64(sodium, organization.verify.vk);
  const items = record.replies.map((r) => {
    try {
      return { seq: r.seq, day: r.day, item: openReply(sodium, r.sealed, keyPair, verifyKey, record.mailbox) };
    } catch (_) {
      return { seq: r.seq, day: r.day, item: null };
    }
  });
  progress(3);
  const code = generateCode(sodium);
  const next = deriveCode(sodium, code, organization);
  const mailbox = {
    index: b64(sodium, sodium.crypto_hash_sha256(next.lookup)),
    wrapped_key: b64(sodium, wrapKey(sodium, privateKey, next.wrap)),
  };
  sodium.memzero(privateKey);
  return { items, next: { code, mailbox } };
}

export function sealFollowUp(sodium, { organization, kind, text, attachments = [] }) {
  const plaintext = reportPlaintext(sodium, kind, 1, { [kind]: text }, null, attachments);
  return sealEnvelope(sodium, kind, plaintext, organization.encrypt, 'browser');
}
