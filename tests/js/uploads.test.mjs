// The page's file uploads (static/src/page/uploads.js) against a fake portal that
// keeps one live session at a time, as the real one does: an upload lives in the
// session that started it, a stale token is refused (400 "csrf") and renewed
// into a new session. The page's elements are stand-ins: only what the uploads
// read and write, never checked here (the browser tests check the page).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { FileUploads } from '../../static/src/page/uploads.js';
import { Work } from '../../static/src/page/work.js';

globalThis.window = globalThis;

class Element {
  constructor(dataset = {}) {
    this.dataset = dataset;
    this.textContent = '';
    this.hidden = false;
    this.content = this;
    this.children = new Map();
    this.classList = { add() {}, remove() {}, toggle() {} };
  }

  querySelector(selector) {
    if (!this.children.has(selector)) {
      const limits = selector === '#files-field' ? { maxFileBytes: '1000000', maxFiles: '10' } : {};
      this.children.set(selector, new Element(limits));
    }
    return this.children.get(selector);
  }

  querySelectorAll() { return []; }

  cloneNode() { return new Element(); }

  append() {}

  remove() {}

  replaceChildren() {}

  addEventListener() {}

  focus() {}

  removeAttribute() {}

  setAttribute() {}

  getAttribute() { return null; }
}

const UNITS = ['kb', 'mb', 'gb', 'seconds_left', 'minutes_left'];

function page() {
  const found = new Map();
  const units = new Element();
  units.querySelectorAll = () => UNITS.map((unit) => ({ dataset: { unit }, textContent: `{n} ${unit}` }));
  found.set('unit-texts', units);
  const doc = {
    documentElement: { lang: 'en' },
    getElementById: (id) => {
      if (!found.has(id)) found.set(id, new Element());
      return found.get(id);
    },
  };
  return { doc, form: new Element({ endpointUploads: '/api/uploads' }) };
}

// One live session at a time. `hold(url)` keeps the answer to the next request
// for `url` back, once the portal has done what it asked: it resolves, as the
// request arrives, to the function that lets the answer go.
function fakePortal() {
  const portal = {
    session: 0, token: 'T0', uploads: new Map(), made: [], held: new Map(), fresh: false,
  };
  const json = (status, body) => new globalThis.Response(JSON.stringify(body), { status });
  portal.hold = (url) => new Promise((arrived) => { portal.held.set(url, arrived); });
  portal.end = () => { portal.session += 1; portal.token = `T${portal.session}`; portal.fresh = true; };
  // The session ended and another tab of the browser opened a page, starting one:
  // the page's renewal does not find it new.
  portal.elsewhere = () => { portal.end(); portal.fresh = false; };
  // The mark of the live session's uploads, once it has any.
  portal.mark = () => (portal.made.some(([, s]) => s === portal.session) ? `U${portal.session}` : null);
  portal.renew = async (mark) => {
    const newSession = portal.fresh;
    portal.fresh = false;
    return { token: portal.token, newSession, otherUploads: Boolean(mark) && mark !== portal.mark() };
  };
  const answer = (url, init) => {
    if (init.headers['X-CSRFToken'] !== portal.token) return json(400, { error: 'csrf', message: 'reload' });
    if (url === '/api/pow') return json(200, { challenge: 'c', bits: 0, iterations: 1 });
    if (url === '/api/uploads') {
      const id = `u${portal.made.length + 1}`;
      portal.uploads.set(id, portal.session);
      portal.made.push([id, portal.session]);
      return json(201, { upload: id, parts: 1, uploader: portal.mark() });
    }
    const [, id] = url.match(/^\/api\/uploads\/(u\d+)/);
    if (portal.uploads.get(id) !== portal.session) return json(404, { error: 'no_upload', message: 'gone' });
    if (init.method === 'DELETE') portal.uploads.delete(id);
    return json(200, { upload: id, received: 1 });
  };
  globalThis.fetch = async (url, init) => {
    if (['GET', 'HEAD', undefined].includes(init.method) && init.body !== undefined) {
      throw new TypeError('a GET cannot have a body'); // as a browser's fetch refuses it
    }
    const done = answer(url, init);
    const arrived = portal.held.get(url);
    if (arrived) {
      portal.held.delete(url);
      await new Promise((release) => { arrived(release); });
    }
    return done;
  };
  // A file's parts go by XMLHttpRequest: through the same portal, telling how much
  // of the body went (all of it, once the portal has it), and stoppable.
  globalThis.XMLHttpRequest = class {
    constructor() { this.upload = {}; this.headers = {}; this.stopped = false; }

    open(method, url) { Object.assign(this, { method, url }); }

    setRequestHeader(name, value) { this.headers[name] = value; }

    abort() {
      this.stopped = true;
      portal.stopped.push(this.url);
      this.onabort();
    }

    async send(body) {
      portal.sending = this;
      let response;
      try {
        response = await globalThis.fetch(this.url, { method: this.method, headers: this.headers, body });
      } catch (_) {
        this.onerror();
        return;
      }
      if (this.stopped) return;
      this.upload.onprogress({ loaded: body.length });
      this.status = response.status;
      this.response = await response.json();
      this.onload();
    }
  };
  portal.stopped = [];
  return portal;
}

function uploadsOn(portal, worker = {}) {
  const run = async (what) => {
    if (worker[what]) return worker[what]();
    if (what === 'file-begin') return { size: 10, cipherSize: 10, partSize: 100, partPlain: 10 };
    if (what === 'file-part') return { data: new Uint8Array(10) };
    if (what === 'file-end') return { sha256: 'x' };
    return { nonce: 1 };
  };
  const work = new Work({ run }, '/api/pow', portal.token, { challenge: 'c', bits: 0, iterations: 1 }, portal.renew);
  const { doc, form } = page();
  return new FileUploads(doc, form, { run }, work);
}

const aFile = (name) => ({ name, size: 10, type: 'image/jpeg' });

// The report names `count` uploads, every one made in the page's second session.
function assertMadeInSessionOne(portal, attachments, count) {
  const named = attachments.map((a) => a.upload);
  assert.equal(named.length, count);
  for (const upload of named) assert.equal(portal.uploads.get(upload), 1, `${upload} is of session 1`);
}

test('a session that ends while a file goes out: the report names only uploads of the new one', async () => {
  const portal = fakePortal();
  const files = uploadsOn(portal);
  files.add(aFile('a.jpg'));
  await files.settled(); // a.jpg sent in session 0
  const partOfB = portal.hold('/api/uploads/u2/parts/0');
  files.add(aFile('b.jpg'));
  const release = await partOfB;
  // Send is pressed while b.jpg is going out, and the session ends under the page.
  let waited = 0;
  const ready = files.forReport(() => { waited += 1; });
  portal.end();
  await files.work.renewedAfter(files.work.token); // as the next request of the page would
  release();
  const { attachments, session } = await ready;
  assert.equal(session, 1);
  assert.ok(waited >= 1);
  assertMadeInSessionOne(portal, attachments, 2);
});

test('an upload whose start was answered after a renewal belongs to the session it was made in', async () => {
  const portal = fakePortal();
  const files = uploadsOn(portal);
  const start = portal.hold('/api/uploads');
  files.add(aFile('a.jpg'));
  const answer = await start; // made in session 0; its answer is on its way
  portal.end();
  await files.work.renewedAfter(files.work.token); // another request's renewal: session 1
  answer();
  await files.settled();
  // Its part was not sent into session 1 under the old upload: the file started over.
  assert.deepEqual(portal.made.map(([, made]) => made), [0, 1]);
  assert.equal(files.entries[0].state, 'done');
  assert.equal(files.entries[0].session, 1);
});

test('a file removed while it is prepared or started leaves no upload open on the portal', async () => {
  for (const when of ['prepared', 'started']) {
    const portal = fakePortal();
    let prepared = null;
    const gate = new Promise((resolve) => { prepared = resolve; });
    const begin = async () => { await gate; return { size: 10, cipherSize: 10, partSize: 100, partPlain: 10 }; };
    const files = uploadsOn(portal, when === 'prepared' ? { 'file-begin': begin } : {});
    const start = when === 'started' ? portal.hold('/api/uploads') : null;
    files.add(aFile('wrong.mov'));
    if (start) {
      const answer = await start;
      await files.remove(files.entries[0]);
      answer();
    } else {
      await new Promise((resolve) => { setTimeout(resolve, 5); });
      await files.remove(files.entries[0]);
      prepared();
    }
    await files.settled();
    assert.deepEqual([...portal.uploads.keys()], [], `removed while ${when}`);
  }
});

test('a file removed after it was sent is deleted from the portal', async () => {
  const portal = fakePortal();
  const files = uploadsOn(portal);
  files.add(aFile('a.jpg'));
  files.add(aFile('wrong.jpg'));
  await files.settled();
  assert.deepEqual([...portal.uploads.keys()], ['u1', 'u2']);
  await files.remove(files.entries[1]);
  assert.deepEqual([...portal.uploads.keys()], ['u1']);
  assert.deepEqual(files.ready().map((a) => a.upload), ['u1']);
});

test('while a report is sealed and sent no file can be removed, and after a failure one can', async () => {
  const portal = fakePortal();
  const files = uploadsOn(portal);
  files.add(aFile('a.jpg'));
  await files.settled();
  const [entry] = files.entries;
  const button = entry.li.querySelector('[data-action="remove"]');
  files.hold(true);
  assert.equal(button.disabled, true);
  assert.equal(files.input.disabled, true);
  await files.remove(entry);
  assert.deepEqual(files.ready().map((a) => a.upload), ['u1'], 'the file still goes with the report');
  assert.deepEqual([...portal.uploads.keys()], ['u1']);
  files.hold(false); // the send failed: the reporter may change the files again
  assert.equal(button.disabled, false);
  await files.remove(entry);
  assert.deepEqual(files.ready(), []);
  assert.deepEqual([...portal.uploads.keys()], []);
});

test('a file removed while it waits its turn is never prepared or started', async () => {
  const portal = fakePortal();
  let prepared = null;
  const gate = new Promise((resolve) => { prepared = resolve; });
  const begun = [];
  const files = uploadsOn(portal, {
    'file-begin': async () => {
      begun.push(files.entries.length);
      if (begun.length === 1) await gate;
      return { size: 10, cipherSize: 10, partSize: 100, partPlain: 10 };
    },
  });
  files.add(aFile('first.jpg'));
  files.add(aFile('wrong.mov')); // queued behind the first
  await new Promise((resolve) => { setTimeout(resolve, 5); });
  await files.remove(files.entries[1]);
  prepared();
  await files.settled();
  assert.equal(begun.length, 1, 'only the first file was prepared');
  assert.deepEqual(portal.made.map(([id]) => id), ['u1']);
});

test('a session another tab started after the session of the page ended: its files go out again', async () => {
  const portal = fakePortal();
  const files = uploadsOn(portal);
  files.add(aFile('a.jpg'));
  await files.settled(); // sent in session 0
  portal.elsewhere();
  await files.work.renewedAfter(files.work.token); // as the report's refused send would
  const { attachments, session } = await files.forReport(() => {});
  assert.equal(session, 1);
  assertMadeInSessionOne(portal, attachments, 1);
});

test('a file chosen while the files are held is not added', async () => {
  const portal = fakePortal();
  const files = uploadsOn(portal);
  files.hold(true);
  files.input.files = [aFile('late.jpg')]; // a chooser opened before, closed after
  files.pick();
  assert.equal(files.entries.length, 0);
  files.hold(false);
  files.input.files = [aFile('now.jpg')];
  files.pick();
  assert.equal(files.entries.length, 1);
  await files.settled();
  assert.deepEqual([...portal.uploads.keys()], ['u1']);
});

test('a part shows its progress before its answer comes, and a removed file stops its part', async () => {
  const portal = fakePortal();
  const files = uploadsOn(portal);
  const part = portal.hold('/api/uploads/u1/parts/0');
  files.add(aFile('big.mov'));
  files.add(aFile('small.jpg')); // waits its turn behind the first
  const release = await part;
  const [big] = files.entries;
  portal.sending.upload.onprogress({ loaded: 40 }); // 40 of the part's 100 bytes went
  assert.equal(big.sent, 4, 'four tenths of the 10-byte file');
  assert.ok(Date.now() - files.progressed < 1000, 'a part moving is activity');
  await files.remove(big);
  assert.deepEqual(portal.stopped, ['/api/uploads/u1/parts/0']);
  await files.settled(); // the next file went out without the stopped part's answer
  assert.deepEqual(files.entries.map((e) => e.state), ['done']);
  assert.deepEqual([...portal.uploads.keys()], ['u2']);
  release();
});

test('a part whose answer was lost is not sent again once the portal says it has it', async () => {
  const portal = fakePortal();
  const files = uploadsOn(portal);
  let parts = 0;
  const answer = globalThis.fetch;
  globalThis.fetch = async (url, init) => {
    if (url.endsWith('/parts/0')) {
      parts += 1;
      await answer(url, init); // stored on the portal, but the answer never comes
      throw new TypeError('network');
    }
    return answer(url, init);
  };
  files.add(aFile('a.jpg'));
  await files.settled(); // after one back-off of a second
  globalThis.fetch = answer;
  assert.equal(parts, 1, 'the status said the part had arrived');
  assert.equal(files.entries[0].state, 'done');
});

test('the time left is the file going out now, not the speed of the one before', async () => {
  const portal = fakePortal();
  const files = uploadsOn(portal);
  files.add(aFile('first.jpg'));
  await files.settled();
  assert.ok(files.rate > 0, 'the first file set a speed');
  const part = portal.hold('/api/uploads/u2/parts/0');
  files.add(aFile('second.jpg'));
  const release = await part;
  assert.equal(files.rate, 0, 'no time left is said for the second file before it moves');
  release();
  await files.settled();
});
