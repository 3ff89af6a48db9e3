// Progressive enhancement of /case: derive the code, open the case, verify the
// desk's replies and make the next code, all in the browser. The server sees
// only `lookup` and ciphertext. Replies are rendered with textContent, never HTML.
import { asciiDigits, formatCode, normaliseCode } from '../crypto/codes.js';
import { csrfToken, messageFor, postJson } from './http.js';
import { Progress, showError, templateTexts } from './progress.js';
import { FileUploads } from './uploads.js';
import { Units } from './units.js';
import { Work } from './work.js';
import { CryptoWorker } from './worker-client.js';


function fill(node, values) {
  for (const [field, value] of Object.entries(values)) {
    const el = node.querySelector(`[data-field="${field}"]`);
    if (el) el.textContent = value;
  }
  return node;
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
    this.statusPrefix = tpl.querySelector('[data-status-prefix]').textContent;
  }

  clone(name) {
    return this.tpl[name].cloneNode(true);
  }

  render(record, opened) {
    const d = this.doc;
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
    const replies = d.getElementById('reply-list');
    replies.replaceChildren();
    for (const { item } of opened.items) {
      const li = this.clone('reply');
      if (item) {
        fill(li, {
          day: item.date,
          status: item.status ? `${this.statusPrefix} ${this.statusLabels[item.status] || ''}` : '',
          text: item.text,
        });
      } else {
        li.classList.add('reply-invalid');
        li.querySelector('[data-field="invalid"]').hidden = false;
      }
      replies.append(li);
    }
    d.getElementById('no-replies').hidden = opened.items.length > 0;
    d.getElementById('sent-list').replaceChildren(...record.sent.map((s) => fill(this.clone('sent'), {
      kind: this.kindLabels[s.kind] || '', day: s.day, size: this.units.size(s.size),
    })));
    const followUp = record.kind === 'invitation' ? 'answer' : 'message';
    for (const h of d.querySelectorAll('[data-follow-up]')) h.hidden = h.dataset.followUp !== followUp;
    d.querySelector('[data-new-code]').textContent = formatCode(opened.next.code);
    d.getElementById('case-entry').hidden = true;
    d.getElementById('case-view').hidden = false;
    d.getElementById('case-heading').focus();
  }
}

function leaveAfterIdle(doc, form, seconds) {
  let last = Date.now();
  for (const type of ['keydown', 'pointerdown', 'input']) {
    doc.addEventListener(type, () => { last = Date.now(); }, { passive: true });
  }
  const timer = window.setInterval(() => {
    if (Date.now() - last < seconds * 1000) return;
    window.clearInterval(timer);
    doc.getElementById('case-view').replaceChildren();
    postJson(form.dataset.endpointLeave, csrfToken(form), {}).finally(() => {
      window.location.replace(`${window.location.pathname}?left=1`);
    });
  }, 5000);
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
  // Load libsodium now, while the reporter types the code; a failure shows on use.
  worker.start().catch(() => {});
  let state = null; // { kind, code, rotation } while the case is open

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
      input.value = '';
      const record = await postJson(form.dataset.endpointOpen, token, { lookup: derived.lookup });
      const opened = await worker.run('open-case', { wrap: derived.wrap, record, organization },
        (n) => progress.step(Math.max(n, 2)));
      progress.step(4);
      const { rotation } = await postJson(form.dataset.endpointRotate, token, opened.next.mailbox);
      state = { kind: record.kind, code: opened.next.code, rotation };
      work.prepare().catch(() => {}); // for a follow-up, while the reporter reads
      progress.stop();
      view.render(record, opened);
      leaveAfterIdle(doc, form, Number(form.dataset.idleSeconds));
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
      confirmForm.hidden = true;
      const done = doc.getElementById('confirm-done');
      done.hidden = false;
      done.focus();
    } catch (error) {
      confirmError.textContent = messageFor(error, texts.error);
      confirmError.hidden = false;
    }
  });

  const messageForm = doc.getElementById('message-form');
  const work = new Work(worker, form.dataset.endpointPow, token);
  const files = new FileUploads(doc, messageForm, worker, token, work);
  messageForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!state || !messageForm.reportValidity()) return;
    const textarea = doc.getElementById('message');
    const messageError = doc.getElementById('message-error');
    messageError.hidden = true;
    try {
      const attachments = files.ready();
      const kind = state.kind === 'invitation' ? 'answer' : 'message';
      const envelope = await worker.run('seal-follow-up', {
        organization, kind, text: textarea.value, attachments,
      });
      await work.post(form.dataset.endpointMessage,
        { envelope, attachments: attachments.map((a) => a.upload) });
      textarea.value = '';
      files.clear();
      const done = doc.getElementById('message-done');
      done.hidden = false;
      done.focus();
    } catch (error) {
      // The text stays in the box: nothing typed is lost.
      showError(messageError, error.status === 403 ? texts.expired : messageFor(error, texts.error));
    }
  });

  doc.getElementById('leave-form').addEventListener('submit', () => {
    doc.getElementById('case-view').hidden = true;
    worker.run('close-case', {}).catch(() => {});
  });
}
