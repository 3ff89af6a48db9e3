// Progressive enhancement of /case: derive the code, open the case, verify the
// desk's replies and make the next code, all in the browser. The server sees
// only `lookup` and ciphertext. Replies are rendered with textContent, never HTML.
//
// Nothing typed is lost: the case is kept open while the reporter writes, and if
// it closes anyway the message stays in its box while the case is opened again
// right here; leaving the page with a message unsent or a new code unconfirmed
// asks first.
import { asciiDigits, normaliseCode } from '../protocol/codes.js';
import { followUpKind } from '../protocol/envelopes.js';
import { enhanceCodeInput } from './code-input.js';
import { csrfToken, messageFor, postJson } from './http.js';
import { guardUnsent } from './leaving.js';
import { Progress, showError, templateTexts } from './progress.js';
import { showCode } from './report-form.js';
import { FileUploads, FilesNotReady } from './uploads.js';
import { Units } from './units.js';
import { Work } from './work.js';
import { CryptoWorker } from './worker-client.js';

const KEEP_ALIVE_MS = 60_000;

function fill(node, values) {
  for (const [field, value] of Object.entries(values)) {
    const el = node.querySelector(`[data-field="${field}"]`);
    if (el) el.textContent = value;
  }
  return node;
}

// A sentence naming a code by its last four digits, kept left to right in any script.
function sayDigits(el, text, digits) {
  const [before, after = ''] = text.split('{digits}');
  const span = el.ownerDocument.createElement('span');
  span.dir = 'ltr';
  span.className = 'code-digits';
  span.textContent = digits;
  el.replaceChildren(before, span, after);
}

function today() {
  return new Date().toISOString().slice(0, 10);
}

class CaseView {
  constructor(doc) {
    this.doc = doc;
    const tpl = doc.getElementById('case-templates').content;
    this.tpl = {
      status: tpl.querySelector('.status-item'),
      reply: tpl.querySelector('.reply'),
      sent: tpl.querySelector('.sent-item'),
    };
    this.kindLabels = templateTexts(doc, 'case-templates', 'data-kind-label');
    this.units = new Units(doc);
    this.statusLabels = templateTexts(doc, 'case-templates', 'data-status-label');
    this.texts = templateTexts(doc, 'case-templates', 'data-step');
    this.statusPrefix = tpl.querySelector('[data-status-prefix]').textContent;
  }

  clone(name) {
    return this.tpl[name].cloneNode(true);
  }

  sentItem(kind, day, size, fields) {
    const li = fill(this.clone('sent'), {
      kind: this.kindLabels[kind] || '', day, size: this.units.size(size),
    });
    const copy = li.querySelector('[data-field="copy"]');
    if (fields) {
      copy.querySelector('[data-field="copy-text"]').textContent = Object.values(fields)
        .filter((v) => v).join('\n\n');
      copy.hidden = false;
    }
    return li;
  }

  addSent(kind, size, fields) {
    const d = this.doc;
    d.getElementById('sent-list').append(this.sentItem(kind, today(), size, fields));
    d.getElementById('sent-section').hidden = false;
  }

  // A witness reads the questions first and answers them; the new code comes after.
  arrange(caseKind) {
    const d = this.doc;
    const witness = caseKind === 'invitation';
    const order = witness
      ? ['questions-section', 'message-section', 'new-code-section', 'confirm-done',
        'replies-section', 'sent-section', 'status-section']
      : ['new-code-section', 'confirm-done', 'status-section', 'replies-section', 'sent-section',
        'questions-section', 'message-section'];
    const sections = d.getElementById('case-sections');
    for (const id of order) sections.append(d.getElementById(id));
    d.getElementById('questions-section').hidden = !witness;
    d.getElementById('status-section').hidden = witness;
    for (const el of d.querySelectorAll('#case-view [data-follow-up]')) {
      el.hidden = el.dataset.followUp !== followUpKind(caseKind);
    }
  }

  render(record, opened) {
    const d = this.doc;
    const witness = record.kind === 'invitation';
    this.arrange(record.kind);
    const statuses = d.getElementById('status-list');
    statuses.replaceChildren(fill(this.clone('status'), {
      status: this.statusLabels.received, day: record.created,
    }));
    for (const { item } of opened.items) {
      if (item && item.status) {
        statuses.append(fill(this.clone('status'), {
          status: this.statusLabels[item.status] || '', day: item.date,
        }));
      }
    }
    const questions = opened.items.find(({ item }) => item && item.type === 'questions');
    d.querySelector('[data-field="questions"]').textContent = questions ? questions.item.text : '';
    const replies = d.getElementById('reply-list');
    replies.replaceChildren();
    const shown = opened.items.filter((entry) => !(witness && entry === questions));
    for (const { item } of shown) {
      const li = this.clone('reply');
      if (item) {
        fill(li, {
          day: item.date,
          status: item.status ? `${this.statusPrefix} ${this.statusLabels[item.status] || ''}` : '',
          text: item.text,
        });
        li.querySelector('[data-field="text"]').hidden = !item.text; // a status alone
      } else {
        li.classList.add('reply-invalid');
        li.querySelector('[data-field="invalid"]').hidden = false;
      }
      replies.append(li);
    }
    d.getElementById('no-replies').hidden = shown.length > 0;
    d.getElementById('sent-list').replaceChildren(...record.sent.map((s, i) => this.sentItem(
      s.kind, s.day, s.size, opened.copies[i],
    )));
    d.getElementById('sent-section').hidden = record.sent.length === 0;
    showCode(d.getElementById('new-code-section'), opened.next.code);
    d.getElementById('new-code-section').hidden = false;
    d.getElementById('confirm-form').hidden = false;
    d.getElementById('confirm-done').hidden = true;
    d.getElementById('case-entry').hidden = true;
    d.getElementById('case-view').hidden = false;
    const title = witness ? this.texts['title-witness'] : this.texts['title-case'];
    d.title = `${title} · ${d.title.split(' · ').pop()}`;
    d.getElementById('case-heading').focus();
  }
}

export function enhanceCasePage(doc) {
  const form = doc.getElementById('case-form');
  if (!form || typeof Worker === 'undefined' || typeof fetch === 'undefined') return;
  const texts = templateTexts(doc, 'case-templates', 'data-step');
  const progress = new Progress(doc, texts, 4, new Units(doc));
  const worker = new CryptoWorker(form.dataset.worker, form.dataset.workerIntegrity);
  const organization = JSON.parse(form.dataset.organization);
  const token = csrfToken(form);
  const input = doc.getElementById('code');
  const codeError = doc.getElementById('code-error');
  const errorBox = doc.getElementById('js-error');
  const button = form.querySelector('button[type=submit]');
  const view = new CaseView(doc);
  const textarea = doc.getElementById('message');
  const messageError = doc.getElementById('message-error');
  const work = new Work(worker, form.dataset.endpointPow, token);
  enhanceCodeInput(input);
  // Load libsodium now, while the reporter types the code; a failure shows on use.
  worker.start().catch(() => {});
  let state = null; // { kind, code, rotation, confirmed } while the case is open

  const caseView = doc.getElementById('case-view');
  const reopenHere = (why) => {
    // The case closed while the reporter was here: their words stay in the box,
    // and they open the case again right above it. What the case holds (its new
    // code, which no longer works, its replies) leaves the screen with it.
    state = null;
    caseView.classList.add('closed');
    worker.run('close-case', {}).catch(() => {});
    doc.getElementById('case-entry').hidden = false;
    button.disabled = false;
    showError(errorBox, why);
    input.focus();
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const digits = normaliseCode(input.value);
    codeError.hidden = digits !== null;
    input.setAttribute('aria-invalid', String(digits === null));
    if (digits === null) {
      input.setAttribute('aria-describedby', 'code-hint code-error');
      input.focus();
      return;
    }
    errorBox.hidden = true;
    button.disabled = true;
    progress.start();
    try {
      const derived = await worker.run('derive-code', { code: digits, organization }, (n) => progress.step(n));
      const record = await postJson(form.dataset.endpointOpen, token, { lookup: derived.lookup });
      const opened = await worker.run('open-case', { wrap: derived.wrap, record, organization },
        (n) => progress.step(Math.max(n, 2)));
      progress.step(4);
      const { rotation } = await postJson(form.dataset.endpointRotate, token, opened.next.mailbox);
      state = { kind: record.kind, code: opened.next.code, rotation, confirmed: false };
      work.prepare().catch(() => {}); // for a follow-up, while the reporter reads
      progress.stop();
      input.value = ''; // only now: a failed opening keeps the digits to try again
      view.render(record, opened);
      caseView.classList.remove('closed');
      // A new code to confirm, whatever was confirmed before the case last closed.
      doc.getElementById('confirm-form').hidden = false;
      doc.getElementById('confirm-done').hidden = true;
      doc.getElementById('last_group').value = '';
      const status = doc.getElementById('code-status');
      sayDigits(status, texts.until, digits.slice(-4));
      status.hidden = false;
      watchIdle();
    } catch (error) {
      progress.stop();
      showError(errorBox, messageFor(error, texts.error));
      button.disabled = false;
    }
  });

  const confirmForm = doc.getElementById('confirm-form');
  confirmForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!state) return;
    const typed = asciiDigits(doc.getElementById('last_group').value);
    const matches = typed === state.code.slice(-4);
    const confirmError = doc.getElementById('confirm-error');
    confirmError.hidden = matches;
    if (!matches) {
      doc.getElementById('last_group').focus();
      return;
    }
    try {
      await postJson(form.dataset.endpointConfirm, token, { rotation: state.rotation });
      state.confirmed = true;
      confirmForm.hidden = true;
      doc.getElementById('code-status').hidden = true; // "until you confirm" is over
      const done = doc.getElementById('confirm-done');
      sayDigits(done, texts.confirmed, state.code.slice(-4));
      done.hidden = false;
      done.focus();
    } catch (error) {
      if (error.status === 403) reopenHere(texts.expired);
      else if (error.reason === 'rotated') reopenHere(messageFor(error, texts.error));
      else if (error.reason === 'superseded') {
        // Another opening replaced this new code: it is dead, so it is no longer
        // shown; the code that opened the case still works, and the page says so.
        state.confirmed = true;
        doc.getElementById('new-code-section').hidden = true;
        const done = doc.getElementById('confirm-done');
        done.textContent = messageFor(error, texts.error);
        done.hidden = false;
        done.focus();
      } else {
        confirmError.textContent = messageFor(error, texts.error);
        confirmError.hidden = false;
      }
    }
  });

  const messageForm = doc.getElementById('message-form');
  const files = new FileUploads(doc, messageForm, worker, work);
  // A file chosen after a refused send: the refusal is over.
  doc.getElementById('files').addEventListener('change', () => { messageError.hidden = true; });
  guardUnsent(() => textarea.value.trim() !== '' || files.hasFiles()
    || Boolean(state && !state.confirmed));

  // Typing is activity: the case is kept open on the server while it goes on
  // (at least three times per idle period, so it never lapses mid-sentence).
  const keepAliveMs = Math.min(KEEP_ALIVE_MS, (Number(form.dataset.idleSeconds) * 1000) / 3);
  let lastAlive = Date.now();
  let lastActivity = Date.now();
  const active = () => {
    lastActivity = Date.now();
    if (!state || Date.now() - lastAlive < keepAliveMs) return;
    lastAlive = Date.now();
    postJson(form.dataset.endpointAlive, token, {}).catch((error) => {
      if (error.status === 403) reopenHere(texts.expired);
    });
  };
  textarea.addEventListener('input', active);

  let idleTimer = null;
  const watchIdle = () => {
    window.clearInterval(idleTimer);
    for (const type of ['keydown', 'pointerdown']) {
      doc.addEventListener(type, () => { lastActivity = Date.now(); }, { passive: true });
    }
    const seconds = Number(form.dataset.idleSeconds);
    idleTimer = window.setInterval(() => {
      // A file going out is the reporter at work, while it moves.
      if (files.movingWithin(seconds * 1000)) active();
      if (!state || Date.now() - lastActivity < seconds * 1000) return;
      window.clearInterval(idleTimer);
      if (textarea.value.trim() !== '' || files.hasFiles()) {
        reopenHere(texts.expired); // never wipe words or files that were not sent
        return;
      }
      leave();
    }, 5000);
  };

  const messageButton = messageForm.querySelector('button[type=submit]');
  const waitingNote = doc.getElementById('message-waiting');
  messageForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (messageButton.disabled) return;
    if (!state) { // closed: it opens again above, and then this sends
      showError(messageError, texts.expired);
      return;
    }
    if (!messageForm.reportValidity()) return;
    const done = doc.getElementById('message-done');
    done.hidden = true; // the last message's notice is not this one's
    if (textarea.value.trim() === '' && !files.hasFiles()) { // words, files or both
      showError(messageError, texts.empty);
      return;
    }
    messageError.hidden = true;
    // One send at a time: a second press neither stores the message twice nor
    // lets the first's end release the files the second names.
    messageButton.disabled = true;
    try {
      if (files.busy()) { // Send pressed early is honoured, and says so
        waitingNote.hidden = false;
        await files.settled();
      }
      const attachments = files.ready();
      if (textarea.value.trim() === '' && attachments.length === 0) { // removed meanwhile
        showError(messageError, texts.empty);
        return;
      }
      files.hold(true); // from here the message names these files
      const kind = followUpKind(state.kind);
      const keepCopy = messageForm.querySelector('#keep_copy').checked;
      const sealed = await worker.run('seal-follow-up', {
        organization, kind, text: textarea.value, attachments, keepCopy,
        lang: document.documentElement.lang,
      });
      await work.post(form.dataset.endpointMessage, {
        envelope: sealed.envelope,
        attachments: attachments.map((a) => a.upload),
        ...(sealed.copy ? { copy: sealed.copy } : {}),
      });
      view.addSent(kind, JSON.stringify(sealed.envelope).length,
        keepCopy ? { [kind]: textarea.value } : null);
      textarea.value = '';
      files.clear();
      done.hidden = false;
      done.focus();
    } catch (error) {
      // The text stays in the box: nothing typed is lost.
      if (error.status === 403) reopenHere(texts.expired);
      else if (error instanceof FilesNotReady) showError(messageError, error.message);
      else showError(messageError, messageFor(error, texts.error));
    } finally {
      waitingNote.hidden = true;
      files.hold(false);
      messageButton.disabled = false;
    }
  });

  const leave = () => {
    state = null;
    doc.getElementById('case-view').hidden = true;
    worker.run('close-case', {}).catch(() => {});
    postJson(form.dataset.endpointLeave, token, {}).finally(() => {
      window.location.replace(`${window.location.pathname}?left=1`);
    });
  };
  doc.getElementById('leave-form').addEventListener('submit', (event) => {
    event.preventDefault();
    leave();
  });
}
