// JSON requests to the portal's /api/, with the page's CSRF token.
// `shown` is the server's message in the reader's language, when it sent one.
export class ApiError extends Error {
  constructor(status, reason, shown) {
    super(shown || `HTTP ${status}`);
    this.status = status;
    this.reason = reason;
    this.shown = shown || '';
  }
}

// The words to show for a failure: the server's own, else the page's fallback
// (an exception from the worker or the network is never shown raw).
export function messageFor(error, fallback) {
  return error instanceof ApiError && error.shown ? error.shown : fallback;
}

export async function postJson(url, token, body) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': token },
    body: JSON.stringify(body || {}),
  });
  return answerOf(response);
}

// The JSON a response carries, or the ApiError it stands for.
export async function answerOf(response) {
  let payload;
  try {
    payload = await response.json();
  } catch (_) {
    payload = {};
  }
  return answerFrom(response.status, payload);
}

// `payload` (the answer's JSON, {} if it had none) if `status` is a success,
// else the ApiError it stands for: the same for a fetch and an XMLHttpRequest.
export function answerFrom(status, payload) {
  if (status < 200 || status > 299) {
    const error = new ApiError(status, payload.error || 'http', payload.message);
    error.next = payload.next;
    throw error;
  }
  return payload;
}

export function csrfToken(form) {
  return form.elements.namedItem('csrf_token').value;
}

// A new form token for `form` from the portal (GET /api/form-token), written into
// the form for whatever reads it next; `newSession` says the old session had
// ended (what was uploaded in it is gone). Given the mark of the page's uploads
// (a header, never in the URL), `otherUploads` says the session's are not those.
export async function renewToken(form, uploadsMark = null) {
  const response = await fetch(form.dataset.endpointToken, {
    credentials: 'same-origin',
    cache: 'no-store',
    headers: uploadsMark ? { 'X-Uploads-Mark': uploadsMark } : {},
  });
  const payload = await answerOf(response);
  if (typeof payload.token !== 'string') throw new ApiError(response.status, 'http', '');
  form.elements.namedItem('csrf_token').value = payload.token;
  return {
    token: payload.token,
    newSession: payload.new_session === true,
    otherUploads: payload.other_uploads === true,
  };
}
