// LPR: passages arriving live (plate crop and full image), search by plate, camera and time,
// the cameras with their state and an open-gate button, and the whitelist of a lane group.

import { api, apiBlobUrl, plainWords } from './api.js';
import { el, ago } from './devices.js';

const LIVE = 12; // passages kept in the live strip
let root = null;
let cameras = [];

const VERDICTS = { whitelisted: 'whitelisted', open_all: 'open to all', blacklisted: 'BLACKLISTED', not_listed: 'not listed', not_valid_now: 'not valid now', policy_never: 'gate closed by policy', no_plate: 'no plate read', offline_record: 'stored by the camera' };

export function show(el_) {
  if (root) return loadCameras();
  root = el_;
  const live = el('div', { class: 'passages', id: 'lpr-live', 'aria-live': 'polite' });
  root.append(el('div', { class: 'scroll' },
    el('h2', {}, 'Passages ', el('span', { class: 'muted' }, 'live')), live,
    searchForm(),
    el('h2', {}, 'Cameras'), el('div', { id: 'lpr-cameras' }),
    el('h2', {}, 'Whitelist'), whitelistEditor(),
    el('p', { id: 'lpr-status', class: 'muted', role: 'status' })));
  window.addEventListener('gbc:lpr', (e) => {
    const ev = e.detail;
    if (ev.event === 'passage' && ev.passage) addLive(ev.passage);
    if (ev.event === 'camera_online' || ev.event === 'camera_offline') loadCameras();
  });
  window.addEventListener('gbc:resync', () => { if (!root.hidden) loadRecent(); });
  loadRecent();
  loadCameras();
}

function say(text) { document.getElementById('lpr-status').textContent = text; }

async function loadRecent() {
  try {
    const page = await api('/api/v1/lpr/passages?limit=' + LIVE);
    const strip = document.getElementById('lpr-live');
    strip.replaceChildren();
    for (const p of page.items.reverse()) addLive(p);
    if (!page.items.length) strip.append(el('p', { class: 'muted empty' }, 'No passage yet. They appear here as cameras send them.'));
  } catch (e) { say(plainWords(e)); }
}

/** An image of a passage, fetched with the token; `rect` crops the plate out of the full one. */
function image(p, which, rect) {
  const img = el('img', { alt: which === 'plate' ? 'Plate of ' + (p.plate || 'unread') : 'Passage at ' + new Date(p.time_ms).toLocaleString(), class: which, loading: 'lazy' });
  apiBlobUrl(`/api/v1/lpr/passages/${encodeURIComponent(p.id)}/images/${which}`).then((url) => {
    img.addEventListener('load', () => URL.revokeObjectURL(url), { once: true });
    img.src = url;
  }, () => img.replaceWith(el('span', { class: 'noimg muted' }, 'no image')));
  if (!rect) return img;
  // No crop sent: cut the plate out of the full image with the camera's rectangle.
  const box = el('span', { class: 'crop' }, img);
  img.addEventListener('load', () => {
    const w = rect.right - rect.left, h = rect.bottom - rect.top;
    if (w <= 0 || h <= 0) return;
    const scale = 120 / w;
    Object.assign(img.style, { width: img.naturalWidth * scale + 'px', left: -rect.left * scale + 'px', top: -rect.top * scale + 'px' });
    box.style.height = h * scale + 'px';
  });
  return box;
}

function card(p) {
  const rect = p.detail && p.detail.location && p.detail.location.RECT;
  const plate = p.image_plate ? image(p, 'plate') : p.image_full && rect ? image(p, 'full', rect) : null;
  return el('article', { class: 'passage ' + (p.verdict || ''), 'data-passage': p.id },
    el('div', { class: 'plate' }, p.plate || '\u2014'),
    plate,
    p.image_full ? image(p, 'full') : el('span', { class: 'noimg muted' }, 'no image'),
    el('div', { class: 'meta' },
      el('span', {}, p.serialno), el('span', {}, new Date(p.time_ms).toLocaleTimeString()),
      el('span', { class: 'verdict' }, (VERDICTS[p.verdict] || p.verdict || '') + (p.gate_opened ? ' \u00b7 gate opened' : ''))));
}

function addLive(p) {
  const strip = document.getElementById('lpr-live');
  if (strip.querySelector(`[data-passage="${CSS.escape(p.id)}"]`)) return;
  strip.querySelector('.empty')?.remove();
  strip.prepend(card(p));
  while (strip.children.length > LIVE) strip.lastChild.remove();
}

function searchForm() {
  const plate = el('input', { name: 'plate', placeholder: 'Plate', 'aria-label': 'Plate' });
  const camera = el('select', { name: 'serialno', 'aria-label': 'Camera', id: 'lpr-camera-pick' }, el('option', { value: '' }, 'Any camera'));
  const from = el('input', { type: 'datetime-local', 'aria-label': 'From' });
  const to = el('input', { type: 'datetime-local', 'aria-label': 'To' });
  const out = el('div', { id: 'lpr-results' });
  let offset = 0;
  const run = async () => {
    const q = new URLSearchParams({ offset, limit: 20 });
    if (plate.value.trim()) q.set('plate', plate.value.trim());
    if (camera.value) q.set('serialno', camera.value);
    if (from.value) q.set('from_ms', new Date(from.value).getTime());
    if (to.value) q.set('to_ms', new Date(to.value).getTime());
    try {
      const page = await api('/api/v1/lpr/passages?' + q);
      const more = el('div', { class: 'pager' },
        el('button', { class: 'quiet', type: 'button', disabled: offset === 0, onclick: () => { offset = Math.max(0, offset - 20); run(); } }, '\u2039 Newer'),
        el('span', { class: 'muted' }, page.total ? `${offset + 1}\u2013${offset + page.items.length} of ${page.total}` : 'Nothing found.'),
        el('button', { class: 'quiet', type: 'button', disabled: offset + 20 >= page.total, onclick: () => { offset += 20; run(); } }, 'Older \u203a'));
      out.replaceChildren(el('div', { class: 'passages' }, ...page.items.map(card)), more);
    } catch (e) { out.replaceChildren(el('p', { class: 'error' }, plainWords(e))); }
  };
  return el('form', { class: 'inline search', onsubmit: (e) => { e.preventDefault(); offset = 0; run(); } },
    el('h2', {}, 'Search'), plate, camera, el('label', {}, 'From ', from), el('label', {}, 'To ', to), el('button', { type: 'submit' }, 'Search'), out);
}

async function loadCameras() {
  try {
    cameras = (await api('/api/v1/lpr/cameras')).items;
  } catch (e) { say(plainWords(e)); return; }
  const pick = document.getElementById('lpr-camera-pick');
  const chosen = pick.value;
  pick.replaceChildren(el('option', { value: '' }, 'Any camera'), ...cameras.map((c) => el('option', { value: c.serialno }, c.device_name ? `${c.serialno} (${c.device_name})` : c.serialno)));
  pick.value = chosen;
  const groups = [...new Set(cameras.map((c) => c.group).filter(Boolean))];
  const list = document.getElementById('lpr-groups');
  if (list) list.replaceChildren(...groups.map((g) => el('option', { value: g })));
  document.getElementById('lpr-cameras').replaceChildren(cameras.length ? el('table', {},
    el('thead', {}, el('tr', {}, ...['Camera', 'Name', 'Address', 'State', 'Last seen', 'Lane group', 'Whitelist', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...cameras.map((c) => {
      const sync = c.whitelist_sync || {};
      const open = el('button', { onclick: async () => {
        open.disabled = true;
        try { await api(`/api/v1/lpr/cameras/${encodeURIComponent(c.serialno)}/commands`, { method: 'POST', body: { type: 'open_gate' } }); say(`Open gate sent to ${c.serialno}; it opens at the camera's next poll.`); } catch (e) { say(plainWords(e)); }
        open.disabled = false;
      } }, 'Open gate');
      return el('tr', { 'data-camera': c.serialno, class: c.online ? 'online' : 'offline' },
        el('td', {}, c.serialno), el('td', {}, c.device_name || ''), el('td', {}, c.remote || c.ipaddr || ''),
        el('td', {}, el('span', { class: 'badge ' + (c.online ? 'on' : 'off') }, c.online ? 'online' : 'offline')), el('td', {}, ago(c.last_seen_ms)),
        el('td', {}, c.group || ''), el('td', {}, sync.in_sync ? `${sync.on_camera} in sync` : `${sync.on_camera || 0} of ${sync.desired || 0}`), el('td', {}, open));
    }))) : el('p', { class: 'muted' }, 'No LPR camera has reported yet.'));
}

function whitelistEditor() {
  const group = el('input', { list: 'lpr-groups', placeholder: 'Lane group', 'aria-label': 'Lane group', value: 'default' });
  const entries = el('div', { id: 'lpr-whitelist' });
  const plate = el('input', { placeholder: 'Plate', 'aria-label': 'Plate to add', required: true });
  const black = el('input', { type: 'checkbox', 'aria-label': 'Blacklist' });
  const until = el('input', { type: 'datetime-local', 'aria-label': 'Valid until' });
  const load = async () => {
    try {
      const wl = await api(`/api/v1/lpr/groups/${encodeURIComponent(group.value)}/whitelist`);
      entries.replaceChildren(wl.items.length ? el('table', {},
        el('thead', {}, el('tr', {}, ...['Plate', 'Kind', 'Valid from', 'Valid until', ''].map((h) => el('th', {}, h)))),
        el('tbody', {}, ...wl.items.map((w) => el('tr', {},
          el('td', {}, w.plate), el('td', {}, w.need_alarm ? 'blacklist' : w.enable ? 'whitelist' : 'disabled'),
          el('td', {}, w.enable_time || ''), el('td', {}, w.overdue_time || ''),
          el('td', {}, el('button', { class: 'quiet', onclick: async () => {
            try { await api(`/api/v1/lpr/groups/${encodeURIComponent(group.value)}/whitelist/${encodeURIComponent(w.plate)}`, { method: 'DELETE' }); load(); } catch (e) { say(plainWords(e)); }
          } }, 'Remove')))))) : el('p', { class: 'muted' }, 'This group has no entries.'));
    } catch (e) { entries.replaceChildren(el('p', { class: 'error' }, plainWords(e))); }
  };
  const add = async (e) => {
    e.preventDefault();
    const entry = { plate: plate.value.trim(), enable: 1, need_alarm: black.checked ? 1 : 0 };
    if (until.value) entry.overdue_time = until.value.replace('T', ' ') + ':00';
    try { await api(`/api/v1/lpr/groups/${encodeURIComponent(group.value)}/whitelist`, { method: 'POST', body: [entry] }); plate.value = ''; load(); } catch (err) { say(plainWords(err)); }
  };
  return el('div', {},
    el('datalist', { id: 'lpr-groups' }),
    el('form', { class: 'inline', onsubmit: (e) => { e.preventDefault(); load(); } }, group, el('button', { type: 'submit', class: 'quiet' }, 'Show')),
    entries,
    el('form', { class: 'inline', onsubmit: add }, plate, el('label', {}, black, ' blacklist'), el('label', {}, 'until ', until), el('button', { type: 'submit' }, 'Add')));
}
