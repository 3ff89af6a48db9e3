// Nothing a person typed is lost by leaving the page by mistake: while anything
// is unsent (or a new code is not confirmed), the browser asks before leaving.
// Quick exit never asks: it calls exiting() first.
const checks = new Set();
let leavingOnPurpose = false;

export function guardUnsent(hasUnsent) {
  checks.add(hasUnsent);
  if (checks.size === 1) {
    window.addEventListener('beforeunload', (event) => {
      if (leavingOnPurpose || ![...checks].some((check) => check())) return;
      event.preventDefault();
      event.returnValue = ''; // older engines need it set to ask
    });
  }
}

export function exiting() {
  leavingOnPurpose = true;
}

// A link within the portal, while `when()` holds, asks `question` in the page's
// own words first (the browser's "leave this page?" names nothing): on the page
// showing a code that is shown once. Asked before the link's other handlers
// (capture), and not for Quick exit or a link within the page; once answered
// yes, the browser does not ask again.
export function askBeforeLinks(doc, question, when) {
  doc.addEventListener('click', (event) => {
    const anchor = event.target instanceof Element && event.target.closest('a[href]');
    if (!anchor || anchor.id === 'quick-exit' || !when()) return;
    const url = new URL(anchor.href, window.location.href);
    if (url.origin !== window.location.origin) return;
    if (url.pathname === window.location.pathname && url.hash) return;
    if (window.confirm(question)) {
      exiting();
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);
}
