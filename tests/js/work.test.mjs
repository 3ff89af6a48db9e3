// The page's form-token renewal (static/src/page/work.js), against a fake portal
// that refuses a stale token as the real one does (400, reason "csrf") and
// answers /api/form-token with a new token, saying whether it made a new session.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { ApiError, postJson } from '../../static/src/page/http.js';
import { SessionChanged, Work } from '../../static/src/page/work.js';

// `uploads` marks the uploads of the session a renewal finds (null: it has none).
function portal({ holds, newSession = false, uploads = null }) {
  const seen = { sent: [], renewals: 0, marks: [] };
  let current = holds;
  const refused = () => new ApiError(400, 'csrf', 'reload');
  return {
    seen,
    // One request of the page: refused unless it carries the token the portal holds.
    send: (what, delay = 0) => async (token) => {
      seen.sent.push([what, token]);
      const held = current; // what the portal holds when the request arrives
      await new Promise((resolve) => { setTimeout(resolve, delay); });
      if (token !== held) throw refused();
      return { ok: what };
    },
    renew: async (mark) => {
      seen.renewals += 1;
      seen.marks.push(mark);
      await new Promise((resolve) => { setTimeout(resolve, 5); });
      current = `token-${seen.renewals}`;
      return { token: current, newSession, otherUploads: Boolean(mark) && mark !== uploads };
    },
  };
}

test('a stale token is renewed once and the request sent again with the new one', async () => {
  const p = portal({ holds: 'fresh' });
  const work = new Work(null, '/api/pow', 'stale', null, p.renew);
  assert.deepEqual(await work.withToken(p.send('report')), { ok: 'report' });
  assert.deepEqual(p.seen.sent, [['report', 'stale'], ['report', 'token-1']]);
  assert.equal(work.token, 'token-1');
  assert.equal(work.session, 0);
});

test('requests refused at the same moment share one renewal', async () => {
  const p = portal({ holds: 'fresh' });
  const work = new Work(null, '/api/pow', 'stale', null, p.renew);
  const answers = await Promise.all([
    work.withToken(p.send('report')),
    work.withToken(p.send('part 1'), 0),
    work.withToken(p.send('status'), 0),
  ]);
  assert.deepEqual(answers.map((a) => a.ok), ['report', 'part 1', 'status']);
  assert.equal(p.seen.renewals, 1);
});

test('a refusal that arrives after another request renewed takes that token', async () => {
  const p = portal({ holds: 'fresh' });
  const work = new Work(null, '/api/pow', 'stale', null, p.renew);
  // The part was sent with the stale token too, but its answer comes late.
  const [report, part] = await Promise.all([
    work.withToken(p.send('report')),
    work.withToken(p.send('part 2', 40), 0),
  ]);
  assert.deepEqual([report.ok, part.ok], ['report', 'part 2']);
  assert.equal(p.seen.renewals, 1);
  assert.deepEqual(p.seen.sent.filter(([what]) => what === 'part 2').map(([, t]) => t), ['stale', 'token-1']);
});

test('a request bound to an ended session is not sent again in the new one', async () => {
  const p = portal({ holds: 'fresh', newSession: true });
  const work = new Work(null, '/api/pow', 'stale', null, p.renew);
  await assert.rejects(work.withToken(p.send('report with files'), 0), SessionChanged);
  assert.deepEqual(p.seen.sent, [['report with files', 'stale']]);
  assert.equal(work.session, 1);
  // one that names nothing of the old session goes out in the new one
  assert.deepEqual(await work.withToken(p.send('report')), { ok: 'report' });
});

test('a second refusal is shown, and without a way to renew the first is', async () => {
  const p = portal({ holds: 'never sent' });
  const work = new Work(null, '/api/pow', 'stale', null, async () => ({ token: 'also stale' }));
  await assert.rejects(work.withToken(p.send('report')), (e) => e.reason === 'csrf');
  assert.equal(p.seen.sent.length, 2);
  const plain = new Work(null, '/api/pow', 'stale');
  await assert.rejects(plain.withToken(p.send('message')), (e) => e.reason === 'csrf');
  assert.equal(p.seen.sent.length, 3);
});

test('other refusals are not answered with a renewal', async () => {
  const work = new Work(null, '/api/pow', 't', null, async () => assert.fail('renewed'));
  const gone = async () => { throw new ApiError(404, 'no_upload', 'add it again'); };
  await assert.rejects(work.withToken(gone, 0), (e) => e.reason === 'no_upload');
  await assert.rejects(work.withToken(async () => { throw new TypeError('offline'); }), TypeError);
});

test('a report refused for an ended session keeps its proof for the next request', async () => {
  const p = portal({ holds: 'fresh', newSession: true });
  let solved = 0;
  const worker = { run: async () => { solved += 1; return { nonce: solved }; } };
  const work = new Work(worker, '/api/pow', 'stale', { challenge: 'c', bits: 0, iterations: 1 }, p.renew);
  const proofs = [];
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    const { pow } = JSON.parse(init.body);
    proofs.push(pow.nonce);
    const ok = init.headers['X-CSRFToken'] === 'token-1';
    const answer = ok ? { ok: true } : { error: 'csrf', message: 'reload' };
    return new globalThis.Response(JSON.stringify(answer), { status: ok ? 201 : 400 });
  };
  try {
    await assert.rejects(work.post('/api/reports', { named: 'old upload' }, 0), SessionChanged);
    assert.deepEqual(await work.post('/api/uploads', { size: 1 }), { ok: true });
  } finally {
    globalThis.fetch = realFetch;
  }
  assert.deepEqual(proofs, [1, 1]); // the refused report's proof, then the same one again
});

test('what a request made belongs to the session it was sent in, whatever renewal came since', async () => {
  // An upload's start is sent and accepted in session 0; before its answer
  // arrives, the session ends and another request's renewal opens session 1.
  let solved = 0;
  const worker = { run: async () => { solved += 1; return { nonce: solved }; } };
  let renewed = null;
  const renew = () => new Promise((resolve) => { renewed = resolve; });
  const work = new Work(worker, '/api/pow', 'fresh', { challenge: 'c', bits: 0, iterations: 1 }, renew);
  const realFetch = globalThis.fetch;
  let answerStart = null;
  globalThis.fetch = async (url, init) => {
    if (url === '/api/uploads') {
      await new Promise((resolve) => { answerStart = resolve; });
      return new globalThis.Response(JSON.stringify({ upload: 'u1', parts: 1 }), { status: 201 });
    }
    assert.equal(init.headers['X-CSRFToken'], 'fresh');
    return new globalThis.Response(JSON.stringify({ error: 'csrf', message: 'reload' }), { status: 400 });
  };
  try {
    const start = work.postIn('/api/uploads', { size: 1 });
    while (!answerStart) await new Promise((resolve) => { setTimeout(resolve, 1); });
    const status = work.withToken((token) => postJson('/api/status', token, {}), 0);
    while (!renewed) await new Promise((resolve) => { setTimeout(resolve, 1); });
    renewed({ token: 'token-1', newSession: true });
    await assert.rejects(status, SessionChanged);
    assert.equal(work.session, 1);
    answerStart();
    const { answer, session } = await start;
    assert.deepEqual([answer.upload, session], ['u1', 0]);
  } finally {
    globalThis.fetch = realFetch;
  }
});

test('a request of an ended session is not sent in the new one, even as its first send', async () => {
  const p = portal({ holds: 'fresh', newSession: true });
  const work = new Work(null, '/api/pow', 'stale', null, p.renew);
  await work.withToken(p.send('status')); // met the ended session: renewed into session 1
  assert.equal(work.session, 1);
  await assert.rejects(work.withToken(p.send('part of session 0'), 0), SessionChanged);
  assert.deepEqual(p.seen.sent.filter(([what]) => what === 'part of session 0'), []);
});

test('a report whose fresh proof was fetched in a new session is not sent there', async () => {
  // Its first send is refused for a stale proof; fetching the next one meets the
  // ended session and renews: the report names uploads of the old one.
  let live = 'T0';
  const reports = [];
  const json = (status, body) => new globalThis.Response(JSON.stringify(body), { status });
  const realFetch = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    const token = init.headers['X-CSRFToken'];
    if (token !== live) return json(400, { error: 'csrf', message: 'reload' });
    if (url === '/api/pow') return json(200, { challenge: 'c', bits: 0, iterations: 1 });
    reports.push(token);
    live = 'T1'; // the session ends as the first send is answered
    return json(400, { error: 'work', message: 'solve again' });
  };
  const worker = { run: async () => ({ nonce: 1 }) };
  const first = { challenge: 'c', bits: 0, iterations: 1 };
  const work = new Work(worker, '/api/pow', 'T0', first, async () => ({ token: live, newSession: true }));
  try {
    await assert.rejects(work.post('/api/reports', { attachments: ['of session 0'] }, 0), SessionChanged);
  } finally {
    globalThis.fetch = realFetch;
  }
  assert.deepEqual(reports, ['T0']);
});

test('a renewal into a session another tab started moves the page on, though it is not new', async () => {
  // The page's session ended; another tab of the browser opened a page and so
  // started one, which the portal does not call new to this page's renewal.
  const p = portal({ holds: 'fresh', newSession: false, uploads: null });
  const work = new Work(null, '/api/pow', 'stale', null, p.renew);
  assert.equal(work.uploadedIn(0, 'U0'), 0); // a file of the page went out in its session
  await assert.rejects(work.withToken(p.send('part 2'), 0), SessionChanged);
  assert.equal(work.session, 1);
  assert.deepEqual(p.seen.marks, ['U0']); // the renewal was told which uploads are the page's
  // In the new session the page has uploaded nothing yet: the next renewal asks after none.
  await work.renewedAfter(work.token);
  assert.deepEqual(p.seen.marks, ['U0', null]);
  assert.equal(work.session, 1);
});

test('a renewal that finds the uploads of the page keeps its session', async () => {
  const p = portal({ holds: 'fresh', newSession: false, uploads: 'U0' });
  const work = new Work(null, '/api/pow', 'stale', null, p.renew);
  work.uploadedIn(0, 'U0');
  assert.equal(work.uploadedIn(3, 'U-of-another'), 3); // a session the page has left: ignored
  assert.deepEqual(await work.withToken(p.send('part 2'), 0), { ok: 'part 2' });
  assert.equal(work.session, 0);
});

test('a renewal before any upload asks after none and keeps the session', async () => {
  const p = portal({ holds: 'fresh', newSession: false, uploads: 'U-of-another-tab' });
  const work = new Work(null, '/api/pow', 'stale', null, p.renew);
  assert.deepEqual(await work.withToken(p.send('report'), 0), { ok: 'report' });
  assert.deepEqual(p.seen.marks, [null]);
  assert.equal(work.session, 0);
});

test('a start answering another mark than the page had moves the page on', async () => {
  // Two requests of the session wrote it at once and the portal lost the page's
  // uploads: the next start made new ones under another mark.
  const work = new Work(null, '/api/pow', 'fresh', null, null);
  assert.equal(work.uploadedIn(0, 'U0'), 0);
  assert.equal(work.uploadedIn(0, 'U0'), 0);
  assert.equal(work.uploadedIn(0, 'U1'), 1); // this upload is of the session the page is in now
  assert.equal(work.session, 1);
  assert.equal(work.uploadedIn(1, 'U1'), 1);
});
