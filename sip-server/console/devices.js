// Devices: a paged, searchable tree device → channels with live presence, and (on the Devices
// page) a device's details and settings. The Live page reuses the tree as its channel picker.

import { api, apiBlobUrl, plainWords } from './api.js';

const PAGE = 50;

export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'class') e.className = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else if (v !== false && v != null) e.setAttribute(k, v === true ? '' : v);
  }
  e.append(...children.filter((c) => c != null));
  return e;
}

export function ago(ms) {
  if (!ms) return '';
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + ' s ago';
  if (s < 3600) return Math.floor(s / 60) + ' min ago';
  if (s < 86400) return Math.floor(s / 3600) + ' h ago';
  return new Date(ms).toLocaleString();
}

/** A device tree. `onChannel(device, channel)` when a channel is chosen, `onDevice(device)`. */
export class Tree {
  constructor(root, { onChannel, onDevice }) {
    this.onChannel = onChannel;
    this.onDevice = onDevice;
    this.offset = 0;
    this.total = 0;
    this.q = '';
    this.online = '';
    this.rows = new Map(); // device id → { dev, li }
    this.search = el('input', { type: 'search', placeholder: 'Device id\u2026', 'aria-label': 'Search by device id', inputmode: 'numeric' });
    this.filter = el('select', { 'aria-label': 'Show' }, el('option', { value: '' }, 'All'), el('option', { value: 'true' }, 'Online'), el('option', { value: 'false' }, 'Offline'));
    this.list = el('ul', { class: 'tree', role: 'tree' });
    this.status = el('p', { class: 'muted', role: 'status' });
    this.prev = el('button', { class: 'quiet', onclick: () => this.page(-1) }, '\u2039 Prev');
    this.next = el('button', { class: 'quiet', onclick: () => this.page(1) }, 'Next \u203a');
    this.count = el('span', { class: 'muted' });
    root.append(el('div', { class: 'tree-tools' }, this.search, this.filter), this.status, this.list, el('div', { class: 'pager' }, this.prev, this.count, this.next));
    let debounce;
    this.search.addEventListener('input', () => {
      clearTimeout(debounce);
      debounce = setTimeout(() => { this.q = this.search.value.replace(/\D/g, ''); this.offset = 0; this.load(); }, 200);
    });
    this.filter.addEventListener('change', () => { this.online = this.filter.value; this.offset = 0; this.load(); });
    window.addEventListener('gbc:presence', (e) => this.presence(e.detail));
    window.addEventListener('gbc:resync', () => this.load());
    setInterval(() => { if (root.offsetParent) this.load(true); }, 15000);
    setInterval(() => this.tick(), 5000);
  }

  page(dir) {
    const next = this.offset + dir * PAGE;
    if (next < 0 || next >= this.total) return;
    this.offset = next;
    this.load();
  }

  async load(quiet = false) {
    const params = new URLSearchParams({ offset: this.offset, limit: PAGE });
    if (this.q) params.set('q', this.q);
    if (this.online) params.set('online', this.online);
    let data;
    try {
      data = await api('/api/v1/devices?' + params);
    } catch (e) {
      if (!quiet) this.status.textContent = plainWords(e);
      return;
    }
    this.total = data.total;
    this.status.textContent = data.total ? '' : (this.q ? 'No device id starts with ' + this.q + '.' : 'No device has registered yet.');
    const open = new Set([...this.rows.values()].filter((r) => r.open).map((r) => r.dev.id));
    this.rows.clear();
    this.list.replaceChildren(...data.items.map((d) => this.row(d, open.has(d.id))));
    const last = Math.min(this.offset + PAGE, data.total);
    this.count.textContent = data.total ? `${this.offset + 1}\u2013${last} of ${data.total}` : '';
    this.prev.disabled = this.offset === 0;
    this.next.disabled = last >= data.total;
  }

  row(dev, open) {
    const caret = el('button', { class: 'caret', 'aria-expanded': 'false', 'aria-label': 'Channels of ' + (dev.info.name || dev.id) }, '\u25b8');
    const name = el('button', { class: 'name', title: dev.id }, el('span', {}, dev.info.name || dev.id), el('small', { class: 'id' }, dev.id));
    const seen = el('span', { class: 'seen' });
    const channels = el('ul', { class: 'channels', role: 'group', hidden: true });
    const li = el('li', { class: 'dev', role: 'treeitem', 'data-id': dev.id },
      el('div', { class: 'row' }, caret, el('span', { class: 'dot', 'aria-hidden': 'true' }), name, seen), channels);
    const r = { dev, li, seen, channels, caret, open: false };
    this.rows.set(dev.id, r);
    caret.addEventListener('click', () => this.toggle(r));
    name.addEventListener('click', () => { this.select(dev.id); if (this.onDevice) this.onDevice(r.dev); });
    this.paint(r);
    if (open) this.toggle(r);
    return li;
  }

  paint(r) {
    r.li.classList.toggle('online', r.dev.online);
    r.li.classList.toggle('offline', !r.dev.online);
    r.li.querySelector('.dot').title = r.dev.online ? 'online' : 'offline';
    r.seen.textContent = (r.dev.online ? '' : 'offline \u00b7 ') + ago(r.dev.last_seen_ms);
  }

  tick() { for (const r of this.rows.values()) this.paint(r); }

  select(id) {
    for (const r of this.rows.values()) r.li.classList.toggle('selected', r.dev.id === id);
  }

  presence(ev) {
    const r = this.rows.get(ev.device_id);
    if (!r) {
      // A device that registered for the first time belongs on the list (if the page has room).
      if (ev.online && this.rows.size < PAGE && !this.q) this.load(true);
      return;
    }
    r.dev.online = ev.online;
    r.dev.last_seen_ms = Math.max(r.dev.last_seen_ms || 0, ev.at_ms);
    this.paint(r);
  }

  async toggle(r) {
    r.open = !r.open;
    r.caret.setAttribute('aria-expanded', String(r.open));
    r.caret.textContent = r.open ? '\u25be' : '\u25b8';
    r.channels.hidden = !r.open;
    if (!r.open) return;
    r.channels.replaceChildren(el('li', { class: 'muted' }, 'Loading\u2026'));
    try {
      const data = await api(`/api/v1/devices/${r.dev.id}/channels`);
      r.channels.replaceChildren(...(data.items.length ? data.items.map((c) => this.channel(r.dev, c)) : [el('li', { class: 'muted' }, 'No channels reported. Re-query the catalog.')]));
      this.thumbnails(r);
    } catch (e) {
      r.channels.replaceChildren(el('li', { class: 'error' }, plainWords(e)));
    }
  }

  /** The newest saved picture of each channel shown, as a thumbnail beside its name (one list
   *  call for the device, then the pictures it names). */
  async thumbnails(r) {
    let pics;
    try {
      pics = (await api(`/api/v1/snapshots?device=${r.dev.id}&limit=200`)).items;
    } catch {
      return; // no gallery: the tree works without pictures
    }
    const newest = new Map();
    for (const p of pics) if (!newest.has(p.channel_id)) newest.set(p.channel_id, p);
    for (const [channel, p] of newest) {
      const slot = r.channels.querySelector(`.ch[data-ch="${channel}"] .thumb`);
      if (!slot) continue;
      apiBlobUrl(p.url).then((u) => {
        if (slot.src) URL.revokeObjectURL(slot.src);
        slot.src = u;
        slot.hidden = false;
      }).catch(() => {});
    }
  }

  channel(dev, c) {
    const status = (c.status || '').toUpperCase();
    return el('li', { role: 'treeitem' },
      el('button', { class: 'ch', 'data-ch': c.id, title: 'Play ' + (c.name || c.id), onclick: () => this.onChannel(dev, c) },
        el('span', { class: 'play', 'aria-hidden': 'true' }, '\u25b6'), el('img', { class: 'thumb', alt: '', hidden: true }), c.name || c.id),
      el('span', { class: 'st ' + (status === 'ON' || status === 'OK' ? 'on' : 'off') }, status || ''));
  }
}

let tree = null;
let details = null;

export function show(root) {
  if (tree) return tree.load(true);
  details = el('aside', { class: 'details', 'aria-live': 'polite' }, el('p', { class: 'muted' }, 'Choose a device to see its details. Choose a channel to watch it.'));
  const left = el('div', { class: 'side' });
  root.append(el('div', { class: 'split' }, left, details));
  tree = new Tree(left, {
    onChannel: (dev, ch) => window.dispatchEvent(new CustomEvent('gbc:open-channel', { detail: { device: dev.id, channel: ch.id, name: ch.name || ch.id } })),
    onDevice: (dev) => showDetails(dev.id),
  });
  tree.load();
}

function field(label, value) {
  return value == null || value === '' ? null : el('div', { class: 'field' }, el('dt', {}, label), el('dd', {}, String(value)));
}

async function showDetails(id) {
  let dev;
  try {
    dev = await api('/api/v1/devices/' + id);
  } catch (e) {
    details.replaceChildren(el('p', { class: 'error' }, plainWords(e)));
    return;
  }
  const msg = el('p', { class: 'muted', role: 'status' });
  const act = (label, f) => el('button', { onclick: async () => { msg.textContent = ''; try { msg.textContent = await f(); } catch (e) { msg.textContent = plainWords(e); } } }, label);
  const pw = el('input', { type: 'password', autocomplete: 'new-password', 'aria-label': 'New password', placeholder: 'New password' });
  const transport = el('select', { 'aria-label': 'Play transport' },
    ...[['', 'Cluster default'], ['udp', 'UDP'], ['tcp-passive', 'TCP passive'], ['tcp-active', 'TCP active']].map(([v, t]) => el('option', { value: v }, t)));
  api(`/api/v1/devices/${id}/play-transport`).then((t) => { transport.value = t.transport || ''; }, () => {});
  const st = dev.status || {};
  details.replaceChildren(
    el('h2', {}, dev.info.name || dev.id, el('span', { class: 'badge ' + (dev.online ? 'on' : 'off') }, dev.online ? 'online' : 'offline')),
    el('dl', {},
      field('Device id', dev.id), field('Manufacturer', dev.info.manufacturer), field('Model', dev.info.model), field('Firmware', dev.info.firmware),
      field('Channels', dev.channel_count), field('Signalling', dev.transport.toUpperCase()), field('Seen at (observed address)', dev.source_addr),
      field('Contact (as sent)', dev.contact), field('Owning sip node', dev.node), field('GB version', dev.gb_version), field('User agent', dev.user_agent),
      field('Registered', dev.registered_at_ms ? new Date(dev.registered_at_ms).toLocaleString() : ''), field('Last seen', ago(dev.last_seen_ms)),
      field('Registration expires', dev.expires_secs ? dev.expires_secs + ' s' : 'unregistered'), field('Keepalive every', dev.keepalive_interval_secs ? dev.keepalive_interval_secs + ' s' : ''),
      field('Status', [st.online, st.status].filter(Boolean).join(' / ')), field('Recording', st.record), field('Device time', st.device_time)),
    el('div', { class: 'actions' },
      act('Re-query catalog', async () => { await api(`/api/v1/devices/${id}/catalog`, { method: 'POST' }); return 'Catalog requested; the channels update when the device answers.'; }),
      act('Re-query info', async () => { await api(`/api/v1/devices/${id}/info`, { method: 'POST' }); return 'Device info requested.'; })),
    el('form', { class: 'inline', onsubmit: async (e) => {
      e.preventDefault();
      try { await api(`/api/v1/devices/${id}/password`, { method: 'PUT', body: { password: pw.value || null } }); msg.textContent = pw.value ? 'Password set; the device uses it at its next registration.' : 'The device now uses the cluster password.'; pw.value = ''; } catch (err) { msg.textContent = plainWords(err); }
    } }, el('label', {}, 'Device password ', pw), el('button', { type: 'submit' }, 'Save')),
    el('form', { class: 'inline', onsubmit: async (e) => {
      e.preventDefault();
      try { await api(`/api/v1/devices/${id}/play-transport`, { method: 'PUT', body: { transport: transport.value || null } }); msg.textContent = 'Play transport saved.'; } catch (err) { msg.textContent = plainWords(err); }
    } }, el('label', {}, 'Play transport ', transport), el('button', { type: 'submit' }, 'Save')),
    msg);
  tree.select(id);
}
