// Progressive enhancement of /report: seal in the browser, post only ciphertext.
import { formatCode } from '../crypto/codes.js';
import { csrfToken, messageFor } from './http.js';
import { Progress, showError, templateTexts } from './progress.js';
import { FileUploads } from './uploads.js';
import { Units } from './units.js';
import { Work } from './work.js';
import { CryptoWorker } from './worker-client.js';

function collectFields(form) {
  const fields = {};
  for (const name of form.dataset.fields.split(' ')) {
    const el = form.elements.namedItem(name);
    fields[name] = el && typeof el.value === 'string' ? el.value : '';
  }
  return fields;
}

export function enhanceReportForm(doc) {
  const form = doc.getElementById('report-form');
  if (!form || typeof Worker === 'undefined' || typeof fetch === 'undefined') return;
  const texts = templateTexts(doc, 'progress-messages', 'data-step');
  const progress = new Progress(doc, texts, 4, new Units(doc));
  const errorBox = doc.getElementById('js-error');
  const button = form.querySelector('button[type=submit]');
  const worker = new CryptoWorker(form.dataset.worker, form.dataset.workerIntegrity);
  const work = new Work(worker, form.dataset.endpointPow, csrfToken(form));
  const files = new FileUploads(doc, form, worker, csrfToken(form), work);
  // Load libsodium and solve the proof of work now, while the reporter writes;
  // a failure shows on use.
  worker.start().catch(() => {});
  work.prepare().catch(() => {});

  doc.getElementById('seal-notice-server').hidden = true;
  doc.getElementById('seal-notice-browser').hidden = false;

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    errorBox.hidden = true;
    // The server would refuse a blank description; say so before sealing it.
    const description = form.elements.namedItem('what_happened');
    if (!description.value.trim()) {
      description.setAttribute('aria-invalid', 'true');
      showError(errorBox, texts.empty);
      return;
    }
    description.removeAttribute('aria-invalid');
    let attachments;
    try {
      attachments = files.ready();
    } catch (error) {
      showError(errorBox, error.message);
      return;
    }
    button.disabled = true;
    progress.start();
    try {
      const result = await worker.run('seal-report', {
        attachments,
        organization: JSON.parse(form.dataset.organization),
        form: form.dataset.formId,
        version: Number(form.dataset.formVersion),
        fields: collectFields(form),
      }, (n) => progress.step(n));
      progress.step(4);
      await work.post(form.dataset.endpoint,
        { ...result.request, attachments: attachments.map((a) => a.upload) });
      progress.stop();
      form.reset();
      files.clear();
      doc.getElementById('report-page').hidden = true;
      const codePanel = doc.getElementById('code-panel');
      codePanel.querySelector('[data-code]').textContent = formatCode(result.code);
      codePanel.hidden = false;
      doc.getElementById('code-heading').focus();
    } catch (error) {
      progress.stop();
      showError(errorBox, messageFor(error, texts.error));
      button.disabled = false;
    }
  });
}
