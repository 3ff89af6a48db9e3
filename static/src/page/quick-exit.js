// Quick exit: a plain link to the portal's /exit without JavaScript (it ends the
// session, then sends the browser on). With it, four more things:
// - the browser goes to the outside page at once, and /exit is asked on the way
//   out (a request that outlives the page): a slow or unreachable portal never
//   holds the reader back;
// - the exit replaces this page in history, and every move within the portal
//   replaces too, so the portal never holds more than one entry in the Back
//   list and Back after Quick exit goes where the reader was before;
// - Esc leaves: at once outside a text box, twice in a row inside one (so an
//   Esc meant for the box, or an input method's cancel, throws nothing away);
// - leaving this way never asks "leave the page?".
import { exiting, portalLinkOf } from './leaving.js';

const TEXT_BOX = 'textarea, select, [contenteditable=""], [contenteditable="true"], '
  + 'input:not([type=checkbox]):not([type=radio]):not([type=button]):not([type=submit])'
  + ':not([type=file]):not([type=reset])';
const TWICE_WITHIN_MS = 1500;

export function installQuickExit(doc) {
  const link = doc.getElementById('quick-exit');
  if (!link) return;
  const leave = (event) => {
    if (event) event.preventDefault();
    exiting();
    doc.body.hidden = true;
    fetch(link.href, { credentials: 'same-origin', keepalive: true, redirect: 'manual' }).catch(() => {});
    window.location.replace(link.dataset.outside || link.href);
  };
  link.addEventListener('click', leave);
  let lastEscape = 0;
  doc.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape' || event.isComposing || event.keyCode === 229) return;
    const inBox = event.target instanceof Element && event.target.closest(TEXT_BOX);
    const now = Date.now();
    if (!inBox || now - lastEscape < TWICE_WITHIN_MS) leave(event);
    else lastEscape = now;
  });
  replaceWithinThePortal(doc);
}

// Links to another page of the portal replace the current history entry.
function replaceWithinThePortal(doc) {
  doc.addEventListener('click', (event) => {
    const link = portalLinkOf(event);
    if (!link) return;
    event.preventDefault();
    window.location.replace(link.url.href);
  });
}
