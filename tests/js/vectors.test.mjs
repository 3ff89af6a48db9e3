// The protocol's known answers (tests/vectors/protocol.json), checked against the
// browser's own modules under static/src/protocol with real libsodium and the
// runtime's WebCrypto. The Python suite checks the same file (tests/test_vectors.py).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';

import { dammDigit, deriveCode, formatCode, normaliseCode } from '../../static/src/protocol/codes.js';
import { b64 } from '../../static/src/protocol/encoding.js';
import { bucketSize, caseId } from '../../static/src/protocol/envelopes.js';
import { chunkDigest, cipherSize, importFileKey, sealChunk } from '../../static/src/protocol/filecrypt.js';
import { openMailbox } from '../../static/src/protocol/mailbox.js';
import { solveWork } from '../../static/src/protocol/pow.js';
import { openCase } from '../../static/src/protocol/replies.js';
import { readAnswers } from '../../static/src/protocol/answers.js';

const require = createRequire(import.meta.url);
const sodiumModule = require('libsodium-wrappers-sumo');
const vectors = JSON.parse(readFileSync(new URL('../vectors/protocol.json', import.meta.url), 'utf8'));

async function sodium() {
  await sodiumModule.ready;
  return sodiumModule;
}

for (const [name, c] of Object.entries(vectors.codes.normalise)) {
  test(`codes normalise as the vectors say: ${name}`, () => {
    assert.equal(normaliseCode(c.input), c.digits);
  });
}

test('check digits and grouping match the vectors', () => {
  for (const c of vectors.codes.damm) assert.equal(dammDigit(c.prefix), c.digit);
  assert.equal(formatCode(vectors.codes.code), vectors.codes.formatted);
});

test('the code derivation matches the vectors', async () => {
  const na = await sodium();
  const v = vectors.derive;
  const { lookup, wrap } = await deriveCode(na, v.code, { code_salt: v.code_salt, kdf: v.kdf });
  assert.equal(b64(na, lookup), v.lookup);
  assert.equal(b64(na, wrap), v.wrap);
  assert.equal(b64(na, na.crypto_hash_sha256(lookup)), v.index);
});

test('sizes and case ids match the vectors', async () => {
  const na = await sodium();
  const publicKey = na.from_base64(vectors.case_id.public_key, na.base64_variants.URLSAFE_NO_PADDING);
  assert.equal(caseId(na, publicKey), vectors.case_id.id);
  for (const c of vectors.bucket_size) assert.equal(bucketSize(c.length), c.size);
  for (const c of vectors.cipher_size) assert.equal(cipherSize(c.plain), c.cipher);
});

test("a mailbox opens and only the desk's items in their signed order are trusted", async () => {
  const na = await sodium();
  const v = vectors.mailbox;
  const pair = openMailbox(na, v.wrapped_key, v.wrap);
  assert.equal(b64(na, pair.publicKey), v.reporter_public_key);
  const organization = { verify: { vk: v.verify_key }, code_salt: vectors.derive.code_salt, kdf: vectors.derive.kdf };
  const record = { wrapped_key: v.wrapped_key, replies: v.replies, sent: [] };
  const opened = await openCase(na, { wrap: v.wrap, record, organization }, () => {});
  assert.equal(opened.mailbox, v.mailbox);
  const expect = [...v.replies].sort((a, b) => a.seq - b.seq);
  assert.deepEqual(opened.items.map((i) => i.seq), expect.map((r) => r.seq));
  opened.items.forEach((shown, n) => {
    assert.equal(shown.item !== null, expect[n].expect === 'verified', `seq ${shown.seq}`);
    if (shown.item) {
      const told = v.items[String(shown.seq)];
      assert.deepEqual([shown.item.status, shown.item.text, shown.item.date], [told.status, told.text, told.date]);
    }
  });
});

test('the smallest proof of work matches the vectors', async () => {
  const v = vectors.pow;
  const { nonce } = await solveWork({ challenge: v.challenge, bits: v.bits, iterations: v.iterations });
  assert.equal(nonce, v.nonce);
});

test('a file stream seals to the same bytes and digest as the vectors say', async () => {
  const na = await sodium();
  const v = vectors.file;
  const bytes = (t) => na.from_base64(t, na.base64_variants.URLSAFE_NO_PADDING);
  const plain = bytes(v.plain);
  const key = await importFileKey(bytes(v.key));
  const prefix = bytes(v.prefix);
  const sealed = [];
  const hashes = [];
  const count = Math.ceil(plain.length / v.chunk);
  for (let n = 0; n < count; n += 1) {
    const piece = plain.subarray(n * v.chunk, (n + 1) * v.chunk);
    sealed.push(await sealChunk(key, prefix, n, n === count - 1, piece));
    hashes.push(new Uint8Array(await crypto.subtle.digest('SHA-256', piece)));
  }
  const blob = new Uint8Array(sealed.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of sealed) { blob.set(p, at); at += p.length; }
  assert.equal(b64(na, blob), v.blob);
  assert.equal(await chunkDigest(na, hashes), v.digest);
});

const answerVectors = JSON.parse(readFileSync(new URL('../vectors/answers.json', import.meta.url), 'utf8'));
for (const c of answerVectors.cases) {
  test(`a filled-in form answers as the vectors say: ${c.name}`, () => {
    const { answers, problems } = readAnswers(answerVectors.rules, c.form);
    assert.deepEqual({ answers: { ...answers }, problems: { ...problems } },
      { answers: c.answers, problems: c.problems });
  });
}
