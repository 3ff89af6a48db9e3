// Proofs of work for this page's submissions (see portal/web/work.py). A proof
// is solved in the crypto worker as soon as the page loads, while the reporter
// writes, so pressing Send rarely waits for it; each one is used once. The first
// challenge may come in the page itself (`first`): one round trip fewer.
import { ApiError, postJson } from './http.js';

export class Work {
  constructor(worker, endpoint, token, first = null) {
    this.worker = worker;
    this.endpoint = endpoint;
    this.token = token;
    this.first = first;
    this.ready = null;
  }

  solve() {
    const given = this.first;
    this.first = null;
    const offer = given ? Promise.resolve(given) : postJson(this.endpoint, this.token, {});
    return offer.then((o) => this.worker.run('solve-work', o));
  }

  // Start solving the next proof now.
  prepare() {
    if (!this.ready) {
      this.ready = this.solve();
      this.ready.catch(() => { this.ready = null; });
    }
    return this.ready;
  }

  // A proof for one submission; the next one is prepared at once.
  async take() {
    const proof = await this.prepare();
    this.ready = null;
    this.prepare();
    return proof;
  }

  // Send `body` with a proof; if the portal no longer holds its challenge
  // (a new session, a long pause), solve a fresh one and send once more.
  async post(url, body) {
    try {
      return await postJson(url, this.token, { ...body, pow: await this.take() });
    } catch (error) {
      if (!(error instanceof ApiError) || error.reason !== 'work') throw error;
      return postJson(url, this.token, { ...body, pow: await this.take() });
    }
  }
}
