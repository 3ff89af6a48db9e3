// Proofs of work for this page's submissions (see portal/web/work.py). A proof
// is solved in the crypto worker as soon as the page loads, while the reporter
// writes, so pressing Send rarely waits for it; each one is used once. The first
// challenge may come in the page itself (`first`): one round trip fewer.
//
// `token` is the page's form token, which every request of the page carries;
// `renew`, if given, fetches a new one ({ token, newSession, otherUploads }) when
// the portal no longer holds it, given the mark of the page's uploads. `session`
// counts the sessions the page has been in: it moves on when a renewal found the
// old session ended, and whatever was uploaded in the old one is gone with it.
// An upload's start answers the mark of its session's uploads (`uploader`): a
// renewal into a session whose uploads are not those marked also moves on,
// though the session is not new to the portal (another tab of the browser
// started it), and so does a start answering another mark than the page's.
import { ApiError, postJson } from './http.js';

// A request that belongs to the session it began in (a file's upload, a report
// naming uploaded files) found that session ended: what began there must begin
// again in the new one. Nothing of the request was stored.
export class SessionChanged extends Error {}

export class Work {
  constructor(worker, endpoint, token, first = null, renew = null) {
    this.worker = worker;
    this.endpoint = endpoint;
    this.token = token;
    this.first = first;
    this.renew = renew;
    this.ready = null;
    this.unspent = null; // a proof a refused request carried back unspent
    this.session = 0;
    this.uploader = null; // how the portal names the uploads of the page's session
    this.renewing = null;
  }

  solve() {
    const given = this.first;
    this.first = null;
    const offer = given ? Promise.resolve(given)
      : this.withToken((token) => postJson(this.endpoint, token, {}));
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
    if (this.unspent) {
      const proof = this.unspent;
      this.unspent = null;
      return proof;
    }
    const proof = await this.prepare();
    this.ready = null;
    this.prepare();
    return proof;
  }

  // `send(token)` with the page's form token; if the portal refuses the token
  // (the session ended while the reporter wrote, or a report sent from another
  // tab spent it), once more with a new one. Requests refused at the same
  // moment (a report and a file's part) share one renewal. A request that
  // belongs `within` a session (a file's part, a report naming uploads) is not
  // sent in another: SessionChanged instead, before or after a renewal.
  // `send` is given the session its token belongs to as well, read with it.
  async withToken(send, within = null) {
    const { token, session } = this;
    if (within !== null && session !== within) throw new SessionChanged();
    try {
      return await send(token, session);
    } catch (error) {
      if (!this.renew || !(error instanceof ApiError) || error.reason !== 'csrf') throw error;
    }
    await this.renewedAfter(token);
    if (within !== null && this.session !== within) throw new SessionChanged();
    return send(this.token, this.session);
  }

  // An upload's start, sent in `session`, answered the mark of its session's
  // uploads; answers the session the upload belongs to. Another mark than the
  // page's means the portal lost the page's uploads under it (two requests of
  // the session wrote it at once): what was sent before goes out again.
  uploadedIn(session, uploader) {
    if (session !== this.session || typeof uploader !== 'string') return session;
    if (this.uploader !== null && uploader !== this.uploader) this.session += 1;
    this.uploader = uploader;
    return this.session;
  }

  async renewedAfter(stale) {
    if (this.token !== stale) return; // renewed meanwhile, for another request
    if (!this.renewing) {
      this.renewing = this.renew(this.uploader).then(({ token, newSession, otherUploads }) => {
        this.token = token;
        if (newSession || otherUploads) {
          this.session += 1;
          this.uploader = null;
        }
      }).finally(() => { this.renewing = null; });
    }
    await this.renewing;
  }

  // Send `body` with a proof. If the portal no longer holds its challenge (a
  // long pause), solve a fresh one, once; the token is renewed as withToken
  // says, and a refused token leaves the proof unspent, so the same proof goes
  // with the new token.
  async post(url, body, within = null) {
    return (await this.postIn(url, body, within)).answer;
  }

  // The same, answering { answer, session }: the session the request was made
  // in, for what it made there (an upload), whatever renewal came since.
  async postIn(url, body, within = null) {
    let pow = await this.take();
    let solvedAgain = false;
    for (;;) {
      try {
        return await this.withToken(async (token, session) => (
          { answer: await postJson(url, token, { ...body, pow }), session }
        ), within);
      } catch (error) {
        if (error instanceof SessionChanged) this.unspent = pow; // nothing was sent with it
        if (!(error instanceof ApiError) || error.reason !== 'work' || solvedAgain) throw error;
        solvedAgain = true;
        pow = await this.take();
      }
    }
  }
}
