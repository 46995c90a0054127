// The single-page app: hash routes (#/explore, #/train, #/jobs/<id>, #/collections[/<id>], #/models), the live-update
// indicator and settings. Each page module keeps its state while hidden (uploaded images stay
// when you look at a job and come back).
import * as hub from './hub.js';
import { get, apiKey, setApiKey } from './api.js';
import { showError, notify, clearErrors } from './ui.js';
import * as explore from './explore.js';
import * as train from './train.js';
import * as job from './job.js';
import * as models from './models.js';
import * as collections from './collections.js';

const pages = { explore, train, job, collections, models };
const initialised = new Set();
let current = null;

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, query] = raw.split('?');
  const parts = path.split('/').filter(Boolean).map(decodeURIComponent);
  const params = Object.fromEntries(new URLSearchParams(query || ''));
  if (parts[0] === 'jobs' && parts[1]) return { page: 'job', params: { ...params, id: parts[1] } };
  if (parts[0] === 'train' && parts[1]) return { page: 'job', params: { ...params, id: parts[1] } };
  if (parts[0] === 'collections' && parts[1]) return { page: 'collections', params: { ...params, id: parts[1] } };
  if (pages[parts[0]]) return { page: parts[0], params };
  return { page: 'explore', params };
}

async function route() {
  const { page, params } = parseHash();
  for (const section of document.querySelectorAll('main > .page')) section.hidden = section.dataset.page !== page;
  for (const a of document.querySelectorAll('nav a[data-page]')) {
    const active = a.dataset.page === page || (page === 'job' && a.dataset.page === 'train');
    if (active) a.setAttribute('aria-current', 'page'); else a.removeAttribute('aria-current');
  }
  const module = pages[page];
  const section = document.getElementById('page-' + page);
  if (current && current !== module && current.hide) current.hide();
  current = module;
  try {
    if (!initialised.has(page)) {
      initialised.add(page);
      module.init(section);
    }
    await module.show(params);
  } catch (e) {
    showError(e, 'Could not show the page');
  }
  const title = section.querySelector('h1');
  document.title = (title ? title.textContent + ' · ' : '') + 'BeitV2';
}

function liveIndicator() {
  const el = document.getElementById('live-state');
  const text = { connecting: 'live: connecting…', connected: 'live: connected', reconnecting: 'live: reconnecting…',
    disconnected: 'live: offline (retrying)', unavailable: 'live: SignalR client missing', unauthorized: 'live: needs the API key (Settings)' };
  hub.on('state', (s) => {
    el.dataset.state = s;
    el.textContent = text[s] || s;
  });
}

async function deviceInfo() {
  try {
    const info = await get('/api/v1/info');
    document.getElementById('device').textContent = `device: ${info.device} · ${info.threads} threads · v${info.version}`;
  } catch (e) {
    showError(e, 'Cannot read /api/v1/info');
  }
}

function settings() {
  const input = document.getElementById('api-key');
  const details = document.getElementById('settings');
  const needed = document.getElementById('api-key-needed');
  input.value = apiKey();
  // A 401 anywhere (a fetch, an upload, the hub): open Settings at the key field, once per burst of 401s.
  window.addEventListener('beitv2:unauthorized', () => {
    if (!needed.hidden) return;
    needed.hidden = false;
    details.open = true;
    input.scrollIntoView({ block: 'nearest' });
    if (!document.activeElement || document.activeElement === document.body) input.focus();
  });
  document.getElementById('settings-form').addEventListener('submit', (e) => {
    e.preventDefault();
    setApiKey(input.value.trim());
    needed.hidden = true;
    clearErrors();
    notify(input.value.trim() ? 'API key saved in this browser.' : 'API key removed.');
    // Everything the page shows again, with the new key.
    hub.restart();
    deviceInfo();
    route();
  });
}

window.addEventListener('hashchange', route);
window.addEventListener('unhandledrejection', (e) => {
  showError(e.reason, 'Unexpected error');
  e.preventDefault();
});

liveIndicator();
settings();
if (!window.signalR) showError('The SignalR client (/lib/signalr/signalr.min.js) did not load: live training updates are off. Build the app with npm available (see README).');
hub.start();
hub.subscribeAll();
deviceInfo();
route();
