// Small DOM helpers, alerts, formatting and the colours shared with the server's renderers.

/** h('div', {class: 'x', onclick: f}, child, 'text', [more]) → element. */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style' && typeof v === 'object') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}

let alertId = 0;

/** A dismissible error in the page-wide alert region (role=alert): never a silent failure. */
export function showError(error, context) {
  const region = document.getElementById('alerts');
  const text = (context ? context + ': ' : '') + (error && error.message ? error.message : String(error));
  // The same message twice in a row is shown once.
  for (const existing of region.querySelectorAll('.alert-text')) if (existing.textContent === text) return;
  const id = 'alert-' + (++alertId);
  const box = h('div', { class: 'alert error', id },
    h('span', { class: 'alert-text' }, text),
    h('button', { type: 'button', class: 'icon', 'aria-label': 'Dismiss this message', onclick: () => box.remove() }, '×'));
  region.append(box);
  while (region.children.length > 4) region.firstElementChild.remove();
}

export function clearErrors() {
  clear(document.getElementById('alerts'));
}

/** A short success/info message (role=status), removed after a while. */
export function notify(text) {
  const region = document.getElementById('notices');
  const box = h('div', { class: 'alert info' }, text);
  region.append(box);
  setTimeout(() => box.remove(), 6000);
}

/** An error message inside a part of the page (role=alert so screen readers hear it). */
export function inlineError(error) {
  return h('p', { class: 'inline-error', role: 'alert' }, error && error.message ? error.message : String(error));
}

export function fmtNumber(v, digits = 4) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (typeof v !== 'number') return String(v);
  if (Number.isInteger(v)) return v.toLocaleString('en-US');
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e5)) return v.toExponential(2);
  return Number(v.toPrecision(digits)).toString();
}

export function fmtPercent(v, digits = 1) {
  return v === null || v === undefined ? '–' : (100 * v).toFixed(digits) + ' %';
}

export function fmtDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '–';
  const s = Math.max(0, Math.round(seconds));
  const hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = s % 60;
  return hh > 0 ? `${hh} h ${String(mm).padStart(2, '0')} min` : mm > 0 ? `${mm} min ${String(ss).padStart(2, '0')} s` : `${ss} s`;
}

export function fmtTime(iso) {
  if (!iso) return '–';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}

export function fmtBytes(n) {
  if (n < 1024) return n + ' B';
  if (n < 1024 * 1024) return (n / 1024).toFixed(1) + ' KB';
  if (n < 1024 * 1024 * 1024) return (n / 1024 / 1024).toFixed(1) + ' MB';
  return (n / 1024 / 1024 / 1024).toFixed(2) + ' GB';
}

function hsvToRgb(hue, s, v) {
  const hh = hue - Math.floor(hue);
  const scaled = hh * 6;
  const sector = Math.min(Math.floor(scaled), 5);
  const f = scaled - sector;
  const p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  const [r, g, b] = [[v, t, p], [q, v, p], [p, v, t], [p, q, v], [t, p, v], [v, p, q]][sector];
  const byte = (u) => Math.min(255, Math.max(0, Math.round(u * 255)));
  return [byte(r), byte(g), byte(b)];
}

/** The colour of a visual-token id: the same hash as the server's TokenMapRenderer (format=png). */
export function tokenColor(token) {
  let x = (Math.imul(token >>> 0, 0x9E3779B9) + 0x7F4A7C15) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x85EBCA6B) >>> 0;
  x = (x ^ (x >>> 13)) >>> 0;
  x = Math.imul(x, 0xC2B2AE35) >>> 0;
  x = (x ^ (x >>> 16)) >>> 0;
  const hue = (x & 0xFFFF) / 65536;
  const sat = 0.6 + 0.4 * ((x >>> 16) & 0xFF) / 255;
  const val = 0.7 + 0.3 * (x >>> 24) / 255;
  return hsvToRgb(hue, sat, val);
}

/** Segmentation class colours: the server's generated palette (class 0 black, golden-ratio hues). */
export function classColor(k) {
  if (k === 0) return [0, 0, 0];
  const hue = (k * 0.6180339887498949) % 1;
  return hsvToRgb(hue, [0.9, 0.6][Math.floor(k / 3) % 2], [1.0, 0.8, 0.6][k % 3]);
}

export const rgb = ([r, g, b]) => `rgb(${r}, ${g}, ${b})`;

/** Text colour (black/white) readable on a background colour. */
export function contrastText([r, g, b]) {
  return 0.299 * r + 0.587 * g + 0.114 * b > 140 ? '#000' : '#fff';
}

/** Runs async tasks with at most `limit` at a time. */
export async function pool(items, limit, fn) {
  const queue = [...items];
  const workers = Array.from({ length: Math.min(limit, queue.length) }, async () => {
    while (queue.length) await fn(queue.shift());
  });
  await Promise.all(workers);
}

export function statusBadge(status) {
  return h('span', { class: 'badge status-' + status, 'data-status': status }, status);
}

/** A model for pickers: its short name, ★ for the default, then its shape (the full name is the option's title). */
export function modelLabel(m) {
  const extra = [m.architecture, m.imageSize ? `${m.imageSize}px` : null,
    m.codebookSize ? `${m.codebookSize} codes` : null, m.classes ? `${m.classes} classes` : null].filter(Boolean).join(', ');
  return `${m.shortName || m.name || m.id}${m.isDefault ? ' ★' : ''} — ${extra}`;
}

/** The hover text of a model in a picker: its full name and id. */
export function modelTitle(m) {
  return m.name && m.name !== m.id ? `${m.name} (${m.id})` : m.id;
}

/** A picker option for a model: the short label, the full name on hover. */
export function modelOption(m, selected, suffix = '') {
  return h('option', { value: m.id, selected, title: modelTitle(m) }, modelLabel(m) + suffix);
}

/** Keeps a closed picker's hover text on its chosen option's full name (an option's title shows only in the open list). */
export function titleFromOption(select) {
  const update = () => { select.title = select.selectedOptions[0]?.title || ''; };
  if (!select.dataset.titled) {   // pickers are refilled in place: one listener is enough
    select.dataset.titled = 'true';
    select.addEventListener('change', update);
  }
  update();
  return select;
}
