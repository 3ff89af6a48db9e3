// After the report: opening a case, reading the desk's replies in the order it
// signed them, and sealing follow-ups (DESIGN §7, §8). The twin of
// portal/protocol/replies.py (replies); the no-JS server path is
// portal/server/casework.py. The server only ever sees `lookup` and ciphertext.
import { b64, unb64 } from './encoding.js';
import { deriveCode, generateCode } from './codes.js';
import { caseId, sealEnvelope } from './envelopes.js';
import { newMailboxKey, openMailbox } from './mailbox.js';
import { openCopy, reportPlaintext, sealCopy } from './reports.js';

// The open case's secret key stays in this worker (never on the page, never
// sent): it seals the reporter's follow-ups, which is what binds them to the case.
let openKey = null;

export async function deriveForOpening(sodium, { code, organization }) {
  const { lookup, wrap } = await deriveCode(sodium, code, organization);
  return { lookup: b64(sodium, lookup), wrap: b64(sodium, wrap) };
}

// Open, check the desk's signature and that the item is for this very case
// (the id comes from our own key, not from the server); text stays text.
function openReply(sodium, sealed, keyPair, verifyKey, mailbox) {
  const padded = sodium.crypto_box_seal_open(unb64(sodium, sealed), keyPair.publicKey,
    keyPair.privateKey);
  const signed = sodium.unpad(padded, padded.length);
  const doc = JSON.parse(sodium.to_string(sodium.crypto_sign_open(signed, verifyKey)));
  if (doc.v !== 1 || doc.mailbox !== mailbox || typeof doc.text !== 'string'
      || !Number.isInteger(doc.seq)) {
    throw new Error('reply for another case');
  }
  return { seq: doc.seq, date: doc.date, status: doc.status || null, text: doc.text, type: doc.type };
}

// The desk's items in the order the desk signed them. One whose signed number
// is not the one the server filed it under, or repeats one (an old status
// replayed as new), is shown as unverifiable: the server cannot reorder them.
function verifiedInOrder(sodium, replies, keyPair, verifyKey, mailbox) {
  const taken = new Set();
  const items = replies.map((r) => {
    let item;
    try {
      item = openReply(sodium, r.sealed, keyPair, verifyKey, mailbox);
    } catch (_) {
      item = null;
    }
    if (item && (item.seq !== r.seq || taken.has(item.seq))) item = null;
    if (item) taken.add(item.seq);
    return { seq: r.seq, day: r.day, item };
  });
  return items.sort((a, b) => a.seq - b.seq);
}

export async function openCase(sodium, { wrap, record, organization }, progress) {
  const keyPair = openMailbox(sodium, record.wrapped_key, wrap);
  const { privateKey } = keyPair;
  const verifyKey = unb64(sodium, organization.verify.vk);
  const mailbox = caseId(sodium, keyPair.publicKey);
  const items = verifiedInOrder(sodium, record.replies, keyPair, verifyKey, mailbox);
  const copies = record.sent.map((s) => (s.copy ? openCopy(sodium, s.copy, keyPair) : null));
  progress(3);
  const code = generateCode(sodium);
  const nextMailbox = await newMailboxKey(sodium, privateKey, code, organization);
  if (openKey) sodium.memzero(openKey);
  openKey = privateKey;
  return { items, copies, mailbox, next: { code, mailbox: nextMailbox } };
}

export function sealFollowUp(sodium, {
  organization, kind, text, attachments = [], keepCopy = false, lang = '',
}) {
  if (!openKey) throw new Error('no case is open');
  const fields = { [kind]: text };
  const plaintext = reportPlaintext(sodium, kind, kind, 1, fields, { attachments, lang });
  const envelope = sealEnvelope(sodium, kind, plaintext, organization.encrypt, 'browser', openKey);
  const copy = keepCopy ? sealCopy(sodium, sodium.crypto_scalarmult_base(openKey), kind, fields) : null;
  return { envelope, copy };
}

// Leaving (or idling out of) the case: forget its key.
export function closeCase(sodium) {
  if (openKey) sodium.memzero(openKey);
  openKey = null;
  return true;
}
