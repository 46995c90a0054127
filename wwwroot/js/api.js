// The REST API (/api/v1, described at /swagger). Every failure becomes an ApiError whose message is readable:
// the ProblemDetails `detail` (or `title`) the service sends, or a plain sentence for network errors.

const KEY_STORAGE = 'beitv2.apiKey';

export class ApiError extends Error {
  constructor(message, status, title) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.title = title;
  }
}

export function apiKey() {
  try { return localStorage.getItem(KEY_STORAGE) || ''; } catch { return ''; }
}

export function setApiKey(key) {
  try {
    if (key) localStorage.setItem(KEY_STORAGE, key); else localStorage.removeItem(KEY_STORAGE);
  } catch { /* storage disabled: the key lasts for this page only */ }
}

/**
 * A 401: the page opens Settings at the key field (app.js listens for 'beitv2:unauthorized'), and the
 * message says where to enter the key (the service's detail usually does already).
 */
export function unauthorized(message) {
  window.dispatchEvent(new CustomEvent('beitv2:unauthorized'));
  return /Settings/.test(message) ? message : `${message} Enter the API key under Settings (bottom of the page).`;
}

function headers(extra) {
  const h = new Headers(extra || {});
  const key = apiKey();
  if (key) h.set('X-Api-Key', key);
  return h;
}

async function problem(response) {
  let title = response.statusText || 'Error';
  let detail = '';
  const type = response.headers.get('content-type') || '';
  try {
    if (type.includes('json')) {
      const body = await response.json();
      title = body.title || title;
      detail = body.detail || '';
      if (!detail && body.errors) detail = Object.values(body.errors).flat().join(' ');
    } else {
      detail = (await response.text()).slice(0, 300);
    }
  } catch { /* no readable body */ }
  let message = detail || title;
  if (response.status === 401) message = unauthorized(message);
  if (response.status === 429) message = `The service is busy (${message}). Try again in a moment.`;
  return new ApiError(`${message} (HTTP ${response.status})`, response.status, title);
}

/** fetch + ProblemDetails → ApiError; returns parsed JSON (or null for 204). */
export async function request(path, options = {}) {
  let response;
  try {
    response = await fetch(path, { ...options, headers: headers(options.headers) });
  } catch (e) {
    throw new ApiError(`Cannot reach the service (${e.message}). Is it running?`, 0, 'Network error');
  }
  if (!response.ok) throw await problem(response);
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  return type.includes('json') ? response.json() : response.blob();
}

export const get = (path) => request(path);

export const postJson = (path, body) => request(path, {
  method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body),
});

export const post = (path, body) => request(path, { method: 'POST', body });

export const del = (path) => request(path, { method: 'DELETE' });

/** One image as a multipart part named `image` (the inference routes). */
export function imageForm(blob, name) {
  const form = new FormData();
  form.append('image', blob, name || 'image');
  return form;
}

/** multipart upload with progress (XMLHttpRequest: fetch has no upload progress). */
export function upload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', path);
    const key = apiKey();
    if (key) xhr.setRequestHeader('X-Api-Key', key);
    xhr.responseType = 'text';
    xhr.upload.onprogress = (e) => { if (e.lengthComputable && onProgress) onProgress(e.loaded / e.total); };
    xhr.onerror = () => reject(new ApiError('Cannot reach the service: the upload failed.', 0, 'Network error'));
    xhr.onload = () => {
      let body = null;
      try { body = xhr.responseText ? JSON.parse(xhr.responseText) : null; } catch { /* not JSON */ }
      if (xhr.status >= 200 && xhr.status < 300) { resolve(body); return; }
      let message = (body && (body.detail || body.title)) || xhr.statusText || 'Upload failed';
      if (xhr.status === 401) message = unauthorized(message);
      reject(new ApiError(`${message} (HTTP ${xhr.status})`, xhr.status, body && body.title));
    };
    xhr.send(form);
  });
}
