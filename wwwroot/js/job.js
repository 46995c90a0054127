// The job page (#/jobs/<id>): status, progress with ETA, live charts over SignalR, the live
// codebook of tokenizer jobs, log lines, checkpoints, cancel and resume. It survives a reload (the
// id is in the URL) and a SignalR reconnect (subscribe again, then catch up from the REST API).
import { get, post } from './api.js';
import * as hub from './hub.js';
import { LineChart } from './charts.js';
import { h, clear, showError, notify, fmtNumber, fmtPercent, fmtDuration, fmtTime, fmtBytes, statusBadge } from './ui.js';
import { RESULTS_HASH } from './shipped.js';

/** Charts per job type: [title, [metric keys]]; loss, lr and images/s come first for every type. */
const STAGE_CHARTS = {
  tokenizer: [['Reconstruction cosine', ['reconstructionCosine', 'valReconstructionCosine']],
    ['Codebook usage', ['codebookUsage', 'valCodebookUsage']], ['Perplexity', ['perplexity', 'valPerplexity']]],
  pretrain: [['MIM accuracy', ['mimAccuracy', 'mimAccuracyAggregated', 'valMimAccuracy']]],
  'linear-probe': [['Accuracy', ['trainAccuracy', 'accuracy']]],
  finetune: [['Accuracy', ['trainAccuracy', 'accuracy']]],
  segmentation: [['Segmentation', ['mIoU', 'mAcc', 'aAcc']]],
};

let root;
const els = {};
let current = null; // { id, job, points: Map(step → point), charts, codebookTimer, ... }
let visible = false;
let redrawQueued = false;

export function init(section) {
  root = section;
  hub.on('progress', onProgress);
  hub.on('status', onStatus);
  hub.on('log', onLog);
  hub.on('reconnected', () => { if (current && visible) refresh(); });
}

export async function show(params) {
  visible = true;
  const id = params.id;
  if (current && current.id === id) { await refresh(); return; }
  if (current) teardown();
  current = { id, job: null, points: new Map(), charts: [], log: [], codebookAt: 0, codebookTimer: null, outputModel: null };
  build(id);
  hub.subscribe(id);
  await refresh();
}

export function hide() {
  visible = false;
  if (current) teardown();
  current = null;
}

function teardown() {
  hub.unsubscribe(current.id);
  for (const c of current.charts) c.chart.destroy();
  clearTimeout(current.codebookTimer);
  clear(root);
}

function build(id) {
  clear(root);
  els.title = h('h1', { id: 'job-title' }, 'Job ' + id);
  els.status = h('span', { id: 'job-status' });
  els.cancel = h('button', { type: 'button', id: 'job-cancel', class: 'danger', onclick: cancel }, 'Cancel');
  els.resume = h('button', { type: 'button', id: 'job-resume', onclick: resume }, 'Resume');
  els.explore = h('a', { class: 'button', id: 'job-explore', hidden: true }, 'Try the model in Explore');
  els.makeDefault = h('button', { type: 'button', id: 'job-make-default', class: 'secondary', hidden: true, onclick: makeDefault }, 'Make default');
  els.modelState = h('p', { id: 'job-model-state', class: 'hint', hidden: true, role: 'status' });
  els.error = h('div', { id: 'job-error' });
  els.progress = h('progress', { id: 'job-progress', max: '1', value: '0', 'aria-labelledby': 'job-progress-text' });
  els.progressText = h('p', { id: 'job-progress-text', class: 'progress-text' }, 'Waiting for the first report…');
  els.meta = h('dl', { class: 'meta' });
  els.charts = h('div', { class: 'charts', id: 'job-charts' });
  els.codebook = h('section', { class: 'panel', id: 'job-codebook', hidden: true, 'aria-labelledby': 'codebook-title' });
  els.lastMetrics = h('div', { class: 'table-scroll' });
  els.checkpoints = h('div', { class: 'table-scroll', id: 'job-checkpoints' });
  els.log = h('ol', { class: 'log', id: 'job-log', tabindex: '0', 'aria-label': 'Log lines' });
  root.append(
    h('p', { class: 'breadcrumb' }, h('a', { href: '#/train' }, '← All jobs')),
    h('div', { class: 'job-head' }, els.title, els.status),
    h('div', { class: 'actions' }, els.cancel, els.resume, els.explore, els.makeDefault),
    els.modelState,
    els.error,
    h('section', { class: 'panel', 'aria-label': 'Progress' }, els.progress, els.progressText),
    els.charts,
    els.codebook,
    h('div', { class: 'two-col' },
      h('section', { class: 'panel', 'aria-labelledby': 'metrics-title' }, h('h2', { id: 'metrics-title' }, 'Latest metrics'), els.lastMetrics),
      h('section', { class: 'panel', 'aria-labelledby': 'details-title' }, h('h2', { id: 'details-title' }, 'Details'), els.meta)),
    h('section', { class: 'panel', 'aria-labelledby': 'checkpoints-title' }, h('h2', { id: 'checkpoints-title' }, 'Checkpoints'), els.checkpoints),
    h('section', { class: 'panel', 'aria-labelledby': 'log-title' }, h('h2', { id: 'log-title' }, 'Log'), els.log));
}

// ------------------------------------------------------------------ catching up (REST)

async function refresh() {
  const c = current;
  if (!c) return;
  let job;
  try {
    job = await get('/api/v1/jobs/' + encodeURIComponent(c.id));
  } catch (e) {
    if (c !== current) return;
    if (e.status === 404) { renderNotFound(c.id); return; }
    clear(els.error).append(h('p', { class: 'inline-error', role: 'alert' }, e.message));
    els.cancel.disabled = els.resume.disabled = true;
    return;
  }
  if (c !== current) return;
  const first = !c.job;
  c.job = job;
  if (first) setupCharts(job.type);
  renderJob();
  const [metrics, log] = await Promise.all([
    get(`/api/v1/jobs/${encodeURIComponent(c.id)}/metrics`).catch((e) => { showError(e, 'Cannot read the metrics'); return []; }),
    get(`/api/v1/jobs/${encodeURIComponent(c.id)}/log?tail=1000`).catch((e) => { showError(e, 'Cannot read the log'); return null; }),
  ]);
  if (c !== current) return;
  for (const m of metrics) addPoint({ step: m.step, loss: m.loss, lr: m.lr, imagesPerSecond: m.imagesPerSecond, metrics: m.metrics || {} });
  queueRedraw();
  if (log) {
    c.log = log.lines.slice();
    renderLog(true);
  }
  if (job.type === 'tokenizer') loadCodebook();
}

async function refreshJobOnly() {
  const c = current;
  try {
    const job = await get('/api/v1/jobs/' + encodeURIComponent(c.id));
    if (c !== current) return;
    c.job = job;
    renderJob();
  } catch (e) {
    showError(e, 'Cannot read the job');
  }
}

// ------------------------------------------------------------------ live (SignalR)

function onProgress(m) {
  const c = current;
  if (!c || m.jobId !== c.id || !c.job) return;
  c.job.status = m.status;
  c.job.progress = { epoch: m.epoch, epochs: m.epochs, step: m.step, steps: m.steps, fraction: m.steps > 0 ? Math.min(1, m.step / m.steps) : 0, etaSeconds: m.etaSeconds };
  c.live = { imagesPerSecond: m.imagesPerSecond, loss: m.loss, lr: m.lr };
  const metrics = {};
  for (const [k, v] of Object.entries(m.metrics || {})) if (v !== null) metrics[k] = v;
  c.job.lastMetrics = metrics;
  if (m.step > 0) addPoint({ step: m.step, loss: m.loss, lr: m.lr, imagesPerSecond: m.imagesPerSecond, metrics });
  renderStatus();
  renderProgress();
  renderLastMetrics();
  queueRedraw();
  if (c.job.type === 'tokenizer') scheduleCodebook();
}

function onStatus(m) {
  const c = current;
  if (!c || m.jobId !== c.id || !c.job) return;
  c.job.status = m.status;
  c.job.error = m.error;
  renderStatus();
  // The record has what the message does not carry (checkpoints, output model, final metrics).
  if (['succeeded', 'failed', 'cancelled'].includes(m.status)) refresh(); else refreshJobOnly();
}

function onLog(m) {
  const c = current;
  if (!c || m.jobId !== c.id) return;
  c.log.push(m.line);
  if (c.log.length > 1000) c.log.splice(0, c.log.length - 1000);
  appendLogLine(m.line);
}

// ------------------------------------------------------------------ rendering

function renderJob() {
  const job = current.job;
  els.title.textContent = job.name ? `${job.name}` : `Job ${job.id}`;
  renderStatus();
  renderProgress();
  renderLastMetrics();
  renderCheckpoints();
  const cfg = job.config ? Object.entries(job.config).map(([k, v]) => `${k}=${v}`).join(', ') : 'defaults';
  clear(els.meta);
  const row = (k, v) => [h('dt', {}, k), h('dd', {}, v ?? '–')];
  els.meta.append(...[
    row('Id', job.id), row('Type', job.type), row('Dataset', job.dataset),
    row('Base model', job.baseModel), row('Teacher', job.teacher), row('Settings', cfg),
    row('Created', fmtTime(job.createdAt)), row('Started', fmtTime(job.startedAt)), row('Finished', fmtTime(job.finishedAt)),
    row('Runs', String(job.runs ?? 0)),
    row('Disk used', job.diskBytes != null ? fmtBytes(job.diskBytes) : null),
    row('Output model', job.outputModel ? h('a', { href: '#/explore?model=' + encodeURIComponent(job.outputModel) }, job.outputModel) : null),
    // An index job fills a collection (and registers no model): its page is where the result is used.
    job.collection ? row('Collection', h('a', { href: '#/collections/' + encodeURIComponent(job.collection), id: 'job-collection' }, job.collection)) : []].flat());
  document.title = `${els.title.textContent} · BeitV2`;
}

function renderStatus() {
  const job = current.job;
  clear(els.status).append(statusBadge(job.status));
  root.dataset.status = job.status;
  els.cancel.disabled = !['queued', 'running'].includes(job.status);
  els.resume.disabled = !['cancelled', 'failed'].includes(job.status);
  els.explore.hidden = !job.outputModel;
  if (job.outputModel) els.explore.href = '#/explore?model=' + encodeURIComponent(job.outputModel);
  if ((job.outputModel || null) !== (current.outputModel?.id || null)) loadOutputModel(job.outputModel || null);
  clear(els.error);
  if (job.status === 'failed' && job.error) els.error.append(h('p', { class: 'inline-error', role: 'alert' }, 'The job failed: ' + job.error));
}

function renderProgress() {
  const job = current.job;
  const p = job.progress || {};
  const fraction = job.status === 'succeeded' ? 1 : p.fraction || 0;
  els.progress.value = fraction;
  const parts = [];
  if (p.steps) parts.push(`step ${p.step} of ${p.steps} (${fmtPercent(fraction, 0)})`);
  else parts.push(job.status === 'queued' ? 'queued: waiting for a worker' : `${fmtPercent(fraction, 0)}`);
  if (p.epochs) parts.push(`epoch ${Math.min(p.epochs, Math.max(1, p.epoch ?? 0))} of ${p.epochs}`);   // the API counts epochs from 1
  if (job.status === 'running' && p.etaSeconds !== null && p.etaSeconds !== undefined) parts.push(`ETA ${fmtDuration(p.etaSeconds)}`);
  if (current.live && current.live.imagesPerSecond) parts.push(`${fmtNumber(current.live.imagesPerSecond, 3)} images/s`);
  if (['succeeded', 'failed', 'cancelled'].includes(job.status) && job.startedAt && job.finishedAt)
    parts.push(`took ${fmtDuration((new Date(job.finishedAt) - new Date(job.startedAt)) / 1000)}`);
  els.progressText.textContent = parts.join(' · ');
}

function renderLastMetrics() {
  const m = current.job.lastMetrics || {};
  const keys = Object.keys(m).sort();
  clear(els.lastMetrics);
  if (!keys.length) { els.lastMetrics.append(h('p', { class: 'hint' }, 'None yet.')); return; }
  els.lastMetrics.append(h('table', { class: 'kv' }, h('tbody', {}, keys.map((k) => h('tr', {}, h('th', { scope: 'row' }, k), h('td', {}, fmtNumber(m[k], 5)))))));
}

function renderCheckpoints() {
  const list = current.job.checkpoints || [];
  clear(els.checkpoints);
  if (!list.length) { els.checkpoints.append(h('p', { class: 'hint' }, 'None yet (a checkpoint is written every epoch and on cancel).')); return; }
  els.checkpoints.append(h('table', {},
    h('thead', {}, h('tr', {}, ['Step', 'Epoch', 'Saved', 'Path'].map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', {}, list.map((cp) => h('tr', {}, h('td', {}, String(cp.step)), h('td', {}, String(cp.epoch)), h('td', {}, fmtTime(cp.savedAt)), h('td', { class: 'path' }, cp.path))))));
}

function renderLog(replace) {
  if (replace) clear(els.log);
  for (const line of current.log) appendLogLine(line, true);
  els.log.scrollTop = els.log.scrollHeight;
}

function appendLogLine(line, bulk) {
  const atBottom = els.log.scrollHeight - els.log.scrollTop - els.log.clientHeight < 24;
  els.log.append(h('li', { class: /error|WARNING/.test(line) ? 'warn' : '' }, line));
  while (els.log.children.length > 1000) els.log.firstElementChild.remove();
  if (!bulk && atBottom) els.log.scrollTop = els.log.scrollHeight;
}

/** No such job here (deleted, or a lineage that names a run on another machine): say so, and where to go instead. */
function renderNotFound(id) {
  clear(root);
  root.dataset.status = 'not-found';
  const title = h('h1', { id: 'job-title' }, `No job '${id}' on this server`);
  root.append(
    h('p', { class: 'breadcrumb' }, h('a', { href: '#/train' }, '← All jobs')),
    title,
    h('section', { class: 'panel', id: 'job-not-found' },
      h('p', {}, 'This server has no job with that id: it was deleted, or it ran somewhere else. The models that ship with the app were trained by the pipeline command, not by a job here.'),
      h('p', { class: 'actions' }, h('a', { class: 'button', href: '#/train' }, 'All jobs'), ' ',
        h('a', { class: 'button secondary', href: RESULTS_HASH }, 'How the shipped models were trained'))));
  document.title = `${title.textContent} · BeitV2`;
}

// ------------------------------------------------------------------ the output model (make default)

async function loadOutputModel(id) {
  const c = current;
  c.outputModel = id ? { id, info: null, missing: false } : null;
  renderOutputModel();
  if (!id) return;
  try {
    const info = await get('/api/v1/models/' + encodeURIComponent(id));
    if (c === current && c.outputModel?.id === id) c.outputModel.info = info;
  } catch (e) {
    if (c !== current || c.outputModel?.id !== id) return;
    if (e.status === 404) c.outputModel.missing = true; else showError(e, 'Cannot read the output model');
  }
  if (c === current) renderOutputModel();
}

/** "Make default", or what the output model is now: a job's model is never made the default by itself. */
function renderOutputModel() {
  const o = current.outputModel;
  const info = o?.info;
  els.makeDefault.hidden = !info || info.isDefault;
  els.modelState.hidden = !o || (!info && !o.missing);
  if (info) {
    els.makeDefault.textContent = `Make it the default ${info.kind}`;
    els.modelState.dataset.default = info.isDefault ? 'true' : 'false';
    els.modelState.textContent = info.isDefault
      ? `This job's model is the default ${info.kind}: Explore and the API use it when no model is named.`
      : `This job's model is not the default ${info.kind} (a job's model never becomes the default by itself): Explore and the API use it only when it is picked by name.`;
  } else if (o?.missing) {
    els.modelState.textContent = `This job's model (${o.id}) has been deleted.`;
  }
}

async function makeDefault() {
  const o = current.outputModel;
  if (!o?.info) return;
  els.makeDefault.disabled = true;
  try {
    o.info = await post(`/api/v1/models/${encodeURIComponent(o.id)}/default`);
    notify(`${o.info.name || o.id} is now the default ${o.info.kind}.`);
  } catch (e) {
    showError(e, 'Cannot make it the default');
  } finally {
    els.makeDefault.disabled = false;
  }
  renderOutputModel();
}

// ------------------------------------------------------------------ charts

function setupCharts(type) {
  const specs = [
    { title: 'Loss', series: [{ label: 'loss', get: (p) => p.loss }] },
    { title: 'Learning rate', series: [{ label: 'lr', get: (p) => p.lr }] },
    { title: 'Throughput (images/s)', series: [{ label: 'images/s', get: (p) => p.imagesPerSecond }] },
    ...(STAGE_CHARTS[type] || []).map(([title, keys]) => ({ title, series: keys.map((k) => ({ label: k, get: (p) => p.metrics[k] })) })),
  ];
  for (const spec of specs) {
    const chart = new LineChart(spec.title, spec.series);
    els.charts.append(chart.figure);
    current.charts.push({ chart, spec });
  }
}

function addPoint(p) {
  const prev = current.points.get(p.step);
  current.points.set(p.step, prev ? { ...prev, ...p, metrics: { ...prev.metrics, ...p.metrics } } : p);
}

function queueRedraw() {
  if (redrawQueued) return;
  redrawQueued = true;
  requestAnimationFrame(() => {
    redrawQueued = false;
    if (!current) return;
    const points = [...current.points.values()].sort((a, b) => a.step - b.step);
    const xs = points.map((p) => p.step);
    for (const { chart, spec } of current.charts) {
      const ys = spec.series.map((s) => points.map((p) => {
        const v = s.get(p);
        return v === null || v === undefined || !Number.isFinite(v) ? null : v;
      }));
      // A stage chart stays empty until its metric exists (e.g. codebook usage after the first epoch).
      chart.setData(xs, ys);
      chart.figure.hidden = ys.every((s) => s.every((v) => v === null)) && spec.title !== 'Loss';
    }
  });
}

// ------------------------------------------------------------------ codebook (tokenizer jobs)

function scheduleCodebook() {
  const c = current;
  if (c.codebookTimer) return;
  const wait = Math.max(0, 1500 - (Date.now() - c.codebookAt));
  c.codebookTimer = setTimeout(() => { c.codebookTimer = null; if (c === current) loadCodebook(); }, wait);
}

async function loadCodebook() {
  const c = current;
  c.codebookAt = Date.now();
  let usage;
  try {
    usage = await get(`/api/v1/jobs/${encodeURIComponent(c.id)}/codebook`);
  } catch (e) {
    showError(e, 'Cannot read the codebook usage');
    return;
  }
  if (c !== current) return;
  renderCodebook(usage);
}

function renderCodebook(u) {
  const panel = els.codebook;
  panel.hidden = false;
  clear(panel);
  const n = u.codebookSize;
  const counts = u.counts || [];
  const total = counts.reduce((a, b) => a + b, 0);
  let entropy = 0;
  for (const k of counts) if (k > 0) { const p = k / total; entropy -= p * Math.log(p); }
  panel.dataset.usedCodes = String(u.usedCodes);
  panel.append(h('h2', { id: 'codebook-title' }, 'Codebook usage (live)'),
    h('p', { class: 'caption', id: 'codebook-summary' }, counts.length
      ? `Epoch ${u.epoch}, step ${u.step}: ${u.usedCodes} of ${n} codes used (${fmtPercent(u.usedCodes / n)}), ${total.toLocaleString('en-US')} assignments, perplexity ${fmtNumber(Math.exp(entropy), 4)}. Counts restart every epoch.`
      : `No report yet (${n} codes).`));
  if (!counts.length) return;
  const cols = Math.ceil(Math.sqrt(n * 2));
  const rows = Math.ceil(n / cols);
  const cell = Math.max(4, Math.min(24, Math.floor(640 / cols)));
  const grid = h('canvas', { class: 'codebook-grid', width: cols * cell, height: rows * cell, role: 'img',
    'aria-label': `Codebook of ${n} codes: ${u.usedCodes} used. Darker = more often assigned; grey = unused.` });
  const ctx = grid.getContext('2d');
  const max = Math.max(1, ...counts);
  for (let i = 0; i < n; i++) {
    const k = counts[i] || 0;
    const x = (i % cols) * cell, y = Math.floor(i / cols) * cell;
    if (k === 0) ctx.fillStyle = '#e6e6e6';
    else {
      const t = Math.log1p(k) / Math.log1p(max);
      ctx.fillStyle = `hsl(222, 75%, ${Math.round(82 - 55 * t)}%)`;
    }
    ctx.fillRect(x + 0.5, y + 0.5, cell - 1, cell - 1);
  }
  const tip = h('div', { class: 'tooltip', hidden: true });
  grid.addEventListener('mousemove', (e) => {
    const r = grid.getBoundingClientRect();
    const col = Math.floor(((e.clientX - r.left) / r.width) * cols), row = Math.floor(((e.clientY - r.top) / r.height) * rows);
    const i = row * cols + col;
    if (i < 0 || i >= n || col >= cols) { tip.hidden = true; return; }
    tip.hidden = false;
    tip.textContent = `code ${i}: ${counts[i] || 0}`;
    tip.style.left = `${(100 * (col + 0.5)) / cols}%`;
    tip.style.top = `${(100 * row) / rows}%`;
  });
  grid.addEventListener('mouseleave', () => { tip.hidden = true; });
  // Sorted counts: how evenly the assignments spread (a collapse shows as one tall bar).
  const sorted = counts.slice().sort((a, b) => b - a);
  const bars = h('canvas', { class: 'codebook-bars', width: 640, height: 120, role: 'img', 'aria-label': 'Code counts sorted from most to least used' });
  const bctx = bars.getContext('2d');
  const bw = 640 / n;
  bctx.fillStyle = '#345bd6';
  for (let i = 0; i < n; i++) {
    const hgt = (sorted[i] / max) * 116;
    bctx.fillRect(i * bw, 120 - hgt, Math.max(1, bw - (bw > 3 ? 1 : 0)), hgt);
  }
  panel.append(h('div', { class: 'codebook-views' },
    h('figure', {}, h('div', { class: 'canvas-wrap' }, grid, tip), h('figcaption', {}, 'Each square is a code (row-major from 0); hover for its count.')),
    h('figure', {}, bars, h('figcaption', {}, 'Counts sorted from most to least used.'))));
}

// ------------------------------------------------------------------ actions

async function cancel() {
  const c = current;
  els.cancel.disabled = true;
  try {
    await post(`/api/v1/jobs/${encodeURIComponent(c.id)}/cancel`);
    notify('Cancelling: the job writes a checkpoint and stops.');
  } catch (e) {
    showError(e, 'Cannot cancel the job');
  }
  await refreshJobOnly();
}

async function resume() {
  const c = current;
  els.resume.disabled = true;
  try {
    await post(`/api/v1/jobs/${encodeURIComponent(c.id)}/resume`);
    notify('Resumed: the job continues from its newest checkpoint.');
  } catch (e) {
    showError(e, 'Cannot resume the job');
  }
  await refreshJobOnly();
}
