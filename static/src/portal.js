// The one script of every reporter page. Everything here is an enhancement:
// each page works the same with JavaScript off.
import { installQuickExit } from './page/quick-exit.js';
import { enhanceCasePage } from './page/case-page.js';
import { enhanceCodeInput } from './page/code-input.js';
import { enhanceReportForm } from './page/report-form.js';

function start() {
  document.documentElement.classList.add('js');
  for (const el of document.querySelectorAll('[data-js-only]')) el.hidden = false;
  installQuickExit(document);
  enhanceReportForm(document);
  enhanceCasePage(document);
  // The code field of the "open your case again" form a closed case's page offers.
  if (!document.getElementById('case-form')) enhanceCodeInput(document.getElementById('code'));
}

if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
else start();
