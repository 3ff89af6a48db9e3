// Progressive enhancement of /report: seal in the browser, post only ciphertext.
import { formatCode } from '../crypto/codes.js';
import { runInWorker } from './worker-client.js';

const TOTAL_STEPS = 4;

function messages(doc) {
  const out = {};
  const tpl = doc.getElementById('progress-messages');
  for (const el of tpl.content.querySelectorAll('[data-step]')) out[el.dataset.step] = el.textContent;
  return out;
}

function collectFields(form) {
  const fields = {};
  for (const name of form.dataset.fields.split(' ')) {
    const el = form.elements.namedItem(name);
    fields[name] = el && typeof el.value === 'string' ? el.value : '';
  }
  return fields;
}

async function postJson(url, token, body) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': token },
    body: JSON.stringify(body),
  });
  let payload = {};
  try {
    payload = await response.json();
  } catch (_) {
    payload = {};
  }
  if (!response.ok) throw new Error(payload.message || `HTTP ${response.status}`);
  return payload;
}

export function enhanceReportForm(doc) {
  const form = doc.getElementById('report-form');
  if (!form || typeof Worker === 'undefined' || typeof fetch === 'undefined') return;
  const text = messages(doc);
  const panel = doc.getElementById('progress-panel');
  const bar = doc.getElementById('progress-bar');
  const status = doc.getElementById('progress-text');
  const elapsed = doc.getElementById('progress-elapsed');
  const errorBox = doc.getElementById('js-error');
  const button = form.querySelector('button[type=submit]');

  doc.getElementById('seal-notice-server').hidden = true;
  doc.getElementById('seal-notice-browser').hidden = false;

  const setStep = (step) => {
    bar.value = step;
    status.textContent = `${text[step]} (${step}/${TOTAL_STEPS})`;
  };

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    errorBox.hidden = true;
    button.disabled = true;
    panel.hidden = false;
    const started = Date.now();
    const timer = window.setInterval(() => {
      elapsed.textContent = `${text.elapsed} ${Math.round((Date.now() - started) / 1000)}`;
    }, 1000);
    try {
      const result = await runInWorker(form.dataset.worker, 'seal-report', {
        organization: JSON.parse(form.dataset.organization),
        form: form.dataset.formId,
        version: Number(form.dataset.formVersion),
        fields: collectFields(form),
      }, setStep);
      setStep(4);
      await postJson(form.dataset.endpoint, form.elements.namedItem('csrf_token').value, result.request);
      form.reset();
      doc.getElementById('report-page').hidden = true;
      const codePanel = doc.getElementById('code-panel');
      codePanel.querySelector('[data-code]').textContent = formatCode(result.code);
      codePanel.hidden = false;
      doc.getElementById('code-heading').focus();
    } catch (error) {
      panel.hidden = true;
      errorBox.textContent = `${text.error} (${error.message})`;
      errorBox.hidden = false;
      errorBox.focus();
      button.disabled = false;
    } finally {
      window.clearInterval(timer);
    }
  });
}
