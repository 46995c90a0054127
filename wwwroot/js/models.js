// Models & datasets: the registry (set default, delete, import a checkpoint) and the datasets
// (list, upload a zip).
import { get, post, del, upload } from './api.js';
import { h, clear, showError, inlineError, notify, fmtTime, fmtBytes } from './ui.js';
import { loadShipped, shippedIds, resultsNodes, RESULTS_HASH } from './shipped.js';

const KINDS = ['tokenizer', 'backbone', 'classifier', 'segmenter', 'pretrain', 'teacher'];

let root;
const els = {};

export function init(section) {
  root = section;
  els.models = h('div', { class: 'table-scroll', id: 'models-list' });
  els.datasets = h('div', { class: 'table-scroll', id: 'datasets-list' });
  els.missing = h('div', { id: 'missing-models' });
  els.shipped = h('section', { class: 'panel', id: 'shipped-results', hidden: true, tabindex: '-1', 'aria-labelledby': 'shipped-title' });

  // Import form.
  els.importFile = h('input', { id: 'import-file', name: 'file', type: 'file', accept: '.pth,.pt,.safetensors,.bin', required: true });
  els.importKind = h('select', { id: 'import-kind', name: 'kind' }, KINDS.map((k) => h('option', { value: k }, k)));
  els.importName = h('input', { id: 'import-name', name: 'name', type: 'text', placeholder: 'default: the file name', autocomplete: 'off' });
  els.importLabels = h('input', { id: 'import-labels', name: 'labels', type: 'file', accept: '.txt,text/plain' });
  els.importConfig = h('textarea', { id: 'import-config', name: 'config', rows: '2', placeholder: '{"num_heads": 12}', spellcheck: 'false' });
  els.importDataset = h('input', { id: 'import-dataset', name: 'dataset', type: 'text', maxlength: '300', placeholder: 'e.g. ImageNet-1k; default: unknown', autocomplete: 'off' });
  els.importDomain = h('input', { id: 'import-domain', name: 'domain', type: 'text', maxlength: '300', placeholder: 'e.g. natural photos, 224 px; default: unknown', autocomplete: 'off' });
  els.importDefault = h('input', { id: 'import-default', name: 'makeDefault', type: 'checkbox' });
  els.importProgress = h('progress', { max: '1', value: '0', hidden: true, 'aria-label': 'Upload progress' });
  els.importResult = h('div', { class: 'form-result', role: 'status' });
  els.importButton = h('button', { type: 'submit' }, 'Import');
  const importForm = h('form', { class: 'stack-form', id: 'import-form' },
    h('div', { class: 'field' }, h('label', { for: 'import-file' }, 'Checkpoint (.pth or .safetensors)'), els.importFile),
    h('div', { class: 'field-grid' },
      h('div', { class: 'field' }, h('label', { for: 'import-kind' }, 'Kind'), els.importKind),
      h('div', { class: 'field' }, h('label', { for: 'import-name' }, 'Name'), els.importName)),
    h('div', { class: 'field' }, h('label', { for: 'import-labels' }, 'Class names (text file, one per line; optional)'), els.importLabels),
    h('div', { class: 'field' }, h('label', { for: 'import-config' }, 'Config overrides (JSON, official keyword names; optional)'), els.importConfig),
    h('div', { class: 'field' }, h('label', { for: 'import-dataset' }, 'Trained on (dataset; optional)'), els.importDataset),
    h('div', { class: 'field' }, h('label', { for: 'import-domain' }, 'What it is for (one line; optional)'), els.importDomain),
    h('div', { class: 'field checkbox' }, els.importDefault, h('label', { for: 'import-default' }, 'Make it the default of its kind')),
    h('div', { class: 'actions' }, els.importButton, els.importProgress),
    els.importResult);
  importForm.addEventListener('submit', importModel);

  // Dataset upload form.
  els.dsFile = h('input', { id: 'dataset-file', name: 'file', type: 'file', accept: '.zip,application/zip', required: true });
  els.dsName = h('input', { id: 'dataset-name', name: 'name', type: 'text', placeholder: 'default: the file name', autocomplete: 'off' });
  els.dsProgress = h('progress', { max: '1', value: '0', hidden: true, 'aria-label': 'Upload progress' });
  els.dsResult = h('div', { class: 'form-result', role: 'status' });
  els.dsButton = h('button', { type: 'submit' }, 'Upload');
  const dsForm = h('form', { class: 'stack-form', id: 'dataset-form' },
    h('div', { class: 'field' }, h('label', { for: 'dataset-file' }, 'Zip archive'), els.dsFile,
      h('p', { class: 'hint' }, 'Class folders (cat/001.jpg, dog/002.jpg …) for classification, images/ + masks/ for segmentation, or plain images (unlabelled: tokenizer and pretraining jobs).')),
    h('div', { class: 'field' }, h('label', { for: 'dataset-name' }, 'Name'), els.dsName),
    h('div', { class: 'actions' }, els.dsButton, els.dsProgress),
    els.dsResult);
  dsForm.addEventListener('submit', uploadDataset);

  root.append(
    h('h1', { id: 'models-title' }, 'Models & datasets'),
    els.missing,
    h('section', { class: 'panel', 'aria-labelledby': 'models-list-title' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'models-list-title' }, 'Models'), h('button', { type: 'button', class: 'secondary small', onclick: loadModels }, 'Refresh')),
      els.models),
    els.shipped,
    h('div', { class: 'two-col' },
      h('section', { class: 'panel', 'aria-labelledby': 'import-title' }, h('h2', { id: 'import-title' }, 'Import a checkpoint'),
        h('p', { class: 'hint' }, 'Official BEiT v2 / VQ-KD .pth files or timm .safetensors. The architecture is read from the tensor shapes.'), importForm),
      h('section', { class: 'panel', 'aria-labelledby': 'dataset-upload-title' }, h('h2', { id: 'dataset-upload-title' }, 'Upload a dataset'), dsForm)),
    h('section', { class: 'panel', 'aria-labelledby': 'datasets-title' },
      h('div', { class: 'panel-head' }, h('h2', { id: 'datasets-title' }, 'Datasets'), h('button', { type: 'button', class: 'secondary small', onclick: loadDatasets }, 'Refresh')),
      els.datasets));
}

export async function show(params = {}) {
  await Promise.all([loadModels(), loadDatasets(), loadMissing(), loadShippedResults()]);
  if (params.section === 'shipped' && !els.shipped.hidden) {
    els.shipped.scrollIntoView({ block: 'start' });
    els.shipped.focus({ preventScroll: true });
  }
}

/** "How the shipped models were trained": the bundle's results table (hidden when this server has no bundle). */
async function loadShippedResults() {
  let report;
  try {
    report = await loadShipped();
  } catch (e) {
    showError(e, 'Cannot read the shipped models\' results');
    return;
  }
  clear(els.shipped).hidden = !report;
  if (!report) return;
  els.shipped.append(h('h2', { id: 'shipped-title' }, 'How the shipped models were trained'),
    h('p', { class: 'hint' }, 'The models that come with the app were trained by the repository\'s pipeline command (not by a job on this server), in this run:'),
    ...resultsNodes(report));
}

/** The Source cell: the job that made the model when it is on this server, the results table for a shipped model. */
function sourceCell(m, jobIds, shipped) {
  const jobId = m.lineage?.jobId;
  if (jobId && jobIds.has(jobId)) return h('a', { href: '#/jobs/' + encodeURIComponent(jobId) }, 'job ' + jobId);
  if (shipped.has(m.id)) return [h('a', { href: RESULTS_HASH, class: 'shipped-source' }, 'shipped: how it was trained'), jobId ? h('div', { class: 'hint' }, jobId) : null];
  if (jobId) return [jobId, h('div', { class: 'hint' }, 'not a job on this server')];
  return m.source;
}

/** Ids of the jobs this server knows (an empty set when they cannot be read: the Source cells then link to no job). */
async function jobIds() {
  try {
    return new Set((await get('/api/v1/jobs')).map((j) => j.id));
  } catch (e) {
    showError(e, 'Cannot list the jobs');
    return new Set();
  }
}

export function hide() {}

async function loadMissing() {
  try {
    const info = await get('/api/v1/info');
    clear(els.missing);
    for (const m of info.missingModels || []) {
      els.missing.append(h('p', { class: 'missing' }, `No default ${m.kind}: ${m.route} cannot answer. Import one below, or train one on the `, h('a', { href: '#/train' }, 'Train'), ' page.'));
    }
  } catch (e) {
    showError(e, 'Cannot read /api/v1/info');
  }
}

async function loadModels() {
  let models, jobs, shipped;
  try {
    [models, jobs, shipped] = await Promise.all([get('/api/v1/models'), jobIds(), loadShipped().then(shippedIds, () => new Set())]);
  } catch (e) {
    clear(els.models).append(inlineError(e));
    return;
  }
  clear(els.models);
  if (!models.length) {
    els.models.append(h('p', { class: 'empty' }, 'No models are registered yet. Import a checkpoint below, or train one on the Train page.'));
    return;
  }
  models.sort((a, b) => a.kind.localeCompare(b.kind) || (b.createdAt || '').localeCompare(a.createdAt || ''));
  const body = h('tbody');
  for (const m of models) {
    const setDefault = h('button', { type: 'button', class: 'small', disabled: m.isDefault, 'data-action': 'default',
      'aria-label': `Make ${m.name || m.id} the default ${m.kind}`,
      onclick: async () => {
        try {
          await post(`/api/v1/models/${encodeURIComponent(m.id)}/default`);
          notify(`${m.name || m.id} is now the default ${m.kind}.`);
          await Promise.all([loadModels(), loadMissing()]);
        } catch (e) { showError(e, 'Cannot set the default'); }
      } }, m.isDefault ? 'Default' : 'Make default');
    let armed = null;
    const remove = h('button', { type: 'button', class: 'small danger', disabled: m.isDefault, 'data-action': 'delete',
      title: m.isDefault ? 'The default model of a kind cannot be deleted' : '', 'aria-label': `Delete ${m.name || m.id}`,
      onclick: async () => {
        if (!armed) { // two clicks: no modal dialog
          remove.textContent = 'Confirm delete';
          armed = setTimeout(() => { armed = null; remove.textContent = 'Delete'; }, 5000);
          return;
        }
        clearTimeout(armed);
        try {
          await del(`/api/v1/models/${encodeURIComponent(m.id)}`);
          notify(`Deleted ${m.name || m.id}.`);
          await loadModels();
        } catch (e) { showError(e, 'Cannot delete the model'); }
      } }, 'Delete');
    const lineage = sourceCell(m, jobs, shipped);
    body.append(h('tr', { 'data-model-id': m.id, 'data-default': m.isDefault ? 'true' : 'false' },
      h('td', {}, h('strong', {}, m.name || m.id), m.isDefault ? h('span', { class: 'badge default' }, 'default') : null, h('div', { class: 'hint' }, m.id)),
      h('td', {}, m.kind),
      h('td', {}, `${m.architecture}, ${m.imageSize}px / ${m.patchSize}, ${m.embedDim}-d × ${m.depth}`),
      h('td', {}, m.codebookSize ? `${m.codebookSize} codes` : m.classes ? `${m.classes} classes` : '–'),
      h('td', {}, lineage),
      h('td', {}, fmtTime(m.createdAt)),
      h('td', { class: 'row-actions' }, setDefault, ' ', remove,
        ['classifier', 'segmenter', 'tokenizer', 'backbone', 'pretrain'].includes(m.kind) ? [' ', h('a', { class: 'button small secondary', href: '#/explore?model=' + encodeURIComponent(m.id) }, 'Explore')] : null)));
  }
  els.models.append(h('table', { class: 'models-table' },
    h('thead', {}, h('tr', {}, ['Model', 'Kind', 'Architecture', 'Outputs', 'Source', 'Created', 'Actions'].map((c) => h('th', { scope: 'col' }, c)))), body));
}

async function loadDatasets() {
  let list;
  try {
    list = await get('/api/v1/datasets');
  } catch (e) {
    clear(els.datasets).append(inlineError(e));
    return;
  }
  clear(els.datasets);
  if (!list.length) {
    els.datasets.append(h('p', { class: 'empty' }, 'No datasets: install Debian\'s dataset-fashion-mnist for the built-in ones, or upload a zip above.'));
    return;
  }
  els.datasets.append(h('table', {},
    h('thead', {}, h('tr', {}, ['Dataset', 'Kind', 'Images', 'Classes', 'Origin'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, list.map((d) => h('tr', { 'data-dataset-id': d.id },
      h('td', {}, h('strong', {}, d.name || d.id), h('div', { class: 'hint' }, d.id)),
      h('td', {}, d.kind), h('td', {}, d.images.toLocaleString('en-US')),
      h('td', { title: (d.classNames || []).join(', ') }, d.classes ? `${d.classes}: ${(d.classNames || []).slice(0, 6).join(', ')}${d.classes > 6 ? ', …' : ''}` : '–'),
      h('td', {}, d.builtIn ? 'built in' : 'uploaded'))))));
}

async function importModel(e) {
  e.preventDefault();
  clear(els.importResult);
  const file = els.importFile.files[0];
  if (!file) { els.importResult.append(inlineError('Choose a checkpoint file first.')); return; }
  const config = els.importConfig.value.trim();
  if (config) {
    try { JSON.parse(config); } catch (err) { els.importResult.append(inlineError('The config overrides are not valid JSON: ' + err.message)); return; }
  }
  const form = new FormData();
  form.append('file', file, file.name);
  form.append('kind', els.importKind.value);
  if (els.importName.value.trim()) form.append('name', els.importName.value.trim());
  if (els.importDataset.value.trim()) form.append('dataset', els.importDataset.value.trim());
  if (els.importDomain.value.trim()) form.append('domain', els.importDomain.value.trim());
  if (els.importLabels.files[0]) form.append('labels', els.importLabels.files[0], els.importLabels.files[0].name);
  if (config) form.append('config', config);
  if (els.importDefault.checked) form.append('makeDefault', 'true');
  els.importButton.disabled = true;
  els.importProgress.hidden = false;
  els.importResult.append(h('p', { class: 'hint' }, `Uploading ${fmtBytes(file.size)}…`));
  try {
    const r = await upload('/api/v1/models/import', form, (f) => { els.importProgress.value = f; });
    clear(els.importResult).append(h('p', { class: 'ok' }, `Imported ${r.model.name || r.model.id} (${r.model.kind}, ${r.model.architecture}).`),
      r.notes?.length ? h('ul', { class: 'hint' }, r.notes.map((n) => h('li', {}, n))) : null,
      r.defaultedFields?.length ? h('p', { class: 'hint' }, 'Defaulted (not inferable from the weights): ' + r.defaultedFields.join(', ')) : null);
    els.importFile.value = '';
    await Promise.all([loadModels(), loadMissing()]);
  } catch (err) {
    clear(els.importResult).append(inlineError(err));
  } finally {
    els.importButton.disabled = false;
    els.importProgress.hidden = true;
  }
}

async function uploadDataset(e) {
  e.preventDefault();
  clear(els.dsResult);
  const file = els.dsFile.files[0];
  if (!file) { els.dsResult.append(inlineError('Choose a zip file first.')); return; }
  const form = new FormData();
  form.append('file', file, file.name);
  if (els.dsName.value.trim()) form.append('name', els.dsName.value.trim());
  els.dsButton.disabled = true;
  els.dsProgress.hidden = false;
  try {
    const d = await upload('/api/v1/datasets', form, (f) => { els.dsProgress.value = f; });
    clear(els.dsResult).append(h('p', { class: 'ok' }, `Added ${d.name || d.id}: ${d.kind}, ${d.images} images${d.classes ? ', ' + d.classes + ' classes' : ''}.`));
    els.dsFile.value = '';
    await loadDatasets();
  } catch (err) {
    clear(els.dsResult).append(inlineError(err));
  } finally {
    els.dsButton.disabled = false;
    els.dsProgress.hidden = true;
  }
}
