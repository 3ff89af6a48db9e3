// Evidence files on the page: pick, encrypt in the worker part by part, upload
// with retries and resume, show progress per file and overall, remove/cancel.
import { ApiError, answerFrom, answerOf, messageFor } from './http.js';
import { templateTexts } from './progress.js';
import { Units } from './units.js';
import { SessionChanged } from './work.js';

const RETRIES = 8;

// Files are still being sent, or one could not be: the message says which.
export class FilesNotReady extends Error {}

function sleep(ms) {
  return new Promise((resolve) => { window.setTimeout(resolve, ms); });
}

async function request(method, url, token, body) {
  const response = await fetch(url, {
    method,
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': token },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return answerOf(response);
}

// The file was removed while one of its parts was going out.
class PartStopped extends Error {}

// A part goes out by XMLHttpRequest rather than fetch, which says nothing until
// the answer comes: `sent(bytes)` hears how much of it has gone, so progress
// moves within a part on a slow link (and counts as activity on the case page);
// and `entry.sending` can stop it when the file is removed, so the next file
// need not wait for a part nobody wants. Answers as `request` does: the JSON,
// an ApiError, or a TypeError for a network failure.
function sendPart(url, token, body, sent, entry) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('PUT', url);
    xhr.responseType = 'json';
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.setRequestHeader('X-CSRFToken', token);
    xhr.upload.onprogress = (event) => sent(event.loaded);
    xhr.onload = () => {
      try {
        resolve(answerFrom(xhr.status, xhr.response || {}));
      } catch (error) {
        reject(error);
      }
    };
    xhr.onerror = () => reject(new TypeError('the part could not be sent'));
    xhr.ontimeout = xhr.onerror;
    xhr.onabort = () => reject(new PartStopped());
    entry.sending = xhr;
    xhr.send(body);
  }).finally(() => { entry.sending = null; });
}

export class FileUploads {
  constructor(doc, form, worker, work) {
    this.doc = doc;
    this.form = form;
    this.worker = worker;
    this.work = work; // and its form token and session, which a refused send may have renewed
    this.field = form.querySelector('#files-field');
    this.input = form.querySelector('#files');
    this.list = form.querySelector('#file-list');
    this.strip = form.querySelector('#strip-metadata');
    this.overall = form.querySelector('#files-overall');
    this.overallBar = form.querySelector('#files-overall-bar');
    this.overallText = form.querySelector('#files-overall-text');
    this.endpoint = form.dataset.endpointUploads;
    this.texts = templateTexts(doc, 'file-texts', 'data-text');
    this.units = new Units(doc);
    this.template = doc.getElementById('file-item-template').content.querySelector('li');
    this.limits = {
      fileBytes: Number(this.field.dataset.maxFileBytes),
      files: Number(this.field.dataset.maxFiles),
    };
    this.entries = [];
    this.queue = Promise.resolve();
    this.nextId = 1;
    this.held = false;
    this.progressed = 0; // when a part last went out (or a file began)
    this.input.removeAttribute('name'); // files travel as ciphertext parts, never in the form post
    this.input.addEventListener('change', () => this.pick());
  }

  pick() {
    // A chooser opened before the files were held and closed after adds nothing.
    if (!this.held) for (const file of Array.from(this.input.files)) this.add(file);
    this.input.value = '';
  }

  add(file) {
    const li = this.template.cloneNode(true);
    const entry = {
      id: `f${this.nextId}`, file, li, state: 'waiting', sent: 0, total: file.size,
      upload: null, meta: null, cancelled: false, session: null, again: false, sending: null,
    };
    this.nextId += 1;
    li.querySelector('[data-field="name"]').textContent = file.name;
    li.querySelector('[data-field="size"]').textContent = this.units.size(file.size);
    li.querySelector('[data-action="remove"]').addEventListener('click', () => this.remove(entry));
    this.list.append(li);
    this.entries.push(entry);
    if (file.size === 0) return this.fail(entry, 'empty');
    if (this.entries.filter((e) => e.state !== 'failed').length > this.limits.files) {
      return this.fail(entry, 'too_many');
    }
    if (file.size > this.limits.fileBytes) return this.fail(entry, 'too_large');
    this.setState(entry, 'waiting');
    this.queue = this.queue.then(() => this.send(entry));
    return undefined;
  }

  setState(entry, state, extra = '') {
    entry.state = state;
    entry.li.querySelector('[data-field="state"]').textContent =
      `${this.texts[state] || state}${extra ? ` · ${extra}` : ''}`;
    this.refresh();
  }

  fail(entry, reason, message = '') {
    entry.state = 'failed';
    entry.li.classList.add('file-failed');
    entry.li.querySelector('[data-field="state"]').textContent =
      `${this.texts[reason] || this.texts.failed}${message ? ` (${message})` : ''}`;
    this.refresh();
  }

  refresh() {
    const live = this.entries.filter((e) => e.state !== 'failed');
    const total = live.reduce((n, e) => n + e.total, 0);
    const sent = live.reduce((n, e) => n + e.sent, 0);
    this.overall.hidden = live.length === 0;
    this.overallBar.max = Math.max(total, 1);
    this.overallBar.value = sent;
    let left = '';
    if (this.rate && sent < total) left = ` · ${this.units.timeLeft((total - sent) / this.rate)}`;
    this.overallText.textContent = `${this.units.size(sent)} / ${this.units.size(total)}${left}`;
    for (const e of this.entries) {
      const bar = e.li.querySelector('[data-field="bar"]');
      bar.max = Math.max(e.total, 1);
      bar.value = e.sent;
    }
  }

  // A request about `entry`'s upload, which lives in the session it began in.
  about(entry, method, url, body) {
    return this.work.withToken((token) => request(method, url, token, body), entry.session);
  }

  // Part `number` of `entry`'s upload; `sent(bytes)` hears how far it has gone.
  async put(entry, number, data, sent) {
    const url = `${this.endpoint}/${entry.upload}/parts/${number}`;
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await this.work.withToken(
          (token) => sendPart(url, token, data, sent, entry), entry.session,
        );
      } catch (error) {
        if (entry.cancelled || error instanceof SessionChanged) throw error;
        if (error instanceof ApiError && error.reason === 'part_order') {
          if (error.next > number) return { received: error.next }; // the server has it already
          throw error;
        }
        const retryable = !(error instanceof ApiError) || error.status >= 500 || error.reason === 'incomplete';
        if (!retryable || attempt >= RETRIES) throw error;
        this.setState(entry, 'retrying');
        await sleep(Math.min(30000, 1000 * 2 ** attempt));
        // Resume from what the server actually holds.
        const status = await this.about(entry, 'GET', `${this.endpoint}/${entry.upload}`).catch(() => null);
        if (status && status.received > number) return status;
        this.setState(entry, 'encrypting');
      }
    }
  }

  async send(entry) {
    if (entry.cancelled) return;
    const started = Date.now();
    this.rate = 0; // time left is this file's, once a part of it moves
    try {
      this.setState(entry, 'encrypting');
      const info = await this.worker.run('file-begin', {
        id: entry.id, file: entry.file, strip: Boolean(this.strip && this.strip.checked),
      });
      entry.total = info.size;
      if (entry.cancelled) return; // removed while it was prepared: nothing was started
      const { answer: made, session } = await this.work.postIn(this.endpoint,
        { size: info.cipherSize, part_size: info.partSize });
      entry.upload = made.upload;
      this.progressed = Date.now();
      // where it was made (its start may have renewed)
      entry.session = this.work.uploadedIn(session, made.uploader);
      if (entry.cancelled) { // removed while it was started: it must not count on the portal
        await this.discard(entry);
        return;
      }
      if (made.parts !== Math.max(1, Math.ceil(info.cipherSize / info.partSize))) {
        throw new Error('the portal asked for the file in an unexpected number of parts');
      }
      // How much of the file has gone: `n` whole parts and `bytes` of the next.
      const moved = (n, bytes) => {
        const within = bytes * (info.partPlain / info.partSize); // ciphertext to plaintext
        entry.sent = Math.min(entry.total, Math.floor(n * info.partPlain + within));
        this.progressed = Date.now();
        this.rate = entry.sent / Math.max(0.5, (Date.now() - started) / 1000);
        this.refresh();
      };
      for (let n = 0; n < made.parts; n += 1) {
        if (entry.cancelled) return;
        const part = await this.worker.run('file-part', { id: entry.id });
        await this.put(entry, n, part.data, (bytes) => moved(n, bytes));
        moved(n + 1, 0);
      }
      const meta = await this.worker.run('file-end', { id: entry.id });
      entry.meta = {
        upload: entry.upload, name: entry.file.name, type: entry.file.type, ...meta,
      };
      entry.sent = entry.total;
      this.setState(entry, 'done', info.removed ? this.texts.stripped : '');
    } catch (error) {
      if (entry.cancelled) return;
      // The session ended mid-upload: the file is still here, so it starts over
      // in the new session (once; a second loss is shown).
      if (error instanceof SessionChanged && !entry.again) {
        entry.again = true;
        this.restart(entry);
        await this.send(entry);
        return;
      }
      this.fail(entry, error.reason || 'failed', messageFor(error, ''));
    }
  }

  restart(entry) {
    Object.assign(entry, { upload: null, meta: null, sent: 0 });
    this.setState(entry, 'waiting');
  }

  // Files sent in a session that has ended since are gone from the portal with
  // it: send them again in this one (before a report names them).
  sendAgain() {
    const gone = this.entries.filter((e) => e.state === 'done' && e.session !== this.work.session);
    for (const entry of gone) {
      entry.again = false;
      this.restart(entry);
      this.queue = this.queue.then(() => this.send(entry));
    }
  }

  // A removed file is stopped, and the portal asked to delete its upload, sent
  // or not, so that it no longer counts against the session's limits.
  async remove(entry) {
    if (this.held) return;
    entry.cancelled = true;
    if (entry.sending) entry.sending.abort();
    this.entries = this.entries.filter((e) => e !== entry);
    entry.li.remove(); // its button with it: the focus goes to the picker, not the page's top
    this.input.focus();
    this.refresh();
    this.worker.run('file-cancel', { id: entry.id }).catch(() => {});
    if (entry.upload) await this.discard(entry);
  }

  // Once a report or message names its files (every one sent) until it is stored
  // or refused, they are fixed: one removed then would still go with it. The
  // picker and every Remove button are off.
  hold(held) {
    this.held = held;
    this.input.disabled = held;
    for (const e of this.entries) e.li.querySelector('[data-action="remove"]').disabled = held;
  }

  discard(entry) {
    return this.about(entry, 'DELETE', `${this.endpoint}/${entry.upload}`).catch(() => {});
  }

  // Whether a file is going out and one went a part further within `ms`: a
  // stalled upload is no sign of anyone at the device.
  movingWithin(ms) {
    return this.busy() && Date.now() - this.progressed < ms;
  }

  // Whether any file is still being encrypted or sent.
  busy() {
    return this.entries.some((e) => e.state !== 'done' && e.state !== 'failed');
  }

  // Resolves once every file chosen so far has been sent (or has failed).
  async settled() {
    let queue;
    do {
      queue = this.queue;
      await queue;
    } while (queue !== this.queue);
  }

  // The files for a report once every one is sent in the session the page is in
  // now: those sent in one that has ended go out again, however often it ends
  // while others are still going out. `waiting` is called while files are still
  // going out (Send pressed early is honoured). Answers { attachments, session }.
  async forReport(waiting) {
    for (;;) {
      this.sendAgain();
      if (!this.busy()) return { attachments: this.ready(), session: this.work.session };
      waiting();
      await this.settled();
    }
  }

  // The sealed descriptions of every sent file; throws while any is still
  // sending, or if one could not be sent (it is never dropped silently).
  ready() {
    if (this.busy()) throw new FilesNotReady(this.texts.wait_files);
    if (this.entries.some((e) => e.state === 'failed')) throw new FilesNotReady(this.texts.failed_files);
    return this.entries.filter((e) => e.state === 'done').map((e) => e.meta);
  }

  // Whether the reporter has chosen any file not yet sent with a report.
  hasFiles() {
    return this.entries.length > 0;
  }

  clear() {
    this.entries = [];
    this.list.replaceChildren();
    this.refresh();
  }
}
