// The page's token renewal request (static/src/page/http.js renewToken) against a
// fake fetch: the mark of the page's uploads goes in a header, never in the URL,
// and the answer is read as the portal gives it.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { renewToken } from '../../static/src/page/http.js';

function formWithToken() {
  const field = { value: 'old' };
  return { dataset: { endpointToken: '/api/form-token' }, elements: { namedItem: () => field }, field };
}

function answering(body) {
  const asked = [];
  globalThis.fetch = async (url, init) => {
    asked.push([url, init]);
    return new globalThis.Response(JSON.stringify(body), {
      status: 200, headers: { 'Content-Type': 'application/json' },
    });
  };
  return asked;
}

test('a renewal sends the mark of the uploads in a header and reads whether they are others', async () => {
  const asked = answering({ token: 'new', new_session: false, other_uploads: true });
  const form = formWithToken();
  assert.deepEqual(await renewToken(form, 'U0'), { token: 'new', newSession: false, otherUploads: true });
  const [[url, init]] = asked;
  assert.equal(url, '/api/form-token');
  assert.equal(init.headers['X-Uploads-Mark'], 'U0');
  assert.equal(form.field.value, 'new');
});

test('a renewal of a page that uploaded nothing sends no mark', async () => {
  const asked = answering({ token: 'new', new_session: true, other_uploads: false });
  assert.deepEqual(await renewToken(formWithToken(), null), { token: 'new', newSession: true, otherUploads: false });
  assert.deepEqual(asked[0][1].headers, {});
});
