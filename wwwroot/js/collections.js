// Collections (#/collections): datasets indexed by an embedding model (and optionally a tokenizer). The list with
// live progress of each index job, the create form and delete; #/collections/<id> is one collection: search by an
// image or by one of its items (#/collections/<id>?item=N), add images, and its code statistics.
import * as hub from './hub.js';
import { get, post, postJson, del, upload, imageForm } from './api.js';
import { h, clear, showError, inlineError, notify, statusBadge, fmtBytes, fmtTime, fmtPercent, fmtNumber, fmtDuration,
  modelOption, titleFromOption, tokenColor, rgb } from './ui.js';
import { apiImage } from './images.js';
import { drawCodeUsage } from './codeUsage.js';

/** The kinds of model POST /api/v1/embeddings serves (the collection's embedding model is one of them). */
const EMBEDDER_KINDS = ['backbone', 'classifier', 'pretrain'];
const K_CHOICES = [5, 10, 20, 50, 100];

let root;
const els = {};
let visible = false;
let models = [];
let datasets = [];
let list = new Map();        // id → collection, as GET /api/v1/collections answered (progress updated live)
let current = null;          // the collection view: { id, collection, query, searchSeq }
let listRefresh = null;

export function init(section) {
  root = section;
  els.title = h('h1', { id: 'collections-title' }, 'Collections');
  els.listView = buildListView();
  els.detailView = h('div', { id: 'collection-view', hidden: true });
  root.append(els.title, els.listView, els.detailView);

  hub.on('progress', (m) => {
    const progress = { step: m.step, steps: m.steps, etaSeconds: m.etaSeconds };
    const c = collectionOfJob(m.jobId);
    if (c) {
      c.progress = progress;
      renderRow(c);
    }
    if (current?.collection?.job === m.jobId) {
      current.collection.progress = progress;
      renderProgress();
    }
  });
  hub.on('status', (m) => {
    if (!collectionOfJob(m.jobId) && !(current && current.collection?.job === m.jobId)) return;
    scheduleRefresh();   // the collection's status follows its job's: read it again
  });
  hub.on('reconnected', () => { if (visible) scheduleRefresh(); });
}

export async function show(params = {}) {
  visible = true;
  if (params.id) {
    els.listView.hidden = true;
    els.detailView.hidden = false;
    await showCollection(params.id, params.item);
  } else {
    leaveCollection();
    els.title.textContent = 'Collections';
    els.listView.hidden = false;
    els.detailView.hidden = true;
    await Promise.all([loadChoices(), loadList()]);
  }
}

export function hide() {
  visible = false;
  leaveCollection();
}

function collectionOfJob(jobId) {
  for (const c of list.values()) if (c.job === jobId) return c;
  return null;
}

function scheduleRefresh() {
  if (!visible || listRefresh) return;
  listRefresh = setTimeout(async () => {
    listRefresh = null;
    if (current) await refreshCollection(); else await loadList();
  }, 300);
}

const modelById = (id) => models.find((m) => m.id === id);
const modelShort = (id) => { const m = modelById(id); return m ? (m.shortName || m.name || m.id) : id; };

// ------------------------------------------------------------------ list and create form

function buildListView() {
  els.name = h('input', { id: 'coll-name', name: 'name', type: 'text', maxlength: '100', required: true, autocomplete: 'off', placeholder: 'e.g. clothes' });
  els.dataset = h('select', { id: 'coll-dataset', name: 'dataset' });
  els.datasetHint = h('p', { class: 'hint' });
  els.embedder = h('select', { id: 'coll-embedder', name: 'embeddingModel' });
  els.tokenizer = h('select', { id: 'coll-tokenizer', name: 'tokenizer' });
  els.pooling = h('select', { id: 'coll-pooling', name: 'pooling' },
    h('option', { value: 'cls' }, 'cls ([CLS] token)'), h('option', { value: 'mean' }, 'mean (of the patch tokens)'));
  els.maxImages = h('input', { id: 'coll-max', name: 'maxImages', type: 'number', min: '1', step: '1', inputmode: 'numeric', placeholder: 'all' });
  els.formError = h('div', { class: 'form-error' });
  els.submit = h('button', { type: 'submit', id: 'create-collection' }, 'Create and index');
  const form = h('form', { class: 'stack-form job-form', id: 'collection-form', novalidate: true },
    h('div', { class: 'field' }, h('label', { for: 'coll-name' }, 'Name'), els.name),
    h('div', { class: 'field' }, h('label', { for: 'coll-dataset' }, 'Dataset'), els.dataset, els.datasetHint),
    h('div', { class: 'field' }, h('label', { for: 'coll-embedder' }, 'Embedding model'), els.embedder,
      h('p', { class: 'hint' }, 'Searches embed the query image with this model too.')),
    h('div', { class: 'field' }, h('label', { for: 'coll-tokenizer' }, 'Tokenizer (optional)'), els.tokenizer,
      h('p', { class: 'hint' }, 'With one, each image\'s token map is kept: code statistics and Explore\'s visual words over the collection.')),
    h('div', { class: 'field-grid' },
      h('div', { class: 'field' }, h('label', { for: 'coll-pooling' }, 'Pooling'), els.pooling),
      h('div', { class: 'field' }, h('label', { for: 'coll-max' }, 'Images (at most)'), els.maxImages)),
    els.formError,
    h('div', { class: 'actions' }, els.submit));
  form.addEventListener('submit', create);
  // Once the user picks a model, a refill of the pickers (a page switch) keeps it instead of the default.
  for (const s of [els.embedder, els.tokenizer]) s.addEventListener('change', () => { s.dataset.touched = '1'; });

  els.listBody = h('tbody', { id: 'collections-body' });
  els.listEmpty = h('p', { class: 'empty', hidden: true }, 'No collections yet: create one from a dataset.');
  return h('div', {},
    h('p', { class: 'lead' }, 'Index a dataset once, then find the images in it that look like yours, and see every patch a tokenizer maps to one visual word.'),
    h('div', { class: 'train-layout' },
      h('section', { class: 'panel', 'aria-labelledby': 'coll-create-title' }, h('h2', { id: 'coll-create-title' }, 'Create a collection'), form),
      h('section', { class: 'panel', 'aria-labelledby': 'coll-list-title' },
        h('div', { class: 'panel-head' }, h('h2', { id: 'coll-list-title' }, 'Collections'),
          h('button', { type: 'button', class: 'secondary small', onclick: () => loadList() }, 'Refresh')),
        h('div', { class: 'table-scroll' }, h('table', { class: 'collections-table' },
          h('thead', {}, h('tr', {}, ['Collection', 'Dataset', 'Models', 'Status', 'Items', 'Index', 'Disk', ''].map((c) => h('th', { scope: 'col' }, c)))),
          els.listBody)),
        els.listEmpty)));
}

async function loadChoices() {
  try {
    [models, datasets] = await Promise.all([get('/api/v1/models'), get('/api/v1/datasets')]);
  } catch (e) {
    showError(e, 'Cannot load models and datasets for the form');
  }
  fillForm();
}

/** The pickers, keeping what the user chose; first choices are what the API itself uses when a request names none. */
function fillForm() {
  const keep = (select) => select.dataset.touched ? select.value : null;
  const ds = datasets.filter((d) => d.kind === 'classification');
  const prevDs = els.dataset.value;
  clear(els.dataset);
  for (const d of ds) els.dataset.append(h('option', { value: d.id, selected: d.id === prevDs }, `${d.name || d.id} (${d.images.toLocaleString('en-US')} images${d.classes ? ', ' + d.classes + ' classes' : ''})`));
  if (!ds.some((d) => d.id === prevDs) && ds.some((d) => d.id === 'fashion-mnist')) els.dataset.value = 'fashion-mnist';
  els.datasetHint.textContent = ds.length ? '' : 'No classification dataset yet: upload a zip of class folders under Models & datasets.';

  const embedders = models.filter((m) => EMBEDDER_KINDS.includes(m.kind));
  const embedDefault = embedders.find((m) => (m.defaultFor || []).includes('embeddings'));
  const prevEmbed = keep(els.embedder) ?? embedDefault?.id;
  clear(els.embedder);
  if (!embedders.length) els.embedder.append(h('option', { value: '' }, 'none registered'));
  for (const m of embedders) els.embedder.append(modelOption(m, m.id === prevEmbed, ` [${m.kind}]${m === embedDefault ? ' (default)' : ''}`));
  titleFromOption(els.embedder);

  const tokenizers = models.filter((m) => m.kind === 'tokenizer');
  const tokDefault = tokenizers.find((m) => (m.defaultFor || []).includes('tokens')) || tokenizers.find((m) => m.isDefault);
  const prevTok = keep(els.tokenizer) ?? tokDefault?.id ?? '';
  clear(els.tokenizer);
  els.tokenizer.append(h('option', { value: '', selected: prevTok === '' }, '— none: search only —'));
  for (const m of tokenizers) els.tokenizer.append(modelOption(m, m.id === prevTok));
  titleFromOption(els.tokenizer);
}

async function create(e) {
  e.preventDefault();
  clear(els.formError);
  const problems = [];
  const name = els.name.value.trim();
  if (!name) problems.push('Give the collection a name.');
  if (!els.dataset.value) problems.push('Pick a dataset.');
  if (!els.embedder.value) problems.push('Pick an embedding model (none is registered: import or train one).');
  const max = els.maxImages.value.trim();
  if (max && (!Number.isInteger(Number(max)) || Number(max) < 1)) {
    problems.push('Images (at most) must be a whole number of at least 1, or empty for all.');
    els.maxImages.setAttribute('aria-invalid', 'true');
  } else els.maxImages.removeAttribute('aria-invalid');
  if (problems.length) {
    els.formError.append(inlineError(problems.join(' ')));
    return;
  }
  const body = { name, dataset: els.dataset.value, embeddingModel: els.embedder.value, pooling: els.pooling.value };
  if (els.tokenizer.value) body.tokenizer = els.tokenizer.value;
  if (max) body.maxImages = Number(max);
  els.submit.disabled = true;
  try {
    const accepted = await postJson('/api/v1/collections', body);
    notify(`Collection ${name} created: indexing ${els.dataset.value} (job ${accepted.job}).`);
    els.name.value = '';
    location.hash = '#/collections/' + encodeURIComponent(accepted.id);
  } catch (err) {
    els.formError.append(inlineError(err));
  } finally {
    els.submit.disabled = false;
  }
}

async function loadList() {
  let all;
  try {
    all = await get('/api/v1/collections');
  } catch (e) {
    showError(e, 'Cannot list the collections');
    return;
  }
  const previous = list;
  list = new Map(all.map((c) => [c.id, c]));
  for (const c of list.values()) if (previous.get(c.id)?.progress && c.status === 'indexing') c.progress = previous.get(c.id).progress;
  clear(els.listBody);
  const sorted = [...list.values()].sort((a, b) => (b.createdAt || '').localeCompare(a.createdAt || ''));
  for (const c of sorted) {
    c.row = h('tr', { 'data-collection-id': c.id });
    els.listBody.append(c.row);
    renderRow(c);
  }
  els.listEmpty.hidden = list.size > 0;
}

/** How far the index job is: its last progress message, else the items committed so far. */
function fraction(c) {
  if (c.status === 'ready') return 1;
  if (c.progress && c.progress.steps > 0) return Math.min(1, c.progress.step / c.progress.steps);
  return c.planned > 0 ? Math.min(1, c.items / c.planned) : 0;
}

function statusCell(c) {
  const parts = [statusBadge(c.status)];
  if (c.status === 'indexing') {
    const f = fraction(c);
    parts.push(h('div', {}, h('progress', { max: '1', value: String(f), 'aria-label': `Indexing ${c.name}` }),
      h('span', { class: 'hint' }, ` ${fmtPercent(f, 0)}${c.progress?.etaSeconds ? ' · ETA ' + fmtDuration(c.progress.etaSeconds) : ''}`)));
  }
  if (c.error) parts.push(h('div', { class: 'hint error-text' }, c.error.slice(0, 160)));
  if (c.job) parts.push(h('div', { class: 'hint' }, h('a', { href: '#/jobs/' + encodeURIComponent(c.job) }, 'index job')));
  return parts;
}

function renderRow(c) {
  if (!c.row) return;
  c.row.dataset.status = c.status;
  let armed = null;
  const remove = h('button', { type: 'button', class: 'small danger', 'data-action': 'delete', 'aria-label': `Delete ${c.name}`,
    onclick: async () => {
      if (!armed) { // two clicks: no modal dialog
        remove.textContent = 'Confirm delete';
        armed = setTimeout(() => { armed = null; remove.textContent = 'Delete'; }, 5000);
        return;
      }
      clearTimeout(armed);
      try {
        await del('/api/v1/collections/' + encodeURIComponent(c.id));
        notify(`Deleted the collection ${c.name}.`);
      } catch (e) { showError(e, 'Cannot delete the collection'); }
      await loadList();
    } }, 'Delete');
  clear(c.row).append(
    h('td', {}, h('a', { href: '#/collections/' + encodeURIComponent(c.id) }, h('strong', {}, c.name)), h('div', { class: 'hint' }, c.id)),
    h('td', {}, c.dataset),
    h('td', {}, h('div', { title: c.embeddingModel }, modelShort(c.embeddingModel), h('span', { class: 'hint' }, ` (${c.pooling})`)),
      h('div', { class: 'hint', title: c.tokenizer || '' }, c.tokenizer ? 'tokens: ' + modelShort(c.tokenizer) : 'no tokenizer')),
    h('td', {}, statusCell(c)),
    h('td', { class: 'num' }, itemsText(c)),
    h('td', {}, c.index ? `${c.index.kind}, ${c.index.quantization}` : '–'),
    h('td', { class: 'num' }, fmtBytes(c.diskBytes || 0)),
    h('td', { class: 'row-actions' }, remove));
}

function itemsText(c) {
  return c.status === 'ready' || !c.planned ? fmtNumber(c.items) : `${fmtNumber(c.items)} of ${fmtNumber(c.planned)}`;
}

// ------------------------------------------------------------------ one collection

function leaveCollection() {
  if (current?.subscribed) hub.unsubscribe(current.subscribed);
  current = null;
}

async function showCollection(id, item) {
  if (!current || current.id !== id) {
    leaveCollection();
    current = { id, collection: null, searchSeq: 0, subscribed: null };
    buildCollectionView();
  }
  if (!models.length) await loadChoices();
  await refreshCollection();
  if (item !== undefined && current?.collection?.status === 'ready') await search({ item: Number(item) });
}

function buildCollectionView() {
  const v = els.detailView;
  clear(v);
  els.title.textContent = 'Collection';
  els.view = {};
  const e = els.view;
  e.status = h('span', { id: 'collection-status' });
  e.meta = h('dl', { class: 'meta' });
  e.progress = h('div', { class: 'collection-progress', hidden: true });
  e.error = h('div', { class: 'collection-error' });
  e.search = buildSearchPanel();
  e.add = buildAddPanel();
  e.codes = h('section', { class: 'panel', id: 'collection-codes', hidden: true, 'aria-labelledby': 'codes-title' });
  v.append(
    h('p', { class: 'breadcrumb' }, h('a', { href: '#/collections' }, '← All collections')),
    h('div', { class: 'job-head' }, e.status),
    e.error,
    h('section', { class: 'panel', 'aria-label': 'About this collection' }, e.meta, e.progress),
    e.search, e.add, e.codes);
}

async function refreshCollection() {
  if (!current) return;
  const id = current.id;
  let c;
  try {
    c = await get('/api/v1/collections/' + encodeURIComponent(id));
  } catch (e) {
    if (current?.id !== id) return;
    els.title.textContent = e.status === 404 ? `No collection '${id}'` : 'Collection ' + id;
    clear(els.view.error).append(inlineError(e), e.status === 404 ? h('p', {}, h('a', { href: '#/collections' }, 'See all collections')) : null);
    els.view.search.hidden = els.view.add.hidden = true;
    return;
  }
  if (current?.id !== id) return;
  const before = current.collection;
  if (before?.progress && c.status === 'indexing') c.progress = before.progress;
  current.collection = c;
  list.set(c.id, { ...list.get(c.id), ...c });
  if (c.status === 'indexing' && c.job && current.subscribed !== c.job) {
    current.subscribed = c.job;
    hub.subscribe(c.job);
  }
  els.title.textContent = c.name;
  document.title = c.name + ' · BeitV2';
  renderCollection(c);
  if (c.tokenizer && c.status === 'ready' && before?.status !== 'ready') loadCodes(c);
}

function renderCollection(c) {
  const e = els.view;
  root.dataset.status = c.status;
  clear(e.status).append(statusBadge(c.status));
  const row = (k, v) => (v === null || v === undefined || v === '' ? [] : [h('dt', {}, k), h('dd', {}, v)]);
  clear(e.meta).append(...[
    row('Id', c.id), row('Dataset', c.dataset),
    row('Embedding model', h('span', { title: c.embeddingModel }, `${modelShort(c.embeddingModel)} · ${c.dim}-d, ${c.pooling} pooling`)),
    row('Tokenizer', c.tokenizer ? h('span', { title: c.tokenizer }, modelShort(c.tokenizer)) : 'none (no token maps)'),
    row('Items', itemsText(c)),
    row('Index', c.index ? `${c.index.kind}, ${c.index.quantization}, ${fmtBytes(c.index.bytes)}` : 'not built yet'),
    row('Disk', fmtBytes(c.diskBytes || 0)),
    row('Index job', c.job ? h('a', { href: '#/jobs/' + encodeURIComponent(c.job), id: 'collection-job' }, c.job) : null),
    row('Created', fmtTime(c.createdAt))].flat());
  renderProgress();
  clear(e.error);
  if (c.status === 'failed') e.error.append(inlineError(new Error(`Indexing failed: ${c.error || 'the index job did not say why.'}`)));
  if (c.status === 'cancelled') e.error.append(h('p', { class: 'missing' }, `Its index job was cancelled after ${fmtNumber(c.items)} of ${fmtNumber(c.planned)} images. Resume it on the `, h('a', { href: '#/jobs/' + encodeURIComponent(c.job) }, 'job page'), ', or delete the collection.'));
  const ready = c.status === 'ready';
  e.search.hidden = false;
  e.searchControls.hidden = !ready;
  e.searchWaiting.hidden = ready;
  e.searchWaiting.textContent = c.status === 'indexing' ? 'Search opens once the collection is indexed.' : 'Search needs an indexed collection.';
  e.add.hidden = !ready;
  e.codes.hidden = !(c.tokenizer && ready);
}

function renderProgress() {
  const c = current?.collection;
  const box = els.view?.progress;
  if (!c || !box) return;
  box.hidden = c.status !== 'indexing';
  if (box.hidden) return;
  const f = fraction(c);
  clear(box).append(
    h('progress', { max: '1', value: String(f), 'aria-label': 'Indexing progress', id: 'collection-progress' }),
    h('p', { class: 'progress-text' }, `Indexing: ${fmtPercent(f, 0)} of ${fmtNumber(c.planned)} images`,
      c.progress?.etaSeconds ? ` · ETA ${fmtDuration(c.progress.etaSeconds)}` : '', ' · ',
      h('a', { href: '#/jobs/' + encodeURIComponent(c.job) }, 'follow the job')));
}

// ------------------------------------------------------------------ search

function buildSearchPanel() {
  const e = els.view;
  const file = h('input', { id: 'search-file', type: 'file', accept: 'image/*', class: 'visually-hidden-input' });
  const drop = h('div', { class: 'dropzone', id: 'search-drop' },
    h('p', {}, h('strong', {}, 'Drop an image here'), ' or '),
    h('label', { for: 'search-file', class: 'button' }, 'Choose an image…'), file,
    h('p', { class: 'hint' }, 'The collection\'s embedding model embeds it; the most similar items come first.'));
  file.addEventListener('change', () => {
    if (file.files[0]) search({ file: file.files[0] });
    file.value = '';
  });
  drop.addEventListener('dragover', (ev) => { ev.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (ev) => {
    ev.preventDefault();
    drop.classList.remove('over');
    const f = [...(ev.dataTransfer?.files || [])][0];
    if (f) search({ file: f });
  });
  e.samples = h('div', { class: 'samples', role: 'list', 'aria-label': 'Sample images to search with' });
  loadSamples(e.samples);
  e.k = h('select', { id: 'search-k' }, K_CHOICES.map((k) => h('option', { value: String(k), selected: k === 10 }, String(k))));
  e.k.addEventListener('change', () => { if (current?.query) search(current.query); });
  e.query = h('div', { class: 'search-query', id: 'search-query' });
  e.results = h('div', { id: 'search-results', 'aria-live': 'polite' });
  e.searchWaiting = h('p', { class: 'hint', hidden: true });
  e.searchControls = h('div', {},
    h('div', { class: 'input-row' }, drop, h('div', { class: 'samples-box' }, h('h3', { class: 'small-heading' }, 'Or search with a sample'), e.samples)),
    h('div', { class: 'range' }, h('label', { for: 'search-k' }, 'Results'), e.k),
    e.query, e.results);
  return h('section', { class: 'panel', id: 'collection-search', 'aria-labelledby': 'search-title' },
    h('h2', { id: 'search-title' }, 'Search by image'), e.searchWaiting, e.searchControls);
}

async function loadSamples(box) {
  try {
    const samples = await get('/samples/samples.json');
    for (const s of samples) {
      box.append(h('button', {
        type: 'button', class: 'sample', role: 'listitem', title: s.title, 'aria-label': 'Search with the sample ' + s.title, 'data-file': s.file,
        onclick: async () => {
          try {
            const blob = await get('/samples/' + s.file);
            await search({ file: new File([blob], s.file, { type: blob.type }), title: s.title });
          } catch (err) { showError(err, 'Cannot load the sample ' + s.title); }
        },
      }, h('img', { src: '/samples/' + s.file, alt: '', width: 56, height: 56, loading: 'lazy' }), h('span', {}, s.title)));
    }
  } catch (err) {
    showError(err, 'Cannot list the sample images');
  }
}

/** Searches the collection with an image ({file, title}) or one of its items ({item}); the newest search wins. */
async function search(query) {
  if (!current) return;
  const e = els.view;
  const c = current.collection;
  const seq = ++current.searchSeq;
  current.query = query;
  const k = Number(e.k.value);
  const base = `/api/v1/collections/${encodeURIComponent(c.id)}/search?k=${k}`;
  clear(e.query).append(h('span', { class: 'hint' }, 'Query: '),
    query.file ? localImage(query.file)
      : apiImage(`/api/v1/collections/${encodeURIComponent(c.id)}/items/${query.item}/thumbnail`, { class: 'query-thumb' }),
    h('span', {}, query.file ? (query.title || query.file.name) : `item ${query.item}`));
  e.results.dataset.state = 'running';
  clear(e.results).append(h('p', { class: 'hint' }, 'Searching…'));
  try {
    const answer = query.file
      ? await post(base, imageForm(query.file, query.file.name))
      : await post(`${base}&item=${query.item}`);
    if (seq !== current?.searchSeq) return;
    renderResults(answer);
  } catch (err) {
    if (seq !== current?.searchSeq) return;
    e.results.dataset.state = 'failed';
    clear(e.results).append(inlineError(err));
  }
}

function localImage(file) {
  const url = URL.createObjectURL(file);
  const img = h('img', { src: url, alt: '', class: 'query-thumb' });
  img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
  img.addEventListener('error', () => { URL.revokeObjectURL(url); img.hidden = true; }, { once: true });
  return img;
}

function renderResults(answer) {
  const e = els.view;
  const c = current.collection;
  e.results.dataset.state = 'done';
  const grid = h('ol', { class: 'results-grid', 'aria-label': 'Most similar items, most similar first' });
  for (const r of answer.results) {
    grid.append(h('li', {}, h('button', {
      type: 'button', class: 'result', 'data-item': String(r.item), 'data-score': String(r.score),
      title: `Item ${r.item}${r.label ? ' (' + r.label + ')' : ''}: cosine similarity ${r.score.toFixed(4)}. Click to search with it.`,
      'aria-label': `Item ${r.item}${r.label ? ', ' + r.label : ''}, similarity ${r.score.toFixed(3)}: search with it`,
      onclick: () => {
        // The URL says what is searched (reload or share it); the router runs the search.
        const hash = `#/collections/${encodeURIComponent(c.id)}?item=${r.item}`;
        if (location.hash === hash) search({ item: r.item }); else location.hash = hash;
      },
    }, apiImage(r.thumbnail, { width: 72, height: 72 }),
    h('span', { class: 'score' }, r.score.toFixed(3)),
    h('span', { class: 'label' }, r.label || `item ${r.item}`))));
  }
  clear(e.results).append(
    h('p', { class: 'caption', id: 'search-summary' }, `${answer.results.length} nearest of ${fmtNumber(c.items)} items by cosine similarity (${modelShort(answer.model)}); click one to search with it.`),
    grid);
}

// ------------------------------------------------------------------ add images

function buildAddPanel() {
  const e = els.view;
  const file = h('input', { id: 'add-files', type: 'file', accept: 'image/*', multiple: true });
  e.addProgress = h('progress', { max: '1', value: '0', hidden: true, 'aria-label': 'Upload progress' });
  e.addResult = h('div', { class: 'form-result', role: 'status' });
  file.addEventListener('change', async () => {
    const files = [...file.files];
    file.value = '';
    if (!files.length || !current) return;
    const form = new FormData();
    for (const f of files) form.append('image', f, f.name);
    e.addProgress.hidden = false;
    clear(e.addResult);
    try {
      const answer = await upload(`/api/v1/collections/${encodeURIComponent(current.id)}/images`, form, (p) => { e.addProgress.value = p; });
      e.addResult.append(h('p', { class: 'ok' }, `Added ${answer.added.length} image${answer.added.length === 1 ? '' : 's'} (items ${answer.added.map((a) => a.item).join(', ')}); the collection holds ${fmtNumber(answer.items)}.`));
      await refreshCollection();
      if (current?.collection?.tokenizer) loadCodes(current.collection);
    } catch (err) {
      e.addResult.append(inlineError(err));
    } finally {
      e.addProgress.hidden = true;
    }
  });
  return h('section', { class: 'panel', id: 'collection-add', hidden: true, 'aria-labelledby': 'add-title' },
    h('h2', { id: 'add-title' }, 'Add images'),
    h('div', { class: 'field' }, h('label', { for: 'add-files' }, 'Images to add (embedded at once with the collection\'s models)'), file),
    e.addProgress, e.addResult);
}

// ------------------------------------------------------------------ code statistics

async function loadCodes(c) {
  const panel = els.view.codes;
  clear(panel).append(h('h2', { id: 'codes-title' }, 'Visual words'), h('p', { class: 'hint' }, 'Reading the code statistics…'));
  let s;
  try {
    s = await get(`/api/v1/collections/${encodeURIComponent(c.id)}/codes`);
  } catch (err) {
    if (current?.id !== c.id) return;
    clear(panel).append(h('h2', { id: 'codes-title' }, 'Visual words'), inlineError(err));
    return;
  }
  if (current?.id !== c.id) return;
  const canvas = h('canvas', { class: 'codebook-bars', id: 'code-usage', width: 640, height: 120, role: 'img',
    'aria-label': `Patches per code, most used first: ${s.usedCodes} of ${s.codebookSize} codes used, perplexity ${fmtNumber(s.perplexity, 3)}` });
  drawCodeUsage(canvas, s.counts);
  const explore = `#/explore?model=${encodeURIComponent(c.tokenizer)}&collection=${encodeURIComponent(c.id)}`;
  clear(panel).append(
    h('h2', { id: 'codes-title' }, 'Visual words'),
    h('p', { id: 'code-stats' }, `${fmtNumber(s.usedCodes)} of ${fmtNumber(s.codebookSize)} codes used by ${fmtNumber(s.tokens)} patches; perplexity ${fmtNumber(s.perplexity, 3)} `,
      h('span', { class: 'hint' }, '(as many equally used codes would spread the patches as evenly).')),
    h('figure', { class: 'code-usage' }, canvas, h('figcaption', { class: 'caption' }, 'Patches per code, most used code first.')),
    h('p', {}, h('a', { href: explore, id: 'collection-explore' }, 'Browse its visual words in Explore'), ': click a patch of a token map to see that word across this collection.'));
  if (s.topCodesPerClass?.length) {
    panel.append(h('h3', {}, 'Most frequent codes per class'), h('div', { class: 'table-scroll' }, h('table', { class: 'class-codes' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Class'), h('th', { scope: 'col' }, 'Codes (share of the class\'s patches)'))),
      h('tbody', {}, s.topCodesPerClass.map((cls) => h('tr', {},
        h('th', { scope: 'row' }, cls.label),
        h('td', {}, h('ul', { class: 'code-chips' }, cls.codes.map((x) => h('li', { title: `code ${x.code}: ${fmtNumber(x.count)} patches` },
          h('span', { class: 'swatch', style: { background: rgb(tokenColor(x.code)) }, 'aria-hidden': 'true' }),
          `${x.code} `, h('span', { class: 'hint' }, fmtPercent(x.share))))))))))));
  }
}
