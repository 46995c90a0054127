// Images served by the API (collection thumbnails and patch crops) in <img> elements. An <img src> cannot send the
// X-Api-Key header, so when Settings holds a key the picture is fetched with it and shown from a blob URL.
import { get, apiKey } from './api.js';
import { h } from './ui.js';

/** An <img> of an API image URL; `props` as for h(). A picture that cannot be read is hidden (its caption stays). */
export function apiImage(url, props = {}) {
  const img = h('img', { alt: '', ...props });
  img.addEventListener('error', () => { img.hidden = true; });
  if (!apiKey()) {
    img.src = url;
    return img;
  }
  get(url).then((blob) => {
    const objectUrl = URL.createObjectURL(blob);
    img.addEventListener('load', () => URL.revokeObjectURL(objectUrl), { once: true });
    img.src = objectUrl;
  }, () => { img.hidden = true; });
  return img;
}
