// Gallery: the pictures saved of a channel (on request from a live tile, or on the channel's
// schedule), a day at a time, newest first. A picture opens large; it can be deleted there.
// The channel's schedule (a picture every N minutes) is set from here too.

import { api, apiBlobUrl, plainWords } from './api.js';
import { el, Tree } from './devices.js';

const PAGE = 24;
let root = null;
let ui = null;
let chosen = null; // { device, channel, name }
let offset = 0;
let urls = []; // object URLs of the shown thumbnails, revoked when they go

const pad2 = (n) => String(n).padStart(2, '0');
const isoDay = (d) => `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;
const clock = (ms) => { const d = new Date(ms); return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`; };

function build(el_) {
  root = el_;
  const left = el('div', { class: 'side' });
  const day = el('input', { type: 'date', 'aria-label': 'Day', value: isoDay(new Date()), onchange: () => { offset = 0; load(); } });
  const every = el('select', { 'aria-label': 'Schedule', onchange: () => setSchedule() },
    ...[['0', 'No schedule'], ['60', 'Every minute'], ['300', 'Every 5 minutes'], ['900', 'Every 15 minutes'], ['3600', 'Every hour']].map(([v, t]) => el('option', { value: v }, t)));
  const take = el('button', { type: 'button', onclick: () => takeNow() }, 'Take one now');
  const prev = el('button', { type: 'button', class: 'quiet', onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, '\u2039 Newer');
  const next = el('button', { type: 'button', class: 'quiet', onclick: () => { offset += PAGE; load(); } }, 'Older \u203a');
  ui = {
    day, every, take, prev, next,
    title: el('h2', {}, 'Gallery'),
    status: el('p', { class: 'muted', role: 'status' }, 'Choose a channel.'),
    grid: el('div', { class: 'gallery-grid' }),
    viewer: el('div', { class: 'gallery-viewer', hidden: true, role: 'dialog', 'aria-label': 'Picture' }),
  };
  root.append(el('div', { class: 'split' }, left,
    el('div', { class: 'details gallery' }, ui.title, el('div', { class: 'rec-tools' }, day, take, el('label', { class: 'muted' }, 'Schedule ', every)),
      ui.status, ui.grid, el('div', { class: 'rec-tools' }, prev, next), ui.viewer)));
  new Tree(left, { onChannel: (dev, ch) => { chosen = { device: dev.id, channel: ch.id, name: ch.name || ch.id }; offset = 0; load(); loadSchedule(); } }).load();
}

export function show(el_) {
  if (!root) build(el_);
  else if (chosen) load();
}

let loads = 0; // the latest load: an answer to an earlier one is dropped

/** The chosen channel's pictures of the chosen day, a page of them. */
async function load() {
  if (!chosen) return;
  const mine = ++loads;
  ui.title.textContent = chosen.name;
  const [y, m, d] = ui.day.value.split('-').map(Number);
  const from = Math.floor(new Date(y, m - 1, d).getTime() / 1000);
  try {
    const r = await api(`/api/v1/snapshots?device=${chosen.device}&channel=${chosen.channel}&from=${from}&to=${from + 86400}&offset=${offset}&limit=${PAGE}`);
    if (mine !== loads) return;
    urls.forEach((u) => URL.revokeObjectURL(u));
    urls = [];
    ui.grid.replaceChildren(...r.items.map(figure));
    ui.status.textContent = r.total ? `${r.total} pictures this day${r.total > PAGE ? ` (${offset + 1}\u2013${Math.min(offset + PAGE, r.total)})` : ''}.` : 'No pictures this day.';
    ui.prev.disabled = offset === 0;
    ui.next.disabled = offset + PAGE >= r.total;
  } catch (e) {
    ui.status.textContent = plainWords(e);
  }
}

/** A thumbnail that opens the picture. */
function figure(p) {
  const img = el('img', { alt: `${chosen.name} at ${clock(p.taken_ms)}`, loading: 'lazy' });
  apiBlobUrl(p.url).then((u) => { urls.push(u); img.src = u; }).catch(() => { img.alt = 'Picture gone'; });
  return el('figure', { class: 'shot', 'data-id': p.id },
    el('button', { type: 'button', class: 'shot-open', 'aria-label': `Open the picture of ${clock(p.taken_ms)}`, onclick: () => open(p, img) }, img),
    el('figcaption', {}, clock(p.taken_ms)));
}

function open(p, img) {
  const close = el('button', { type: 'button', class: 'quiet', onclick: () => { ui.viewer.hidden = true; } }, 'Close');
  const del = el('button', { type: 'button', class: 'danger', onclick: () => remove(p) }, 'Delete');
  ui.viewer.replaceChildren(el('img', { src: img.src, alt: img.alt }), el('div', { class: 'rec-tools' }, el('span', {}, `${chosen.name} \u00b7 ${new Date(p.taken_ms).toLocaleString()}`), del, close));
  ui.viewer.hidden = false;
  close.focus();
}

async function remove(p) {
  try {
    await api(p.url, { method: 'DELETE' });
    ui.viewer.hidden = true;
    window.gbcToast('Picture deleted.');
    load();
  } catch (e) {
    window.gbcToast(plainWords(e), 'error');
  }
}

async function takeNow() {
  if (!chosen) return;
  ui.take.disabled = true;
  try {
    await api(`/api/v1/devices/${chosen.device}/channels/${chosen.channel}/snapshots`, { method: 'POST' });
    ui.day.value = isoDay(new Date());
    offset = 0;
    await load();
  } catch (e) {
    window.gbcToast(plainWords(e), 'error');
  } finally {
    ui.take.disabled = false;
  }
}

async function loadSchedule() {
  try {
    const s = await api(`/api/v1/devices/${chosen.device}/channels/${chosen.channel}/snapshot-schedule`);
    const v = String(s.every_secs || 0);
    if (![...ui.every.options].some((o) => o.value === v)) ui.every.append(el('option', { value: v }, `Every ${v} s`));
    ui.every.value = v;
  } catch (e) {
    ui.status.textContent = plainWords(e);
  }
}

async function setSchedule() {
  if (!chosen) return;
  try {
    await api(`/api/v1/devices/${chosen.device}/channels/${chosen.channel}/snapshot-schedule`, { method: 'PUT', body: { every_secs: Number(ui.every.value) } });
    window.gbcToast(ui.every.value === '0' ? 'Schedule ended.' : 'Pictures will be taken on schedule.');
  } catch (e) {
    window.gbcToast(plainWords(e), 'error');
  }
}
