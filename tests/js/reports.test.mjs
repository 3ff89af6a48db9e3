// A report sealed again for the case of a send whose answer was lost
// (static/src/protocol/reports.js, `again`): the same code and mailbox, so the
// portal can tell it is that case's report, and a report the organization opens
// naming that case's key. Real libsodium; the organization's key made here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { unb64 } from '../../static/src/protocol/encoding.js';
import { sealReport } from '../../static/src/protocol/reports.js';

const require = createRequire(import.meta.url);
const sodiumModule = require('libsodium-wrappers-sumo');
const vectors = JSON.parse(readFileSync(new URL('../vectors/protocol.json', import.meta.url), 'utf8'));

function opened(na, envelope, org) {
  const fileKey = na.crypto_box_seal_open(unb64(na, envelope.recipients[0].key), org.publicKey, org.privateKey);
  const body = unb64(na, envelope.body);
  const nonce = body.slice(0, na.crypto_secretbox_NONCEBYTES);
  const padded = na.crypto_secretbox_open_easy(body.slice(nonce.length), nonce, fileKey);
  return JSON.parse(na.to_string(na.unpad(padded, padded.length)));
}

test('a report sealed again for a lost send keeps its case and names its key', async () => {
  await sodiumModule.ready;
  const na = sodiumModule;
  const org = na.crypto_box_keypair();
  const organization = {
    encrypt: [{ kid: 'k1', pk: na.to_base64(org.publicKey, na.base64_variants.URLSAFE_NO_PADDING) }],
    code_salt: vectors.derive.code_salt,
    kdf: vectors.derive.kdf,
  };
  const what = { organization, form: 'report', version: 1, fields: { what_happened: 'at night' } };
  const first = await sealReport(na, what, () => {});
  const again = await sealReport(na, {
    ...what, fields: { what_happened: 'at dawn' }, again: { code: first.code, mailbox: first.request.mailbox },
  }, () => {});
  assert.equal(again.code, first.code);
  assert.deepEqual(again.request.mailbox, first.request.mailbox);
  assert.notEqual(again.request.envelope.body, first.request.envelope.body);
  const doc = opened(na, again.request.envelope, org);
  assert.equal(doc.fields.what_happened, 'at dawn');
  assert.equal(doc.reply_pk, first.request.mailbox.public_key);
  const other = await sealReport(na, what, () => {});
  assert.notEqual(other.code, first.code, 'without `again`, a new case');
});
