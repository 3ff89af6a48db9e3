// Proofs of work for this page's submissions (see portal/web/work.py). A proof
// is solved in the crypto worker as soon as the page loads, while the reporter
// writes, so pressing Send rarely waits for it; each one is used once. The first
// challenge may come in the page itself (`first`): one round trip fewer.
//
// `token` is the page's form token, which every request of the page carries;
// `renew`, if given, fetches a new one when the portal no longer holds it.
import { ApiError, postJson } from './http.js';

export class Work {
  constructor(worker, endpoint, token, first = null, renew = null) {
    this.worker = worker;
    this.endpoint = endpoint;
    this.token = token;
    this.first = first;
    this.renew = renew;
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

  // Send `body` with a proof. If the portal no longer holds its challenge (a
  // long pause), solve a fresh one; if it no longer holds the page's token (the
  // session ended while the reporter wrote, or a report sent from another tab
  // spent it), take a new token and send the same proof, which a refused token
  // left unspent. Each at most once: a second refusal is shown.
  async post(url, body) {
    let pow = await this.take();
    let solvedAgain = false;
    let renewed = false;
    for (;;) {
      try {
        return await postJson(url, this.token, { ...body, pow });
      } catch (error) {
        const reason = error instanceof ApiError ? error.reason : null;
        if (reason === 'work' && !solvedAgain) {
          solvedAgain = true;
          pow = await this.take();
        } else if (reason === 'csrf' && this.renew && !renewed) {
          renewed = true;
          this.token = await this.renew();
        } else {
          throw error;
        }
      }
    }
  }
}
