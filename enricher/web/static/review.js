// The review page: judge the machine annotations of one manifest, lowest confidence pending first;
// on any canvas (those without machine boxes too) box what the machine missed and state it complete.
// Reads {key}/review/queue; writes only through the public API with the curator's bearer token:
// verdicts to {key}/verdicts/, corrections to {key}/annotations/. Every API error is shown as sent.
'use strict';

const ANNO_CONTEXT = 'http://www.w3.org/ns/anno.jsonld';
const CONTEXT = [ANNO_CONTEXT, 'https://w3id.org/enricher/context.jsonld'];
const ANNO = `application/ld+json; profile="${ANNO_CONTEXT}"`;
const VERDICTS = 'https://w3id.org/enricher/verdicts/';
const MEDIA_FRAGMENTS = 'http://www.w3.org/TR/media-frags/';
const REASONS = { 'not-present': 'not present', 'wrong-concept': 'wrong concept', duplicate: 'duplicate', 'bad-box': 'bad box' };
const TOKEN_KEY = 'enricher.review.token';
const SVG = 'http://www.w3.org/2000/svg';

const params = new URLSearchParams(location.search);
const here = new URL('.', location.href); // {base}{key}/
const urls = {
  queue: new URL(`review/queue?${new URLSearchParams({ lang: params.get('lang') || '' })}`, here),
  verdicts: new URL('verdicts/', here),
  annotations: new URL('annotations/', here),
};
const $ = (id) => document.getElementById(id);

// index: the item shown (-1: none, on a canvas without machine boxes); canvas: the canvas shown
const state = { queue: null, index: -1, canvas: 0, edit: null, infos: new Map(), shown: null };

class Problem extends Error {
  constructor(title, detail, status = 0) {
    super(`${title}: ${detail}`);
    this.title = title;
    this.detail = detail;
    this.status = status;
  }
}

// --- talking to the service ---------------------------------------------------------------------

async function problemOf(response) {
  let title = `${response.status} ${response.statusText}`;
  let detail = `${response.url}`;
  try {
    const problem = await response.json();
    title = problem.title || title;
    detail = [problem.detail, problem.pointer && `(at ${problem.pointer})`].filter(Boolean).join(' ') || detail;
  } catch (_) { /* not problem+json: the status line says what we know */ }
  return new Problem(title, detail, response.status);
}

async function getJson(url) {
  const response = await fetch(url, { headers: { Accept: 'application/json' } });
  if (!response.ok) throw await problemOf(response);
  return response.json();
}

async function post(url, document) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) {
    $('token').focus();
    throw new Problem('No token', 'type your bearer token into the Token field first: every write needs one');
  }
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'Content-Type': ANNO, Accept: ANNO, Authorization: `Bearer ${token}` },
    body: JSON.stringify(document),
  });
  if (!response.ok) throw await problemOf(response);
  return response;
}

// --- what the page writes -----------------------------------------------------------------------

function verdictBody(name, purpose, value = name) {
  return { type: 'TextualBody', value, language: 'en', format: 'text/plain', purpose, subject: VERDICTS + name };
}

function verdict(item, name, reasons = []) {
  return {
    '@context': CONTEXT,
    type: 'Annotation',
    motivation: 'assessing',
    body: [verdictBody(name, 'assessing'), ...reasons.map((r) => verdictBody(r, 'commenting', REASONS[r]))],
    target: { type: 'SpecificResource', source: item.id, state: { type: 'TimeState', sourceDate: item.version } },
  };
}

// A person's tagging annotation on the canvas shown: a correction that replaces ITEM, or a box the machine missed.
function tagging(item, edit) {
  const chosen = state.queue.classes.find((c) => c.name === edit.name);
  return {
    '@context': CONTEXT,
    type: 'Annotation',
    motivation: 'tagging',
    ...(edit.adding ? {} : { replaces: item.id }),
    body: chosen.bodies,
    target: {
      type: 'SpecificResource',
      source: shownCanvas().id,
      selector: { type: 'FragmentSelector', conformsTo: MEDIA_FRAGMENTS, value: `xywh=${edit.box.map(Math.round).join(',')}` },
    },
  };
}

function exhaustive(canvas) {
  const { manifest, classes } = state.queue;
  return {
    '@context': CONTEXT,
    type: 'Annotation',
    motivation: 'assessing',
    body: [
      verdictBody('exhaustive', 'assessing'),
      ...classes.map((c) => ({ type: 'TextualBody', value: c.label, language: c.language, format: 'text/plain', purpose: 'classifying', subject: c.concept })),
    ],
    target: { type: 'SpecificResource', source: { id: canvas.id, type: 'Canvas', partOf: [{ id: manifest.id, type: 'Manifest' }] } },
  };
}

// --- acts: each one writes, then reloads the queue ------------------------------------------------

async function act(work) {
  if (document.body.dataset.busy === 'true') return;
  setBusy(true);
  try {
    const message = await work();
    showError(null);
    await load();
    if (message) $('status').textContent = message;
  } catch (error) {
    showError(error);
    // someone changed the box since this page read it: show its current version (the error stays)
    if (error.status === 409) await load().catch(() => {});
  } finally {
    setBusy(false);
    document.body.dataset.acts = String(Number(document.body.dataset.acts) + 1);
  }
}

const current = () => (state.queue && state.index >= 0 ? state.queue.items[state.index] : undefined);
const shownCanvas = () => state.queue && state.queue.canvases[state.canvas];

function accept() {
  const item = current();
  if (item) act(async () => { await post(urls.verdicts, verdict(item, 'accepted')); return `Accepted ${item.label}.`; });
}

function reject() {
  const item = current();
  const reason = $('reason').value;
  if (item) act(async () => {
    await post(urls.verdicts, verdict(item, 'rejected', reason ? [reason] : []));
    $('reason').value = '';
    return `Rejected ${item.label}.`;
  });
}

function saveEdit() {
  const item = current();
  const edit = state.edit;
  if (!edit) return;
  if (edit.adding) {
    act(async () => {
      const created = await post(urls.annotations, tagging(item, edit));
      stopEditing();
      return `Added ${labelOf(edit.name)}: ${created.headers.get('Location')}.`;
    });
    return;
  }
  const reasons = [];
  if (edit.name !== item.name) reasons.push('wrong-concept');
  if (edit.box.some((v, i) => Math.round(v) !== Math.round(item.box[i]))) reasons.push('bad-box');
  if (!reasons.length) {
    showError(new Problem('Nothing changed', 'choose another class or move a corner, or accept the box as it is (a)'));
    return;
  }
  act(async () => {
    const created = await post(urls.annotations, tagging(item, edit));
    await post(urls.verdicts, verdict(item, 'corrected', reasons));
    stopEditing();
    return `Corrected ${item.label}: now ${created.headers.get('Location')}.`;
  });
}

function markExhaustive() {
  const canvas = shownCanvas();
  if (canvas) act(async () => {
    await post(urls.verdicts, exhaustive(canvas));
    return `Canvas ${canvas.index + 1} marked as completely reviewed for ${state.queue.classes.length} classes.`;
  });
}

// --- correcting: another class, a moved corner ----------------------------------------------------

// Correct the current box, or (ADDING) draw one the machine missed on the canvas shown, starting in the middle.
function startEditing(adding = false) {
  const item = current();
  const canvas = shownCanvas();
  if (!canvas || !(item || adding)) return;
  const middle = [canvas.width * 0.4, canvas.height * 0.4, canvas.width * 0.2, canvas.height * 0.2];
  const name = item ? item.name : state.queue.classes[0].name;
  state.edit = { name, box: adding ? middle : item.box.slice(), adding };
  $('class').value = name;
  $('correction').hidden = false;
  draw();
}

function stopEditing() {
  state.edit = null;
  $('correction').hidden = true;
  draw();
}

// Move one corner (nw, ne, sw, se) to canvas point X, Y; the opposite corner stays, the box stays on the canvas.
function moveCorner(corner, x, y) {
  const canvas = shownCanvas();
  let [left, top, width, height] = state.edit.box;
  let right = left + width;
  let bottom = top + height;
  x = Math.min(Math.max(x, 0), canvas.width);
  y = Math.min(Math.max(y, 0), canvas.height);
  if (corner.includes('w')) left = Math.min(x, right - 1); else right = Math.max(x, left + 1);
  if (corner.includes('n')) top = Math.min(y, bottom - 1); else bottom = Math.max(y, top + 1);
  state.edit.box = [left, top, right - left, bottom - top];
  draw();
}

function nudge(key, shift) {
  const step = Math.max(1, Math.round(shownCanvas().width / 200));
  const [dx, dy] = { ArrowLeft: [-step, 0], ArrowRight: [step, 0], ArrowUp: [0, -step], ArrowDown: [0, step] }[key];
  const [left, top, width, height] = state.edit.box;
  if (shift) moveCorner('nw', left + dx, top + dy);
  else moveCorner('se', left + width + dx, top + height + dy);
}

// Dragging listens on the window: every move redraws the box, handles included.
function dragHandle(handle, corner) {
  handle.addEventListener('pointerdown', (event) => {
    event.preventDefault();
    const svg = $('boxes');
    const move = (e) => {
      const point = new DOMPoint(e.clientX, e.clientY).matrixTransform(svg.getScreenCTM().inverse());
      moveCorner(corner, point.x, point.y);
    };
    const up = () => {
      removeEventListener('pointermove', move);
      removeEventListener('pointerup', up);
    };
    addEventListener('pointermove', move);
    addEventListener('pointerup', up);
  });
}

// --- the image, within what its IIIF Image server's level allows -----------------------------------

function levelOf(info) {
  for (const entry of [].concat(info.profile || [])) {
    const found = typeof entry === 'string' && entry.match(/level([0-2])/);
    if (found) return Number(found[1]);
  }
  return 0;
}

// The URL of the whole image about WANT pixels wide: a listed size on level 0, any width above it.
function imageUrl(info, want) {
  const v3 = [].concat(info['@context'] || []).some((c) => String(c).includes('/image/3/'));
  const id = String(info.id || info['@id']).replace(/\/$/, '');
  const full = v3 ? 'max' : 'full';
  if (levelOf(info) === 0) {
    const sizes = (info.sizes || []).slice().sort((a, b) => a.width - b.width);
    const fit = sizes.find((s) => s.width >= want) || sizes[sizes.length - 1];
    const size = !fit || fit.width >= info.width ? full : v3 ? `${fit.width},${fit.height}` : `${fit.width},`;
    return `${id}/full/${size}/0/default.jpg`;
  }
  const limits = v3 ? info : [].concat(info.profile).find((p) => typeof p === 'object') || {};
  const ratio = info.height / info.width;
  let width = Math.min(want, info.width, limits.maxWidth || Infinity);
  if (limits.maxHeight) width = Math.min(width, Math.floor(limits.maxHeight / ratio));
  if (limits.maxArea) width = Math.min(width, Math.floor(Math.sqrt(limits.maxArea / ratio)));
  return `${id}/full/${width >= info.width ? full : `${Math.max(1, width)},`}/0/default.jpg`;
}

function infoOf(service) {
  if (!state.infos.has(service)) state.infos.set(service, getJson(`${service.replace(/\/$/, '')}/info.json`));
  return state.infos.get(service);
}

// Show CANVAS (or an item: it names its canvas's image and size the same way).
async function showImage(item) {
  const frame = $('frame');
  const stage = $('stage');
  const scale = Math.min(stage.clientWidth / item.width, (innerHeight - stage.getBoundingClientRect().top - 16) / item.height);
  frame.style.width = `${Math.floor(item.width * scale)}px`;
  frame.style.height = `${Math.floor(item.height * scale)}px`;
  const key = `${item.image} ${frame.style.width}`;
  if (state.shown === key) return;
  state.shown = key;
  const want = Math.round(item.width * scale * (devicePixelRatio || 1));
  let src = item.image;
  try {
    if (item.imageService) src = imageUrl(await infoOf(item.image), want);
  } catch (error) {
    state.shown = null; // try again on the next item shown
    throw error;
  }
  const image = $('image');
  if (image.src !== src) {
    await new Promise((resolve, reject) => {
      image.onload = resolve;
      image.onerror = () => reject(new Problem('Image not loaded', src));
      image.src = src;
    });
  }
}

// --- drawing --------------------------------------------------------------------------------------

function svg(name, attributes, parent) {
  const element = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, value);
  if (parent) parent.appendChild(element);
  return element;
}

function labelOf(name) {
  const known = state.queue.classes.find((c) => c.name === name);
  return known ? known.label : name;
}

function drawBox(layer, box, classes, text, size) {
  const group = svg('g', { class: classes }, layer);
  const [x, y, width, height] = box;
  svg('rect', { x, y, width, height }, group);
  svg('text', { x, y: Math.max(size, y - size * 0.3), 'font-size': size }, group).textContent = text;
  return group;
}

function draw() {
  const item = current();
  const canvas = shownCanvas();
  const layer = $('boxes');
  layer.replaceChildren();
  if (!canvas) return;
  layer.setAttribute('viewBox', `0 0 ${canvas.width} ${canvas.height}`);
  const size = Math.round(canvas.height / 36);
  for (const other of state.queue.items) {
    if (other.canvas !== canvas.index || other === item) continue;
    drawBox(layer, other.box, other.reviewState, `${other.label} ${percent(other.confidence)}`, size);
  }
  if (state.edit) {
    if (!item) { /* adding on a canvas without machine boxes */ } else if (!state.edit.adding) drawBox(layer, item.box, `${item.reviewState}`, '', size);
    else drawBox(layer, item.box, `${item.reviewState}`, `${item.label} ${percent(item.confidence)}`, size);
    const group = drawBox(layer, state.edit.box, 'editing', labelOf(state.edit.name), size);
    const [x, y, width, height] = state.edit.box;
    const corners = { nw: [x, y], ne: [x + width, y], sw: [x, y + height], se: [x + width, y + height] };
    for (const [corner, [cx, cy]] of Object.entries(corners)) {
      dragHandle(svg('circle', { class: `handle ${corner}`, cx, cy, r: Math.max(4, canvas.width / 120) }, group), corner);
    }
  } else if (item) {
    drawBox(layer, item.box, `current ${item.reviewState}`, `${item.label} ${percent(item.confidence)}`, size);
  }
}

const percent = (value) => (value == null ? '' : `${Math.round(value * 100)} %`);

function render() {
  const { queue } = state;
  const item = current();
  const canvas = shownCanvas();
  const { reviewed, total } = queue.progress;
  $('progress').max = Math.max(total, 1);
  $('progress').value = reviewed;
  $('progress-text').textContent = `${reviewed} of ${total} reviewed`;
  $('label').textContent = item ? item.label : canvas ? 'No machine boxes on this canvas' : 'Nothing to review';
  $('confidence').textContent = item ? `confidence ${percent(item.confidence)}` : '';
  $('state').textContent = item ? item.reviewState : '';
  const complete = canvas && canvas.exhaustive ? ' (marked complete)' : '';
  const where = canvas ? `canvas ${canvas.index + 1} of ${queue.canvases.length}${complete}` : '';
  $('position').textContent = item ? `item ${state.index + 1} of ${queue.items.length} · ${where}` : where;
  $('canvas').replaceChildren(...queue.canvases.map((c) => {
    const boxes = queue.items.filter((i) => i.canvas === c.index).length;
    return new Option(`${c.index + 1}. ${c.label} (${boxes} boxes${c.exhaustive ? ', complete' : ''})`, String(c.index));
  }));
  $('canvas').value = String(state.canvas);
  const list = $('queue');
  list.replaceChildren(...queue.items.map((entry, index) => {
    const li = document.createElement('li');
    li.className = `${entry.reviewState}${index === state.index ? ' selected' : ''}`;
    li.dataset.id = entry.id;
    li.textContent = `${entry.label} ${percent(entry.confidence)} `;
    const badge = document.createElement('span');
    badge.className = 'state';
    badge.textContent = entry.reviewState;
    li.appendChild(badge);
    li.addEventListener('click', () => select(index));
    return li;
  }));
  const chosen = list.children[state.index];
  if (chosen) chosen.scrollIntoView({ block: 'nearest' });
  draw();
  if (canvas) showImage(canvas).catch(showError);
}

function select(index) {
  if (!state.queue || state.edit || !state.queue.items.length) return;
  state.index = Math.min(Math.max(index, 0), state.queue.items.length - 1);
  state.canvas = current().canvas;
  render();
}

// Show canvas INDEX with its first item in queue order, or with none when the machine found nothing there.
function showCanvas(index) {
  if (!state.queue || state.edit) return;
  state.canvas = Math.min(Math.max(index, 0), state.queue.canvases.length - 1);
  state.index = state.queue.items.findIndex((i) => i.canvas === state.canvas);
  render();
}

// Read the queue; stay on the item shown unless it was just judged, then go to the first pending one;
// on a canvas shown without an item, stay there.
async function load() {
  const before = current();
  const onCanvas = state.queue && !before;
  state.queue = await getJson(urls.queue);
  const { items, canvases } = state.queue;
  const same = before ? items.findIndex((i) => i.id === before.id) : -1;
  const pending = items.findIndex((i) => i.reviewState === 'pending');
  const stay = same >= 0 && (items[same].reviewState === before.reviewState || pending < 0);
  if (onCanvas) {
    state.canvas = Math.min(state.canvas, Math.max(canvases.length - 1, 0));
    state.index = items.findIndex((i) => i.canvas === state.canvas);
  } else {
    state.index = items.length ? (stay ? same : Math.max(pending, 0)) : -1;
    state.canvas = current() ? current().canvas : 0;
  }
  document.title = `Review: ${state.queue.manifest.label}`;
  document.documentElement.lang = state.queue.language;
  $('title').textContent = `Review: ${state.queue.manifest.label}`;
  $('class').replaceChildren(...state.queue.classes.map((c) => new Option(c.label, c.name)));
  render();
}

// --- errors, busy state, token ---------------------------------------------------------------------

function showError(error) {
  $('error').hidden = !error;
  if (!error) return;
  $('error-title').textContent = error.title || error.name || 'Error';
  $('error-detail').textContent = error.detail || error.message || String(error);
  $('status').textContent = '';
}

function setBusy(busy) {
  document.body.dataset.busy = String(busy);
  for (const button of document.querySelectorAll('.actions button, #correction button')) button.disabled = busy;
}

function showToken() {
  $('token-state').textContent = sessionStorage.getItem(TOKEN_KEY) ? 'token set' : '';
}

$('token-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const token = $('token').value.trim();
  if (token) sessionStorage.setItem(TOKEN_KEY, token); else sessionStorage.removeItem(TOKEN_KEY);
  $('token').value = '';
  $('token').blur();
  showToken();
});

// --- keys and buttons -------------------------------------------------------------------------------

const KEYS = {
  a: accept, r: reject, c: () => startEditing(), b: () => startEditing(true), e: markExhaustive,
  n: () => select(state.index + 1), p: () => select(state.index - 1),
  N: () => showCanvas(state.canvas + 1), P: () => showCanvas(state.canvas - 1),
};

document.addEventListener('keydown', (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.target === $('token')) return;
  if (state.edit) {
    if (event.target.tagName === 'SELECT' && event.key !== 'Escape' && event.key !== 'Enter') return;
    if (event.key.startsWith('Arrow')) nudge(event.key, event.shiftKey);
    else if (event.key === 'Enter') saveEdit();
    else if (event.key === 'Escape') stopEditing();
    else return;
    event.preventDefault();
    return;
  }
  if (['SELECT', 'INPUT', 'TEXTAREA'].includes(event.target.tagName)) return;
  const handler = KEYS[event.key];
  if (handler && state.queue) {
    event.preventDefault();
    handler();
  }
});

$('accept').addEventListener('click', accept);
$('reject').addEventListener('click', reject);
$('correct').addEventListener('click', () => startEditing());
$('add').addEventListener('click', () => startEditing(true));
$('exhaustive').addEventListener('click', markExhaustive);
$('previous').addEventListener('click', () => select(state.index - 1));
$('next').addEventListener('click', () => select(state.index + 1));
$('previous-canvas').addEventListener('click', () => showCanvas(state.canvas - 1));
$('next-canvas').addEventListener('click', () => showCanvas(state.canvas + 1));
$('canvas').addEventListener('change', () => {
  showCanvas(Number($('canvas').value));
  $('canvas').blur(); // back to the keys
});
$('cancel').addEventListener('click', stopEditing);
$('correction').addEventListener('submit', (event) => { event.preventDefault(); saveEdit(); });
$('class').addEventListener('change', () => {
  state.edit.name = $('class').value;
  $('class').blur(); // back to the keys: arrows move the corner again
  draw();
});
addEventListener('resize', () => { if (shownCanvas()) showImage(shownCanvas()).catch(showError); });

showToken();
load().catch(showError).finally(() => setBusy(false));
