// Progressive enhancement of /report: seal in the browser, post only ciphertext.
import { formatCode } from '../protocol/codes.js';
import {
  ApiError, csrfToken, messageFor, renewToken,
} from './http.js';
import { askBeforeLinks, guardUnsent } from './leaving.js';
import { Progress, showError, templateTexts } from './progress.js';
import {
  copyWords, currentAnswers, enhanceConditions, markProblems, showSummary,
} from './questions.js';
import { FileUploads, FilesNotReady } from './uploads.js';
import { Units } from './units.js';
import { SessionChanged, Work } from './work.js';
import { CryptoWorker } from './worker-client.js';

// What the form asks of its files (see FileUploads), when it asks for none.
const NO_FILES = {
  hasFiles: () => false,
  forReport: async () => ({ attachments: [], session: null }),
  hold: () => {},
  clear: () => {},
};

const wantsCopy = (doc) => Boolean(doc.getElementById('keep_copy') && doc.getElementById('keep_copy').checked);

// The code, in two halves of three groups that each stay on one line, the last
// group underlined (the page's markup: page_context.code_halves).
export function showCode(panel, code) {
  const groups = formatCode(code).split(' ');
  const halves = panel.querySelectorAll('.code-half');
  halves[0].textContent = groups.slice(0, 3).join(' ');
  const last = halves[1].querySelector('.code-last');
  last.textContent = groups[5];
  halves[1].replaceChildren(`${groups.slice(3, 5).join(' ')} `, last);
}

// A failure after which the report may still have been stored: no answer came
// (fetch fails with a TypeError), or not the portal's own (a proxy's page, a
// server fault). A refusal the portal explains stored nothing.
function answerLost(error) {
  return error instanceof TypeError
    || (error instanceof ApiError && (error.reason === 'http' || error.status >= 500));
}

// After a lost answer, a send refused because its case or files are taken
// (from another session, which may not know): the first may still have arrived.
const TAKEN = new Set(['conflict', 'no_upload']);

// What the reporter wrote and chose, without how its files were sent: a report
// sealed again only because its files went out again has not changed.
function wordsOf(what) {
  return JSON.stringify([what.fields, what.copyFields,
    what.attachments.map((a) => [a.name, a.type, a.size])]);
}

export function enhanceReportForm(doc) {
  const form = doc.getElementById('report-form');
  if (!form || typeof Worker === 'undefined' || typeof fetch === 'undefined') return;
  const texts = templateTexts(doc, 'progress-messages', 'data-step');
  const progress = new Progress(doc, texts, 4, new Units(doc));
  const errorBox = doc.getElementById('js-error');
  const button = form.querySelector('button[type=submit]');
  const worker = new CryptoWorker(form.dataset.worker, form.dataset.workerIntegrity);
  // A token that no longer holds is renewed, not answered with "reload the page":
  // a reload could clear everything the reporter wrote.
  const work = new Work(worker, form.dataset.endpointPow, csrfToken(form),
    form.dataset.work ? JSON.parse(form.dataset.work) : null, (mark) => renewToken(form, mark));
  // A questionnaire may ask for no files: then there is no picker, and nothing to send.
  const files = form.querySelector('#files-field')
    ? new FileUploads(doc, form, worker, work)
    : NO_FILES;
  const rules = JSON.parse(form.dataset.rules);
  let sent = false;
  let codeOnScreen = false; // shown once: leaving, or changing the language, loses it
  // A send whose answer never came (the link broke): the report may have arrived.
  // The next send is sealed for the same case, and the very same bytes if
  // nothing changed, so the portal stores it once and says it has it.
  let unsure = null;
  // Load libsodium and solve the proof of work now, while the reporter writes;
  // a failure shows on use.
  worker.start().catch(() => {});
  work.prepare().catch(() => {});
  // Leaving with words not sent, or with the new code on screen, asks first (Quick
  // exit never does).
  guardUnsent(() => codeOnScreen || (!sent && (files.hasFiles()
    || Object.keys(currentAnswers(form, rules).answers).length > 0)));
  askBeforeLinks(doc, texts['leave-code'], () => codeOnScreen);
  enhanceConditions(form, rules);

  doc.getElementById('seal-notice-server').hidden = true;
  doc.getElementById('seal-notice-browser').hidden = false;

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!form.reportValidity()) return;
    errorBox.hidden = true;
    // The questions are checked as the server checks them, before anything is sealed.
    const { answers, problems } = currentAnswers(form, rules);
    const listed = markProblems(doc, form, rules, problems, texts);
    if (listed.length) {
      showSummary(doc, errorBox, texts.problems, listed);
      return;
    }
    button.disabled = true;
    progress.start();
    try {
      let result;
      let answer;
      for (let tries = 1; ; tries += 1) {
        // Files sent in a session that has ended since go out again first; while
        // files go out, one may still be removed.
        files.hold(false);
        const { attachments, session } = await files.forReport(() => progress.note('waiting'));
        files.hold(true); // from here the report names these files
        const what = {
          attachments,
          organization: JSON.parse(form.dataset.organization),
          form: rules.form,
          version: rules.version,
          formDigest: rules.digest,
          fields: answers,
          copyFields: wantsCopy(doc) ? copyWords(doc, rules, answers) : null,
          lang: doc.documentElement.lang,
        };
        const sealedFrom = JSON.stringify(what);
        result = unsure && unsure.sealedFrom === sealedFrom ? unsure.result
          : await worker.run('seal-report', {
            ...what, again: unsure && { code: unsure.result.code, mailbox: unsure.result.request.mailbox },
          }, (n) => progress.step(n));
        progress.step(4);
        try {
          answer = await work.post(form.dataset.endpoint,
            { ...result.request, attachments: attachments.map((a) => a.upload) },
            attachments.length > 0 ? session : null);
          // Only the portal's own answer says it is stored (not a page in between).
          if (!answer || answer.ok !== true) throw new ApiError(200, 'http', '');
          if (answer.changed && unsure && wordsOf(what) === unsure.words) answer.changed = false;
          break;
        } catch (error) {
          // The latest send whose answer was lost: the one the next is compared with.
          if (answerLost(error)) {
            unsure = { result, sealedFrom, words: unsure ? unsure.words : wordsOf(what) };
          }
          // The session ended while the reporter wrote, and its files with it: they
          // are sent again in the new one, and the report sealed again to name them.
          if (!(error instanceof SessionChanged) || tries > 1) throw error;
        }
      }
      unsure = null;
      sent = true;
      progress.stop();
      form.reset();
      files.clear();
      doc.getElementById('report-page').hidden = true;
      const codePanel = doc.getElementById('code-panel');
      showCode(codePanel, result.code);
      // The code is shown once: changing the language now would lose it.
      const hint = doc.getElementById('language-hint');
      if (hint) hint.textContent = hint.dataset.codeShown;
      // Sealed again after a change, but the first send had arrived: say what
      // the case holds, and where the rest can go.
      doc.getElementById('arrived-before').hidden = !(answer && answer.changed);
      codePanel.hidden = false;
      codeOnScreen = true;
      doc.title = `${doc.getElementById('code-heading').textContent} · ${doc.title.split(' · ').pop()}`;
      doc.getElementById('code-heading').focus();
    } catch (error) {
      progress.stop();
      let shown = messageFor(error, texts.error);
      if (error instanceof FilesNotReady) shown = error.message;
      else if (unsure && (answerLost(error) || TAKEN.has(error.reason))) shown = texts.unsure;
      showError(errorBox, shown);
      button.disabled = false;
      files.hold(false);
    }
  });
}
