// Run one operation in the crypto worker, reporting progress steps.
export function runInWorker(workerUrl, op, args, onProgress) {
  return new Promise((resolve, reject) => {
    let worker;
    try {
      worker = new Worker(workerUrl);
    } catch (error) {
      reject(error);
      return;
    }
    worker.addEventListener('message', (event) => {
      const msg = event.data;
      if (msg.type === 'progress') {
        onProgress(msg.step);
        return;
      }
      worker.terminate();
      if (msg.type === 'done') resolve(msg.result);
      else reject(new Error(msg.message));
    });
    worker.addEventListener('error', (event) => {
      worker.terminate();
      reject(new Error(event.message || 'the encryption worker failed to start'));
    });
    worker.postMessage({ op, args });
  });
}
