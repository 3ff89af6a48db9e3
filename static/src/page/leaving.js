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
