// Explore: run images through the models. Per image: the visual-token map over the tokenizer's
// view (hover = code id, click = visual-word browser), top-k classes as bars, the segmentation
// mask as an overlay with legend and opacity, and the embedding (similarity among the images).
import { get, post, imageForm } from './api.js';
import { h, clear, showError, inlineError, fmtPercent, fmtBytes, tokenColor, classColor, rgb, contrastText, modelOption, titleFromOption } from './ui.js';
import { loadCollections, fillCollectionPicker, renderCollectionWords } from './collectionWords.js';

const KINDS = [
  { key: 'tokenizer', label: 'Tokenizer', kinds: ['tokenizer'], route: 'tokens', what: 'visual tokens',
    missing: 'No tokenizer is registered, so there is no token map. Import a VQ-KD checkpoint (kind "tokenizer") under Models & datasets, or train one on the Train page (job type "tokenizer").' },
  { key: 'classifier', label: 'Classifier', kinds: ['classifier'], route: 'classify', what: 'class predictions',
    missing: 'No classifier is registered, so there are no predictions. Import a fine-tuned checkpoint (kind "classifier") under Models & datasets, or train one (job type "finetune" or "linear-probe").' },
  { key: 'segmenter', label: 'Segmenter', kinds: ['segmenter'], route: 'segment', what: 'segmentation',
    missing: 'No segmenter is registered, so there is no mask. Import one under Models & datasets, or train one (job type "segmentation" on fashion-mnist-seg).' },
  { key: 'embedder', label: 'Embedding model', kinds: ['backbone', 'classifier', 'pretrain'], route: 'embeddings', what: 'embeddings',
    missing: 'No backbone, classifier or pretraining model is registered, so there are no embeddings. Import or train one.' },
];

const state = {
  models: [],
  picks: {},
  images: [],
  selectedCode: null,
  collection: '', // the visual-word browser reads this collection ('' = the images uploaded here)
  nextId: 1,
};

let root;
let els = {};
let inFlight = 0;
const waiting = [];

/** At most 2 inference requests at a time (the service has one worker per model and 2 cores here). */
async function limited(fn) {
  if (inFlight >= 2) await new Promise((r) => waiting.push(r));
  inFlight++;
  try { return await fn(); } finally {
    inFlight--;
    const next = waiting.shift();
    if (next) next();
  }
}

export function init(section) {
  root = section;
  const fileInput = h('input', { id: 'explore-files', type: 'file', accept: 'image/*', multiple: true, class: 'visually-hidden-input' });
  const drop = h('div', { class: 'dropzone', id: 'dropzone' },
    h('p', {}, h('strong', {}, 'Drop images here'), ' or '),
    h('label', { for: 'explore-files', class: 'button' }, 'Choose images…'),
    fileInput,
    h('p', { class: 'hint' }, 'JPEG, PNG, WebP, BMP or GIF; several at once. You can also paste an image.'));
  fileInput.addEventListener('change', () => {
    addFiles([...fileInput.files]);
    fileInput.value = '';
  });
  drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    addFiles([...(e.dataTransfer?.files || [])]);
  });
  document.addEventListener('paste', (e) => {
    if (root.hidden) return;
    const files = [...(e.clipboardData?.files || [])].filter((f) => f.type.startsWith('image/'));
    if (files.length) addFiles(files);
  });

  els.pickers = h('div', { class: 'pickers' });
  els.collection = h('select', { id: 'pick-collection' });
  els.collection.addEventListener('change', () => { state.collection = els.collection.value; renderWords(); });
  els.samples = h('div', { class: 'samples', role: 'list', 'aria-label': 'Sample images' });
  els.clearAll = h('button', { type: 'button', class: 'secondary', onclick: clearImages, disabled: true }, 'Remove all images');
  els.words = h('section', { class: 'panel word-browser', id: 'word-browser', hidden: true, 'aria-labelledby': 'word-title', tabindex: '-1' });
  els.similarity = h('section', { class: 'panel similarity', id: 'similarity', hidden: true, 'aria-labelledby': 'similarity-title' });
  els.cards = h('div', { class: 'cards', id: 'cards' });
  els.empty = h('p', { class: 'empty' }, 'No images yet: drop some above or click a sample.');

  root.append(
    h('h1', { id: 'explore-title' }, 'Explore'),
    h('p', { class: 'lead' }, 'See what the models make of your images: visual tokens, classes, segmentation and embeddings.'),
    h('fieldset', { class: 'models-fieldset' }, h('legend', {}, 'Models'), els.pickers, collectionPicker()),
    h('div', { class: 'input-row' }, drop,
      h('div', { class: 'samples-box' }, h('h2', { class: 'small-heading' }, 'Or try a sample'), els.samples)),
    h('div', { class: 'toolbar' }, els.clearAll),
    els.words,
    els.empty,
    els.cards,
    els.similarity,
  );
  loadSamples();
}

export async function show(params) {
  await loadModels(params.model);
  await showCollections(params.collection);
}

/** The Collection picker: where a click on a patch looks for the other patches with its code. */
function collectionPicker() {
  return h('div', { class: 'pickers' }, h('div', { class: 'picker' }, h('label', { for: 'pick-collection' }, 'Visual words from'), els.collection,
    h('p', { class: 'hint' }, 'A collection indexed with a tokenizer (see ', h('a', { href: '#/collections' }, 'Collections'), '), or the images uploaded here.')));
}

async function showCollections(preferred) {
  await loadCollections();
  const chosen = fillCollectionPicker(els.collection, preferred ?? state.collection, modelName);
  if (chosen !== state.collection) {
    state.collection = chosen;
    renderWords();
  }
}

export function hide() {}

// ------------------------------------------------------------------ models

async function loadModels(preferred) {
  try {
    state.models = await get('/api/v1/models');
  } catch (e) {
    showError(e, 'Cannot list the models');
    state.models = [];
  }
  if (preferred) {
    const m = state.models.find((x) => x.id === preferred);
    if (m) {
      const kind = KINDS.find((k) => k.key === m.kind) || KINDS.find((k) => k.kinds.includes(m.kind));
      if (kind) state.picks[kind.key] = m.id;
    }
  }
  const changed = [];
  clear(els.pickers);
  for (const kind of KINDS) {
    const options = state.models.filter((m) => kind.kinds.includes(m.kind));
    const before = state.picks[kind.key];
    let pick = options.find((m) => m.id === before)?.id;
    if (!pick) pick = defaultPick(options, kind)?.id || '';
    state.picks[kind.key] = pick;
    if (pick !== (before || '')) changed.push(kind.key);
    const id = 'pick-' + kind.key;
    const select = h('select', { id, disabled: options.length === 0, 'data-kind': kind.key },
      options.length === 0 ? h('option', { value: '' }, 'none registered') : options.map((m) => modelOption(m, m.id === pick)));
    titleFromOption(select);
    select.addEventListener('change', () => {
      state.picks[kind.key] = select.value;
      for (const img of state.images) runOne(img, kind);
    });
    const domain = h('p', { class: 'hint domain-note', id: 'domain-' + kind.key });
    select.addEventListener('change', () => showDomain(domain, select.value));
    showDomain(domain, pick);
    els.pickers.append(h('div', { class: 'picker' }, h('label', { for: id }, kind.label), select,
      options.length === 0 ? h('p', { class: 'hint missing' }, kind.missing.split('.')[0] + '. ', h('a', { href: '#/models' }, 'Import'), ' or ', h('a', { href: '#/train' }, 'train'), ' one.') : domain));
  }
  // Images already shown: re-run what a newly available (or vanished) model changes.
  for (const key of changed) {
    const kind = KINDS.find((k) => k.key === key);
    for (const img of state.images) runOne(img, kind);
  }
}

/** The model the service itself uses when a request names none (its `defaultFor`), so the page shows what the API answers. */
function defaultPick(options, kind) {
  return options.find((m) => (m.defaultFor || []).includes(kind.route))
    || options.find((m) => m.isDefault && m.kind === kind.kinds[0]) || options.find((m) => m.isDefault) || options[0];
}

// ------------------------------------------------------------------ samples and inputs

async function loadSamples() {
  try {
    const samples = await get('/samples/samples.json');
    for (const s of samples) {
      els.samples.append(h('button', {
        type: 'button', class: 'sample', role: 'listitem', title: s.title, 'aria-label': 'Add sample: ' + s.title,
        onclick: async () => {
          try {
            const blob = await get('/samples/' + s.file);
            addFiles([new File([blob], s.file, { type: blob.type })], s.title);
          } catch (e) { showError(e, 'Cannot load the sample ' + s.title); }
        },
      }, h('img', { src: '/samples/' + s.file, alt: '', width: 56, height: 56, loading: 'lazy' }), h('span', {}, s.title)));
    }
  } catch (e) {
    showError(e, 'Cannot list the sample images');
  }
}

function addFiles(files, title) {
  for (const file of files) {
    const img = {
      id: state.nextId++, name: title || file.name, file, url: URL.createObjectURL(file),
      picture: null, tokens: null, predictions: null, segmentation: null, embedding: null, failed: null,
    };
    state.images.push(img);
    buildCard(img);
    process(img);
  }
  updateChrome();
}

function clearImages() {
  for (const img of state.images) URL.revokeObjectURL(img.url);
  state.images = [];
  state.selectedCode = null;
  clear(els.cards);
  updateChrome();
  renderWords();
  renderSimilarity();
}

function removeImage(img) {
  state.images = state.images.filter((x) => x !== img);
  URL.revokeObjectURL(img.url);
  img.el.card.remove();
  updateChrome();
  renderWords();
  renderSimilarity();
}

function updateChrome() {
  els.clearAll.disabled = state.images.length === 0;
  els.empty.hidden = state.images.length > 0;
}

// ------------------------------------------------------------------ per image

function buildCard(img) {
  const titleId = 'card-title-' + img.id;
  const el = {};
  el.status = h('p', { class: 'card-status', role: 'status' }, 'Analysing…');
  el.error = h('div', { class: 'card-error' });
  el.ood = h('div', { class: 'ood-warning card-ood', role: 'alert', hidden: true });
  el.tokens = h('section', { class: 'panel tokens-panel', 'aria-label': 'Visual tokens' }, h('h3', {}, 'Visual tokens'));
  el.classes = h('section', { class: 'panel classes-panel', 'aria-label': 'Predictions' }, h('h3', {}, 'Top classes'));
  el.segment = h('section', { class: 'panel segment-panel', 'aria-label': 'Segmentation' }, h('h3', {}, 'Segmentation'));
  el.panels = h('div', { class: 'card-panels' }, el.tokens, el.segment, el.classes);
  el.card = h('article', { class: 'card', 'data-image': String(img.id), 'aria-labelledby': titleId, id: 'image-' + img.id },
    h('header', { class: 'card-head' },
      h('img', { class: 'thumb', src: img.url, alt: '', width: 48, height: 48 }),
      h('div', {}, h('h2', { id: titleId }, img.name), h('p', { class: 'hint' }, `${img.file.type || 'unknown type'}, ${fmtBytes(img.file.size)}`)),
      h('button', { type: 'button', class: 'secondary small', 'aria-label': 'Remove ' + img.name, onclick: () => removeImage(img) }, 'Remove')),
    el.status, el.error, el.ood, el.panels);
  el.card.querySelector('.thumb').addEventListener('error', (e) => { e.target.hidden = true; });
  img.el = el;
  els.cards.prepend(el.card);
}

async function loadPicture(img) {
  if (img.picture) return img.picture;
  const picture = new Image();
  picture.src = img.url;
  try {
    await picture.decode();
    img.picture = picture;
  } catch {
    img.picture = null; // the browser cannot show it; the service's answer says why
  }
  return img.picture;
}

async function process(img) {
  await loadPicture(img);
  // The first available analysis doubles as the check that the service can read the file: a
  // rejected upload is one message for the card instead of four identical ones.
  const available = KINDS.filter((k) => state.picks[k.key]);
  const first = available[0];
  if (first) {
    await runOne(img, first);
    if (img.failed) return;
  }
  await Promise.all(KINDS.filter((k) => k !== first).map((k) => runOne(img, k)));
  if (!available.length) img.el.status.textContent = 'No models are registered yet: see the notes under "Models" above.';
}

function panelFor(img, kind) {
  return { tokenizer: img.el.tokens, classifier: img.el.classes, segmenter: img.el.segment, embedder: null }[kind.key];
}

function resetPanel(panel, title, text) {
  clear(panel);
  panel.append(h('h3', {}, title));
  if (text) panel.append(h('p', { class: 'hint' }, text));
}

const TITLES = { tokenizer: 'Visual tokens', classifier: 'Top classes', segmenter: 'Segmentation' };

/** Runs one analysis of one image with the picked model; false when it failed. */
async function runOne(img, kind) {
  if (!state.images.includes(img)) return false;
  const model = state.picks[kind.key];
  const panel = panelFor(img, kind);
  if (!model) {
    img[{ tokenizer: 'tokens', classifier: 'predictions', segmenter: 'segmentation', embedder: 'embedding' }[kind.key]] = null;
    if (panel) {
      resetPanel(panel, TITLES[kind.key]);
      panel.append(h('p', { class: 'missing' }, kind.missing + ' '), h('p', {}, h('a', { href: '#/models' }, 'Models & datasets'), ' · ', h('a', { href: '#/train' }, 'Train')));
    }
    if (kind.key === 'embedder') renderSimilarity();
    if (kind.key === 'tokenizer') renderWords();
    noteOutOfDomain(img, kind, null);
    return true;
  }
  if (panel) resetPanel(panel, TITLES[kind.key], 'Running…');
  img.el.card.dataset[kind.key] = 'running';
  const query = kind.key === 'embedder' ? `?model=${encodeURIComponent(model)}&normalize=true&pooling=cls`
    : kind.key === 'classifier' ? `?model=${encodeURIComponent(model)}&topK=5` : `?model=${encodeURIComponent(model)}`;
  try {
    const result = await limited(() => post(`/api/v1/${kind.route}${query}`, imageForm(img.file, img.file.name)));
    if (!state.images.includes(img) || state.picks[kind.key] !== model) return true; // removed or re-picked meanwhile
    img.failed = null;
    img.el.error.textContent = '';
    if (kind.key === 'tokenizer') await showTokens(img, result);
    if (kind.key === 'classifier') showPredictions(img, result);
    if (kind.key === 'segmenter') await showSegmentation(img, result);
    if (kind.key === 'embedder') {
      img.embedding = { model: result.model, vector: result.data[0].embedding };
      renderSimilarity();
    }
    noteOutOfDomain(img, kind, result);
    img.el.card.dataset[kind.key] = 'done';
    img.el.status.textContent = '';
    return true;
  } catch (e) {
    img.el.card.dataset[kind.key] = 'failed';
    if ([400, 413, 415, 422].includes(e.status) && !/^Model /.test(e.message)) {
      // The upload itself is unusable: say so once, for the whole card.
      img.failed = e;
      img.el.status.textContent = '';
      img.el.panels.hidden = true;
      clear(img.el.error).append(inlineError(new Error(`${img.name}: ${withoutFileName(e.message, img.file.name)}`)));
      img.el.card.classList.add('failed');
    } else if (panel) {
      resetPanel(panel, TITLES[kind.key]);
      panel.append(inlineError(e));
    } else {
      showError(e, `Embedding of ${img.name}`);
    }
    return false;
  }
}

/** The service names the uploaded file at the start of its message; the card says the image's name itself. */
function withoutFileName(message, fileName) {
  const prefix = `${fileName}: `;
  return fileName && message.startsWith(prefix) ? message.slice(prefix.length) : message;
}

// ------------------------------------------------------------------ tokens

async function showTokens(img, result) {
  const t = result.images[0];
  img.tokens = { model: result.model, rows: result.rows, cols: result.cols, codebookSize: result.codebookSize, grid: t.tokens,
    view: t.view || { imageWidth: img.picture?.naturalWidth || 1, imageHeight: img.picture?.naturalHeight || 1, x: 0, y: 0,
      width: img.picture?.naturalWidth || 1, height: img.picture?.naturalHeight || 1 } };
  const panel = img.el.tokens;
  resetPanel(panel, 'Visual tokens');
  const size = 320;
  const canvas = h('canvas', {
    class: 'token-map', width: size, height: size, tabindex: '0', role: 'img', 'data-rows': String(result.rows),
    'aria-label': `Token map of ${img.name}: ${result.rows}×${result.cols} patches, ${t.distinctCodes} distinct codes. Arrow keys move between patches, Enter shows the other patches with the same code.`,
  });
  const tip = h('div', { class: 'tooltip', hidden: true, role: 'status' });
  const opacity = h('input', { type: 'range', min: '0', max: '100', value: '45', id: 'tok-op-' + img.id });
  const wrap = h('div', { class: 'canvas-wrap' }, canvas, tip);
  panel.append(wrap,
    h('p', { class: 'caption' }, `${t.distinctCodes} distinct of ${result.codebookSize} codes · ${result.rows}×${result.cols} patches · ${modelName(result.model)}`),
    h('div', { class: 'range' }, h('label', { for: 'tok-op-' + img.id }, 'Token colour opacity'), opacity),
    h('p', { class: 'hint' }, 'Hover a patch to see its code; click it (or press Enter) to see every patch with that code.'));
  img.tokenCanvas = { canvas, tip, opacity, cursor: null };
  opacity.addEventListener('input', () => drawTokens(img));

  const cellAt = (e) => {
    const r = canvas.getBoundingClientRect();
    const col = Math.floor(((e.clientX - r.left) / r.width) * result.cols);
    const row = Math.floor(((e.clientY - r.top) / r.height) * result.rows);
    return row >= 0 && col >= 0 && row < result.rows && col < result.cols ? { row, col } : null;
  };
  const showTip = (cell) => {
    const code = img.tokens.grid[cell.row][cell.col];
    tip.hidden = false;
    tip.textContent = `code ${code} · patch (${cell.row}, ${cell.col})`;
    tip.style.left = `${((cell.col + 0.5) / result.cols) * 100}%`;
    tip.style.top = `${(cell.row / result.rows) * 100}%`;
    canvas.dataset.hoverCode = String(code);
  };
  canvas.addEventListener('mousemove', (e) => {
    const cell = cellAt(e);
    img.tokenCanvas.cursor = cell;
    if (cell) showTip(cell); else tip.hidden = true;
    drawTokens(img);
  });
  canvas.addEventListener('mouseleave', () => {
    tip.hidden = true;
    img.tokenCanvas.cursor = null;
    drawTokens(img);
  });
  canvas.addEventListener('click', (e) => {
    const cell = cellAt(e);
    if (cell) selectCode(img.tokens.grid[cell.row][cell.col]);
  });
  canvas.addEventListener('keydown', (e) => {
    const cur = img.tokenCanvas.cursor || { row: 0, col: 0 };
    const moves = { ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1] };
    if (moves[e.key]) {
      e.preventDefault();
      const [dr, dc] = moves[e.key];
      img.tokenCanvas.cursor = { row: Math.min(result.rows - 1, Math.max(0, cur.row + dr)), col: Math.min(result.cols - 1, Math.max(0, cur.col + dc)) };
      showTip(img.tokenCanvas.cursor);
      drawTokens(img);
    } else if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      img.tokenCanvas.cursor = cur;
      selectCode(img.tokens.grid[cur.row][cur.col]);
    }
  });
  canvas.addEventListener('focus', () => {
    if (!img.tokenCanvas.cursor) img.tokenCanvas.cursor = { row: 0, col: 0 };
    showTip(img.tokenCanvas.cursor);
    drawTokens(img);
  });
  canvas.addEventListener('blur', () => { tip.hidden = true; });
  drawTokens(img);
  renderWords();
}

function modelName(id) {
  const m = state.models.find((x) => x.id === id);
  return m ? (m.name || m.id) : id;
}

/** Draws the tokenizer's view of a patch (or the whole view) onto ctx at (dx, dy, dw, dh). */
function drawView(ctx, img, row0, col0, rows, cols, dx, dy, dw, dh) {
  const t = img.tokens;
  const v = t.view;
  ctx.fillStyle = '#000';
  ctx.fillRect(dx, dy, dw, dh);
  if (!img.picture) return;
  const pw = v.width / t.cols, ph = v.height / t.rows;
  let sx = v.x + col0 * pw, sy = v.y + row0 * ph, sw = cols * pw, sh = rows * ph;
  // Clip the source to the picture (the view may extend past it: that part was zero padding).
  const W = img.picture.naturalWidth, H = img.picture.naturalHeight;
  const x0 = Math.max(0, sx), y0 = Math.max(0, sy), x1 = Math.min(W, sx + sw), y1 = Math.min(H, sy + sh);
  if (x1 <= x0 || y1 <= y0) return;
  const kx = dw / sw, ky = dh / sh;
  ctx.imageSmoothingQuality = 'high';
  ctx.drawImage(img.picture, x0, y0, x1 - x0, y1 - y0, dx + (x0 - sx) * kx, dy + (y0 - sy) * ky, (x1 - x0) * kx, (y1 - y0) * ky);
}

function drawTokens(img) {
  const t = img.tokens;
  if (!t || !img.tokenCanvas) return;
  const { canvas, opacity, cursor } = img.tokenCanvas;
  const ctx = canvas.getContext('2d');
  const S = canvas.width;
  drawView(ctx, img, 0, 0, t.rows, t.cols, 0, 0, S, S);
  const alpha = Number(opacity.value) / 100;
  const cw = S / t.cols, ch = S / t.rows;
  for (let r = 0; r < t.rows; r++) {
    for (let c = 0; c < t.cols; c++) {
      const [R, G, B] = tokenColor(t.grid[r][c]);
      ctx.fillStyle = `rgba(${R}, ${G}, ${B}, ${alpha})`;
      ctx.fillRect(c * cw, r * ch, cw, ch);
    }
  }
  ctx.strokeStyle = 'rgba(255, 255, 255, 0.35)';
  ctx.lineWidth = 1;
  ctx.beginPath();
  for (let i = 1; i < t.cols; i++) { ctx.moveTo(Math.round(i * cw) + 0.5, 0); ctx.lineTo(Math.round(i * cw) + 0.5, S); }
  for (let i = 1; i < t.rows; i++) { ctx.moveTo(0, Math.round(i * ch) + 0.5); ctx.lineTo(S, Math.round(i * ch) + 0.5); }
  ctx.stroke();
  const selected = state.selectedCode !== null && state.selectedCode.model === t.model ? state.selectedCode.code : null;
  if (selected !== null) {
    for (let r = 0; r < t.rows; r++) {
      for (let c = 0; c < t.cols; c++) {
        if (t.grid[r][c] !== selected) continue;
        ctx.lineWidth = 3;
        ctx.strokeStyle = '#000';
        ctx.strokeRect(c * cw + 1.5, r * ch + 1.5, cw - 3, ch - 3);
        ctx.lineWidth = 1.5;
        ctx.strokeStyle = '#ffd400';
        ctx.strokeRect(c * cw + 1.5, r * ch + 1.5, cw - 3, ch - 3);
      }
    }
  }
  if (cursor) {
    ctx.lineWidth = 2;
    ctx.strokeStyle = '#fff';
    ctx.setLineDash([4, 3]);
    ctx.strokeRect(cursor.col * cw + 1, cursor.row * ch + 1, cw - 2, ch - 2);
    ctx.setLineDash([]);
  }
}

// ------------------------------------------------------------------ visual-word browser

function selectCode(code) {
  const model = state.picks.tokenizer;
  state.selectedCode = { code, model };
  for (const img of state.images) drawTokens(img);
  renderWords();
  els.words.focus({ preventScroll: false });
}

function renderWords() {
  const sel = state.selectedCode;
  const panel = els.words;
  if (!sel || !state.images.some((i) => i.tokens && i.tokens.model === sel.model)) {
    panel.hidden = true;
    return;
  }
  const [R, G, B] = tokenColor(sel.code);
  const head = h('div', { class: 'panel-head' },
    h('h2', { id: 'word-title' }, h('span', { class: 'swatch', style: { background: rgb([R, G, B]) }, 'aria-hidden': 'true' }), `Visual word ${sel.code}`),
    h('button', { type: 'button', class: 'secondary small', onclick: () => { state.selectedCode = null; for (const i of state.images) drawTokens(i); renderWords(); } }, 'Close'));
  if (state.collection) {
    renderCollectionWords(panel, head, { ...sel, collection: state.collection, modelName });
    return;
  }
  clear(panel);
  panel.dataset.source = 'session';
  delete panel.dataset.shows;
  const patches = [];
  const withTokens = state.images.filter((i) => i.tokens && i.tokens.model === sel.model);
  for (const img of withTokens) {
    const t = img.tokens;
    for (let r = 0; r < t.rows; r++) for (let c = 0; c < t.cols; c++) if (t.grid[r][c] === sel.code) patches.push({ img, r, c });
  }
  const images = new Set(patches.map((p) => p.img)).size;
  panel.hidden = false;
  panel.append(head,
    h('p', { class: 'caption', id: 'word-summary' }, `Code ${sel.code} of ${modelName(sel.model)}: ${patches.length} patch${patches.length === 1 ? '' : 'es'} in ${images} of ${withTokens.length} image${withTokens.length === 1 ? '' : 's'}.`));
  const grid = h('ul', { class: 'patches', 'aria-label': `Patches with code ${sel.code}` });
  for (const p of patches.slice(0, 400)) {
    const c = h('canvas', { width: 64, height: 64, 'aria-hidden': 'true' });
    drawView(c.getContext('2d'), p.img, p.r, p.c, 1, 1, 0, 0, 64, 64);
    grid.append(h('li', {}, h('button', {
      type: 'button', class: 'patch', title: `${p.img.name}, patch (${p.r}, ${p.c})`, 'aria-label': `${p.img.name}, patch row ${p.r}, column ${p.c}`,
      onclick: () => { p.img.el.card.scrollIntoView({ behavior: 'smooth', block: 'start' }); p.img.tokenCanvas?.canvas.focus({ preventScroll: true }); },
    }, c, h('span', {}, `${shortName(p.img.name)} (${p.r},${p.c})`))));
  }
  panel.append(grid);
}

function shortName(name) {
  const tail = name.includes(': ') ? name.slice(name.lastIndexOf(': ') + 2) : name; // "Fashion-MNIST: Bag" → "Bag"
  return tail.length > 16 ? tail.slice(0, 14) + '…' : tail;
}

// ------------------------------------------------------------------ predictions

function showPredictions(img, result) {
  const preds = result.images[0].predictions;
  img.predictions = preds;
  const panel = img.el.classes;
  resetPanel(panel, 'Top classes');
  const list = h('ol', { class: 'bars' });
  for (const p of preds) {
    list.append(h('li', { class: 'bar-row' },
      h('span', { class: 'bar-label', title: `class ${p.classIndex}` }, p.label || `class ${p.classIndex}`),
      h('span', { class: 'bar-track', 'aria-hidden': 'true' }, h('span', { class: 'bar-fill', style: { width: `${(100 * p.probability).toFixed(1)}%` } })),
      h('span', { class: 'bar-value' }, fmtPercent(p.probability))));
  }
  panel.append(list, h('p', { class: 'caption' }, modelName(result.model)));
}

// ------------------------------------------------------------------ segmentation

async function showSegmentation(img, result) {
  const s = result.images[0];
  const mask = new Image();
  mask.src = 'data:image/png;base64,' + s.maskPng;
  await mask.decode();
  const w = s.width, hgt = s.height;
  const scratch = document.createElement('canvas');
  scratch.width = w;
  scratch.height = hgt;
  const sctx = scratch.getContext('2d', { willReadFrequently: true });
  sctx.drawImage(mask, 0, 0);
  const px = sctx.getImageData(0, 0, w, hgt).data;
  const classes = new Uint8Array(w * hgt);
  const overlay = sctx.createImageData(w, hgt);
  const colours = new Map();
  for (let i = 0; i < classes.length; i++) {
    const k = px[4 * i];
    classes[i] = k;
    let col = colours.get(k);
    if (!col) { col = classColor(k); colours.set(k, col); }
    overlay.data[4 * i] = col[0];
    overlay.data[4 * i + 1] = col[1];
    overlay.data[4 * i + 2] = col[2];
    overlay.data[4 * i + 3] = 255;
  }
  const canvas = h('canvas', { class: 'mask', width: w, height: hgt, 'aria-hidden': 'true' });
  canvas.getContext('2d').putImageData(overlay, 0, 0);
  img.segmentation = { model: result.model, width: w, height: hgt, classes: s.classes, map: classes };

  const panel = img.el.segment;
  resetPanel(panel, 'Segmentation');
  const photo = img.picture ? h('img', { src: img.url, alt: '', class: 'photo' }) : h('div', { class: 'photo blank' });
  const opacity = h('input', { type: 'range', min: '0', max: '100', value: '55', id: 'seg-op-' + img.id });
  canvas.style.opacity = '0.55';
  opacity.addEventListener('input', () => { canvas.style.opacity = String(Number(opacity.value) / 100); });
  const tip = h('div', { class: 'tooltip', hidden: true });
  const stack = h('div', { class: 'mask-stack', role: 'img', style: { aspectRatio: `${w} / ${hgt}` },
    'aria-label': `Segmentation of ${img.name}: ` + s.classes.map((c) => `${c.label || 'class ' + c.classIndex} ${fmtPercent(c.pixelFraction)}`).join(', ') }, photo, canvas, tip);
  stack.addEventListener('mousemove', (e) => {
    const r = stack.getBoundingClientRect();
    const x = Math.floor(((e.clientX - r.left) / r.width) * w), y = Math.floor(((e.clientY - r.top) / r.height) * hgt);
    if (x < 0 || y < 0 || x >= w || y >= hgt) { tip.hidden = true; return; }
    const k = classes[y * w + x];
    const c = s.classes.find((q) => q.classIndex === k);
    tip.hidden = false;
    tip.textContent = c?.label || `class ${k}`;
    tip.style.left = `${(100 * (e.clientX - r.left)) / r.width}%`;
    tip.style.top = `${(100 * (e.clientY - r.top)) / r.height}%`;
  });
  stack.addEventListener('mouseleave', () => { tip.hidden = true; });
  const legend = h('ul', { class: 'legend', 'aria-label': 'Classes in the mask' });
  for (const c of s.classes) {
    const col = classColor(c.classIndex);
    legend.append(h('li', {}, h('span', { class: 'swatch', style: { background: rgb(col), color: contrastText(col) }, 'aria-hidden': 'true' }),
      h('span', {}, c.label || `class ${c.classIndex}`), h('span', { class: 'hint' }, fmtPercent(c.pixelFraction))));
  }
  panel.append(stack,
    h('div', { class: 'range' }, h('label', { for: 'seg-op-' + img.id }, 'Mask opacity'), opacity),
    legend, segmenterQuality(result), h('p', { class: 'caption' }, modelName(result.model)));
}

// ------------------------------------------------------------------ domain and out-of-domain

/** What the picked model was trained on, under its picker ("unknown" for a model whose package does not say). */
function showDomain(el, modelId) {
  const d = state.models.find((m) => m.id === modelId)?.domain;
  clear(el);
  if (!d) return;
  el.title = d.description;
  el.append(d.dataset === 'unknown' ? 'Trained on: unknown' : `Trained on ${d.dataset}: ${d.inputKind}`);
}

/**
 * The image's out-of-domain score from one analysis (null result: that analysis is gone). The classifier's and the
 * embedding model's scores make the card's warning; the segmenter's goes next to its mask (it knows scenes of several
 * small items, so even a single large Fashion-MNIST item can be outside what it saw).
 */
function noteOutOfDomain(img, kind, result) {
  img.ood = img.ood || {};
  const item = result && (result.images || result.data)?.[0];
  const ood = item?.outOfDomain ? { ...item.outOfDomain, dataset: result.domain?.dataset || 'unknown' } : null;
  img.ood[kind.key] = ood;
  img.el.card.dataset['ood' + kind.key[0].toUpperCase() + kind.key.slice(1)] = ood ? (ood.outside ? 'outside' : 'inside') : 'unscored';
  if (kind.key === 'segmenter') {
    if (ood?.outside) {
      img.el.segment.querySelector('h3')?.after(h('p', { class: 'ood-warning seg-ood', role: 'note' },
        h('strong', {}, `This image looks unlike the ${ood.dataset} the segmenter was trained on; its mask means little.`),
        h('span', { class: 'hint' }, ` Out-of-domain score ${ood.score.toFixed(1)} of 100 (the warning starts past ${ood.threshold}).`)));
    }
    return;
  }
  const scored = ['classifier', 'embedder'].map((k) => img.ood[k]).filter((o) => o);
  const outside = scored.filter((o) => o.outside);
  img.el.card.dataset.outOfDomain = outside.length ? 'outside' : scored.length ? 'inside' : 'unscored';
  if (!outside.length) {
    img.el.ood.hidden = true;
    clear(img.el.ood);
    return;
  }
  const datasets = [...new Set(outside.map((o) => o.dataset))];
  const worst = outside.reduce((a, b) => (b.score > a.score ? b : a));
  clear(img.el.ood).append(
    h('strong', {}, `This photo looks nothing like the ${datasets.join(' and ')} images ${outside.length > 1 ? 'these models were' : 'this model was'} trained on; its answers mean little.`),
    h('span', { class: 'hint' }, ` Out-of-domain score ${worst.score.toFixed(1)} of 100: further from the training images than ${worst.score.toFixed(1)} % of held-out ` +
      `${worst.dataset} images (the warning starts past ${worst.threshold}).`));
  img.el.ood.hidden = false;
}

/** The segmenter's measured quality and domain, next to its mask: how far to trust the colours. */
function segmenterQuality(result) {
  const d = result.domain;
  if (!d) return null;
  const q = d.quality;
  return h('p', { class: 'hint seg-quality' },
    q ? `Measured ${q.metric} ${fmtPercent(q.value)} on the ${q.split} split of ${q.dataset}. ` : 'No measured quality. ',
    d.dataset === 'unknown' ? 'Trained on: unknown.' : `Trained on ${d.inputKind}.`);
}

// ------------------------------------------------------------------ embeddings

function renderSimilarity() {
  const panel = els.similarity;
  const model = state.picks.embedder;
  const items = state.images.filter((i) => i.embedding && i.embedding.model === model);
  if (items.length < 1) { panel.hidden = true; return; }
  panel.hidden = false;
  clear(panel);
  const dot = (a, b) => { let s = 0; for (let i = 0; i < a.length; i++) s += a[i] * b[i]; return s; };
  const sims = items.map((a) => items.map((b) => dot(a.embedding.vector, b.embedding.vector)));
  panel.append(h('h2', { id: 'similarity-title' }, 'Embedding similarity'),
    h('p', { class: 'caption' }, `Cosine similarity of the ${items[0].embedding.vector.length}-d [CLS] embeddings (${modelName(model)}).` +
      (items.length < 2 ? ' Add another image to compare.' : '')));
  if (items.length >= 2) {
    const table = h('table', { class: 'sim-table' },
      h('caption', { class: 'visually-hidden' }, 'Cosine similarity between images'),
      h('thead', {}, h('tr', {}, h('td', {}), items.map((i) => h('th', { scope: 'col', title: i.name }, h('img', { src: i.url, alt: '', class: 'mini' }), h('span', {}, shortName(i.name)))))),
      h('tbody', {}, items.map((a, r) => h('tr', {}, h('th', { scope: 'row', title: a.name }, h('img', { src: a.url, alt: '', class: 'mini' }), h('span', {}, shortName(a.name))),
        items.map((b, c) => {
          const v = sims[r][c];
          const t = Math.max(0, Math.min(1, (v + 1) / 2));
          const bg = `hsl(220, 70%, ${Math.round(96 - 50 * t)}%)`;
          return h('td', { style: { background: bg, color: t > 0.7 ? '#fff' : '#000' }, title: `${a.name} · ${b.name}: ${v.toFixed(3)}` }, v.toFixed(2));
        })))));
    const nn = h('ul', { class: 'neighbours' });
    items.forEach((a, r) => {
      const ranked = items.map((b, c) => ({ b, v: sims[r][c] })).filter((x) => x.b !== a).sort((x, y) => y.v - x.v);
      nn.append(h('li', {}, h('strong', {}, a.name), ' → nearest: ', ranked.slice(0, 2).map((x, i) => [i ? ', ' : '', `${x.b.name} (${x.v.toFixed(2)})`])));
    });
    panel.append(h('div', { class: 'table-scroll' }, table), h('h3', {}, 'Nearest neighbours'), nn);
  }
}
