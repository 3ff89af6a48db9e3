// Bench page: runs the bench worker and leaves the result where Selenium reads it.
const params = new URLSearchParams(window.location.search);
const worker = new Worker('worker.js');
worker.onmessage = (event) => {
  window.benchResult = event.data;
  document.title = 'done';
};
worker.onerror = (event) => {
  window.benchResult = { error: event.message || 'worker failed' };
  document.title = 'done';
};
fetch('organization.json').then((r) => r.json()).then((organization) => {
  worker.postMessage({
    organization,
    fileMiB: Number(params.get('mib') || 64),
    derivations: Number(params.get('derivations') || 3),
  });
});
