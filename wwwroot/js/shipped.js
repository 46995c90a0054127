// The models that ship with the app (GET /api/v1/bundled-models): which ids they are, and the results table of
// the pipeline run that trained them. Their lineage names that run, which is not a job on this server, so the
// Models page links their source here instead of to a job page.
import { get } from './api.js';
import { h } from './ui.js';

/** Where the results section is: the Models page scrolls to it. */
export const RESULTS_HASH = '#/models?section=shipped';

let pending = null;

/** The bundle's report, or null when this server has none (404). Fetched once per page load; a failure is not kept. */
export function loadShipped() {
  if (!pending) {
    pending = get('/api/v1/bundled-models').catch((e) => {
      pending = null;
      if (e.status === 404) return null;
      throw e;
    });
  }
  return pending;
}

/** The ids of the shipped models (the bundle's default of each kind). */
export function shippedIds(report) {
  return new Set(report ? Object.values(report.defaults || {}) : []);
}

/** The results table (results.md: paragraphs and one pipe table) as DOM nodes. */
export function resultsNodes(report) {
  return markdownBlocks(report.report || '');
}

// Just the Markdown that results.md holds (paragraphs, pipe tables, `code`), built as nodes: no innerHTML.
function markdownBlocks(text) {
  const blocks = text.replace(/\r/g, '').split(/\n\s*\n/).map((b) => b.trim()).filter(Boolean);
  return blocks.map((block) => {
    const lines = block.split('\n');
    if (lines.every((l) => l.trim().startsWith('|'))) return table(lines);
    return h('p', {}, inline(block));
  });
}

function cells(line) {
  return line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((c) => c.trim());
}

function table(lines) {
  const [head, , ...rows] = lines;
  return h('div', { class: 'table-scroll' }, h('table', { class: 'results-table' },
    h('thead', {}, h('tr', {}, cells(head).map((c) => h('th', { scope: 'col' }, inline(c))))),
    h('tbody', {}, rows.map((r) => h('tr', {}, cells(r).map((c) => h('td', {}, inline(c))))))));
}

function inline(text) {
  return text.split('`').map((part, i) => (i % 2 ? h('code', {}, part) : part));
}
