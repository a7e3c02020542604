// Alarms: what devices raised, newest first, new ones added as they arrive (the event stream's
// `alarm`), filtered by device, paged; and the Map: where mobile devices are, drawn from their
// latest positions and tracks on a plain SVG graticule (no map tiles: nothing leaves the site).

import { api, plainWords } from './api.js';
import { el } from './devices.js';

const PAGE = 50;
const PRIORITY = { 1: 'Level 1 (highest)', 2: 'Level 2', 3: 'Level 3', 4: 'Level 4' };
let root = null;
let body = null;
let status = null;
let device = null;
let offset = 0;
let total = 0;

const when = (a) => new Date(a.time || a.received_ms).toLocaleString();

function row(a) {
  return el('tr', { class: 'p' + (a.priority || 0), 'data-id': a.id },
    el('td', {}, when(a)),
    el('td', {}, a.device_id),
    el('td', {}, a.source_id),
    el('td', {}, PRIORITY[a.priority] || ''),
    el('td', {}, a.method_name || ''),
    el('td', {}, a.description || ''));
}

function counted(shown) {
  status.textContent = total ? `${offset + 1}\u2013${offset + shown} of ${total}` : 'No alarms.';
}

async function load() {
  const q = new URLSearchParams({ offset, limit: PAGE });
  if (device.value.trim()) q.set('device', device.value.trim());
  try {
    const r = await api('/api/v1/alarms?' + q);
    body.replaceChildren(...r.items.map(row));
    total = r.total;
    counted(r.items.length);
  } catch (e) {
    status.textContent = plainWords(e);
  }
}

export function show(el_) {
  if (!root) {
    root = el_;
    device = el('input', { type: 'search', placeholder: 'Device id\u2026', 'aria-label': 'Only this device', inputmode: 'numeric', onchange: () => { offset = 0; load(); } });
    body = el('tbody', { id: 'alarm-rows' });
    status = el('span', { class: 'muted', role: 'status' });
    const prev = el('button', { class: 'quiet', onclick: () => { offset = Math.max(0, offset - PAGE); load(); } }, '\u2039 Newer');
    const next = el('button', { class: 'quiet', onclick: () => { offset += PAGE; load(); } }, 'Older \u203a');
    root.append(el('div', { class: 'details' }, el('h2', {}, 'Alarms'), el('div', { class: 'rec-tools' }, device, prev, status, next),
      el('table', { class: 'alarms' }, el('thead', {}, el('tr', {}, ...['Time', 'Device', 'Source', 'Priority', 'Kind', 'Description'].map((h) => el('th', {}, h)))), body)));
    window.addEventListener('gbc:alarm', (e) => {
      const a = e.detail;
      if (offset !== 0 || (device.value.trim() && a.device_id !== device.value.trim())) return;
      body.prepend(row(a));
      while (body.children.length > PAGE) body.lastChild.remove();
      total += 1;
      counted(body.children.length);
    });
    window.addEventListener('gbc:resync', () => { if (!root.hidden) load(); });
  }
  load();
}
