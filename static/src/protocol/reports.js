// Sealing a new report in the browser; the server-side twin is portal/protocol/reports.py.
import { b64, unb64 } from './encoding.js';
import { generateCode } from './codes.js';
import { bucketSize, sealEnvelope } from './envelopes.js';
import { newMailboxKey } from './mailbox.js';

// The same document as portal/protocol/reports.py plaintext(): a report names its
// reporter's public key, whose case id is the case's.
export function reportPlaintext(sodium, kind, form, version, fields, { replyPk = null, attachments = [], lang = '', formDigest = '' } = {}) {
  const doc = { kind, form, form_version: version, fields, attachments };
  if (lang) doc.lang = lang;
  if (formDigest) doc.form_digest = formDigest;
  if (kind === 'report') doc.reply_pk = b64(sodium, replyPk);
  return sodium.from_string(JSON.stringify(doc));
}

// The reporter's own copy of what they wrote, when they ask for one: sealed to
// their case's key, the twin of portal/protocol/reports.py seal_copy() (files are not copied).
export function sealCopy(sodium, publicKey, kind, fields) {
  const doc = sodium.from_string(JSON.stringify({ kind, fields }));
  const padded = sodium.pad(doc, bucketSize(doc.length));
  return b64(sodium, sodium.crypto_box_seal(padded, publicKey));
}

// The fields of a copy, or null if it does not open as one.
export function openCopy(sodium, sealed, keyPair) {
  try {
    const padded = sodium.crypto_box_seal_open(unb64(sodium, sealed), keyPair.publicKey,
      keyPair.privateKey);
    const doc = JSON.parse(sodium.to_string(sodium.unpad(padded, padded.length)));
    return doc && typeof doc.fields === 'object' ? doc.fields : null;
  } catch (_) {
    return null;
  }
}

// A new case's code and mailbox; the reporter's secret key is wrapped under the
// code and forgotten.
async function newCase(sodium, organization) {
  const reporter = sodium.crypto_box_keypair();
  const code = generateCode(sodium);
  const mailbox = {
    ...(await newMailboxKey(sodium, reporter.privateKey, code, organization)),
    public_key: b64(sodium, reporter.publicKey),
  };
  sodium.memzero(reporter.privateKey);
  return { code, mailbox };
}

// Everything that leaves the browser is in `request`; the code stays here. Given
// `again` (the code and mailbox of a send whose answer never came), the report is
// sealed for that same case, so the portal can tell it arrived already.
export async function sealReport(sodium, {
  organization, form, version, formDigest = '', fields, attachments = [], copyFields = null, lang = '',
  again = null,
}, progress) {
  progress(2);
  const { code, mailbox } = again || await newCase(sodium, organization);
  const replyPk = unb64(sodium, mailbox.public_key);
  progress(3);
  const copy = copyFields ? sealCopy(sodium, replyPk, 'report', copyFields) : null;
  const plaintext = reportPlaintext(sodium, 'report', form, version, fields,
    { replyPk, attachments, lang, formDigest });
  const envelope = sealEnvelope(sodium, 'report', plaintext, organization.encrypt, 'browser');
  sodium.memzero(plaintext);
  return { request: { envelope, mailbox, ...(copy ? { copy } : {}) }, code };
}
