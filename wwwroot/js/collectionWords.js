// Explore's visual-word browser over a collection: with a collection chosen, a click on a patch of a token map shows
// the patches of that collection the tokenizer maps to the same code, page by page, from the collection's inverted
// index (GET /api/v1/models/{tokenizer}/codebook/{code}?collection=…), instead of the images uploaded in this session.
import { get } from './api.js';
import { h, clear, inlineError, showError, fmtNumber } from './ui.js';
import { apiImage } from './images.js';

const PAGE = 48;
let collections = [];
let shown = null; // the selection the panel shows: answers for an older one are dropped

/** The collections the picker offers: those indexed with a tokenizer (the others have no codes). */
export async function loadCollections() {
  try {
    collections = (await get('/api/v1/collections')).filter((c) => c.tokenizer);
  } catch (e) {
    showError(e, 'Cannot list the collections');
    collections = [];
  }
  return collections;
}

/** Fills the Collection picker; `chosen` stays chosen when it is still offered. Returns the value it ends with. */
export function fillCollectionPicker(select, chosen, modelName) {
  clear(select).append(h('option', { value: '' }, '— none: the images uploaded here —'));
  for (const c of collections) {
    select.append(h('option', { value: c.id, selected: c.id === chosen, title: `${c.id}: tokenizer ${c.tokenizer}` },
      `${c.name} — ${fmtNumber(c.items)} images, ${modelName(c.tokenizer)}${c.status === 'ready' ? '' : ' (' + c.status + ')'}`));
  }
  select.value = collections.some((c) => c.id === chosen) ? chosen : '';
  return select.value;
}

export const collectionById = (id) => collections.find((c) => c.id === id) || null;

/**
 * Shows code `code` of tokenizer `model` across collection `collection` in `panel`, under `head` (the title and Close
 * button Explore draws); "More" fetches the next page. A 409 (indexed with another tokenizer, or not ready) is said in words.
 */
export async function renderCollectionWords(panel, head, { code, model, collection, modelName }) {
  // Explore redraws the panel whenever a token map arrives; the same word of the same collection is not read again.
  const key = `${collection}|${model}|${code}`;
  if (!panel.hidden && panel.dataset.shows === key) return;
  panel.dataset.shows = key;
  const selection = { code, model, collection };
  shown = selection;
  const c = collectionById(collection);
  const name = c ? c.name : collection;
  const summary = h('p', { class: 'caption', id: 'word-summary' }, `Reading the patches of code ${code} in ${name}…`);
  const grid = h('ul', { class: 'patches', 'aria-label': `Patches of ${name} with code ${code}` });
  const more = h('button', { type: 'button', class: 'secondary small', id: 'word-more', hidden: true }, 'More');
  const problem = h('div');
  clear(panel).append(head, summary, problem, grid, h('div', { class: 'actions' }, more));
  panel.hidden = false;
  panel.dataset.source = 'collection';
  let offset = 0;
  const load = async () => {
    more.disabled = true;
    try {
      const page = await get(`/api/v1/models/${encodeURIComponent(model)}/codebook/${code}?collection=${encodeURIComponent(collection)}&limit=${PAGE}&offset=${offset}`);
      if (shown !== selection) return;
      offset += page.patches.length;
      for (const p of page.patches) grid.append(patchItem(collection, p));
      summary.textContent = `Code ${code} of ${modelName(model)}: ${fmtNumber(page.total)} patch${page.total === 1 ? '' : 'es'} in the collection ${name}` +
        (page.total > offset ? `; showing the first ${fmtNumber(offset)}.` : '.');
      more.hidden = offset >= page.total;
    } catch (e) {
      if (shown !== selection) return;
      summary.textContent = `Code ${code} of ${modelName(model)} in the collection ${name}:`;
      const hint = e.status === 409 && c && c.tokenizer !== model
        ? `It was indexed with the tokenizer ${modelName(c.tokenizer)}: pick that tokenizer above, or another collection.` : null;
      clear(problem).append(inlineError(e), hint ? h('p', { class: 'hint', id: 'word-hint' }, hint) : null);
    } finally {
      more.disabled = false;
    }
  };
  more.addEventListener('click', load);
  await load();
}

/** One patch: its crop, label and item; it opens the collection searched by that item. */
function patchItem(collection, p) {
  const what = `item ${p.item}${p.label ? ' (' + p.label + ')' : ''}, patch row ${p.row}, column ${p.col}`;
  return h('li', {}, h('a', {
    class: 'patch', href: `#/collections/${encodeURIComponent(collection)}?item=${p.item}`, 'data-item': String(p.item),
    title: `${what}: open the collection searched by this item`, 'aria-label': `${what}: search the collection with it`,
  }, apiImage(p.crop, { width: 64, height: 64 }), h('span', {}, `${p.label || 'item ' + p.item} (${p.row},${p.col})`)));
}
