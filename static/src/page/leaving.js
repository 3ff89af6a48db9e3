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

// The portal page a click on a link goes to, or null: a link elsewhere, within
// this page (skip link, error summary), or opened in another tab or window.
export function portalLinkOf(event) {
  if (event.defaultPrevented || event.button !== 0
      || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return null;
  const anchor = event.target instanceof Element && event.target.closest('a[href]');
  if (!anchor || anchor.target || anchor.hasAttribute('download')) return null;
  const url = new URL(anchor.href, window.location.href);
  if (url.origin !== window.location.origin) return null;
  if (url.pathname === window.location.pathname && url.search === window.location.search
      && url.hash) return null;
  return { anchor, url };
}

// A link within the portal, while `when()` holds, asks `question` in the page's
// own words first (the browser's "leave this page?" names nothing): on the page
// showing a code that is shown once. Asked before the link's other handlers
// (capture), and not for Quick exit; once answered yes, the browser does not
// ask again.
export function askBeforeLinks(doc, question, when) {
  doc.addEventListener('click', (event) => {
    const link = portalLinkOf(event);
    if (!link || link.anchor.id === 'quick-exit' || !when()) return;
    if (window.confirm(question)) {
      exiting();
      return;
    }
    event.preventDefault();
    event.stopImmediatePropagation();
  }, true);
}
