// One crypto worker per page, reused for every operation (loading libsodium
// once matters without JIT), with progress steps per call.
export class CryptoWorker {
  constructor(url) {
    this.url = url;
    this.worker = null;
    this.calls = new Map();
    this.nextId = 1;
  }

  start() {
    if (this.worker) return;
    this.worker = new Worker(this.url);
    this.worker.addEventListener('message', (event) => {
      const msg = event.data;
      const call = this.calls.get(msg.id);
      if (!call) return;
      if (msg.type === 'progress') {
        call.onProgress(msg.step);
        return;
      }
      this.calls.delete(msg.id);
      if (msg.type === 'done') call.resolve(msg.result);
      else call.reject(new Error(msg.message));
    });
    this.worker.addEventListener('error', (event) => {
      const error = new Error(event.message || 'the encryption worker failed to start');
      for (const call of this.calls.values()) call.reject(error);
      this.calls.clear();
      this.worker.terminate();
      this.worker = null;
    });
  }

  run(op, args, onProgress = () => {}) {
    return new Promise((resolve, reject) => {
      try {
        this.start();
      } catch (error) {
        reject(error);
        return;
      }
      const id = this.nextId;
      this.nextId += 1;
      this.calls.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, op, args });
    });
  }
}
