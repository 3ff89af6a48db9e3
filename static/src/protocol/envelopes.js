// Envelopes in the browser: the same format as portal/envelopes.py (DESIGN §6).
// A report is anonymous (crypto_box_seal); a message or answer is sealed by the
// case's own secret key (crypto_box), so only its reporter can add to a case.
import { b64, concat, unb64 } from './encoding.js';

// What each kind of case takes after it is made (FOLLOW_UP in envelopes.py): a
// reporter sends messages, a witness invited by the desk sends answers.
const FOLLOW_UP = { report: 'message', invitation: 'answer' };

export function followUpKind(caseKind) {
  return FOLLOW_UP[caseKind] || 'message';
}

const STEP = 1024;
const LINEAR_LIMIT = 16 * 1024;

export function bucketSize(length) {
  const need = length + 1;
  if (need <= LINEAR_LIMIT) return Math.ceil(need / STEP) * STEP;
  let size = LINEAR_LIMIT;
  while (size < need) size *= 2;
  return size;
}

// The case's id: from the reporter's public key, as portal/envelopes.py case_id().
export function caseId(sodium, publicKey) {
  const digest = sodium.crypto_hash_sha256(concat(sodium.from_string('portal-case-v1'), publicKey));
  return sodium.to_hex(digest).slice(0, 32);
}

function carryKey(sodium, fileKey, recipientPk, senderSk) {
  if (!senderSk) return sodium.crypto_box_seal(fileKey, recipientPk);
  const nonce = sodium.randombytes_buf(sodium.crypto_box_NONCEBYTES);
  return concat(nonce, sodium.crypto_box_easy(fileKey, nonce, recipientPk, senderSk));
}

// `senderSk`: null for a report, the case's secret key for a follow-up.
export function sealEnvelope(sodium, kind, plaintext, recipients, sealedBy, senderSk = null) {
  if ((kind === 'report') !== !senderSk) throw new Error('a report is anonymous; a follow-up is sealed by its case');
  const fileKey = sodium.crypto_secretbox_keygen();
  const padded = sodium.pad(plaintext, bucketSize(plaintext.length));
  const nonce = sodium.randombytes_buf(sodium.crypto_secretbox_NONCEBYTES);
  const body = concat(nonce, sodium.crypto_secretbox_easy(padded, nonce, fileKey));
  sodium.memzero(padded);
  const sealedKeys = recipients.map((r) => ({
    kid: r.kid,
    key: b64(sodium, carryKey(sodium, fileKey, unb64(sodium, r.pk), senderSk)),
  }));
  sodium.memzero(fileKey);
  return { v: 1, kind, sealed_by: sealedBy, recipients: sealedKeys, body: b64(sodium, body) };
}
