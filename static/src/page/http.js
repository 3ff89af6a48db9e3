// JSON requests to the portal's /api/, with the page's CSRF token.
export class ApiError extends Error {
  constructor(status, reason, message) {
    super(message);
    this.status = status;
    this.reason = reason;
  }
}

export async function postJson(url, token, body) {
  const response = await fetch(url, {
    method: 'POST',
    credentials: 'same-origin',
    cache: 'no-store',
    headers: { 'Content-Type': 'application/json', 'X-CSRFToken': token },
    body: JSON.stringify(body || {}),
  });
  let payload = {};
  try {
    payload = await response.json();
  } catch (_) {
    payload = {};
  }
  if (!response.ok) {
    throw new ApiError(response.status, payload.error || 'http', payload.message || `HTTP ${response.status}`);
  }
  return payload;
}

export function csrfToken(form) {
  return form.elements.namedItem('csrf_token').value;
}
