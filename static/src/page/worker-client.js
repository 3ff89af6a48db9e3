// One crypto worker per page, reused for every operation (loading libsodium
// once matters without JIT), with progress steps per call.
export class CryptoWorker {
  constructor(url, integrity) {
    this.url = url;
    this.integrity = integrity;
    this.worker = null;
    this.ready = null;
    this.calls = new Map();
    this.nextId = 1;
  }

  // Starts loading the library; resolves once the worker runs. Safe to call again.
  start() {
    if (!this.ready) {
      this.ready = this.load().catch((error) => {
        this.ready = null; // let a later call try again
        throw error;
      });
    }
    return this.ready;
  }

  // Subresource Integrity for the crypto library: `new Worker(url)` cannot
  // carry an integrity attribute, so the script is fetched with its integrity
  // metadata (the browser refuses bytes that differ) and exactly those bytes run.
  async load() {
    const response = await fetch(this.url, {
      integrity: this.integrity, credentials: 'same-origin', cache: 'default',
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const script = new Blob([await response.arrayBuffer()], { type: 'text/javascript' });
    this.worker = new Worker(URL.createObjectURL(script));
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
      this.ready = null;
    });
  }

  run(op, args, onProgress = () => {}) {
    return this.start().then(() => new Promise((resolve, reject) => {
      const id = this.nextId;
      this.nextId += 1;
      this.calls.set(id, { resolve, reject, onProgress });
      this.worker.postMessage({ id, op, args });
    }));
  }
}
