// Map: the latest position of every mobile device and the track of the one chosen, on an SVG
// graticule fitted to the points (longitude across, latitude up, equirectangular with the
// latitude's cosine). No tiles from anywhere: a site without internet shows it the same.

import { api, plainWords } from './api.js';
import { el } from './devices.js';

const NS = 'http://www.w3.org/2000/svg';
const W = 1000;
const H = 600;
let root = null;
let svg = null;
let status = null;
const latest = new Map(); // `device:source` → position
let chosen = null;
let track = [];

const key = (p) => `${p.device_id}:${p.source_id}`;

function node(tag, attrs, text) {
  const n = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
  if (text != null) n.textContent = text;
  return n;
}

/** A projection fitted to `points` with a margin (at least ~200 m across). */
function fit(points) {
  let [x0, x1, y0, y1] = [180, -180, 90, -90];
  for (const p of points) { x0 = Math.min(x0, p.longitude); x1 = Math.max(x1, p.longitude); y0 = Math.min(y0, p.latitude); y1 = Math.max(y1, p.latitude); }
  const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180) || 1;
  const span = Math.max((x1 - x0) * k, y1 - y0, 0.002) * 1.3;
  const cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
  const s = Math.min(W, H) / span;
  return { k, step: span / 6, x: (lon) => W / 2 + (lon - cx) * k * s, y: (lat) => H / 2 - (lat - cy) * s, lon: (x) => cx + (x - W / 2) / (k * s), lat: (y) => cy - (y - H / 2) / s };
}

function draw() {
  const points = [...latest.values(), ...track];
  svg.replaceChildren(node('rect', { x: 0, y: 0, width: W, height: H, class: 'map-bg' }));
  if (!points.length) { status.textContent = 'No device has reported a position.'; return; }
  const f = fit(points);
  // A graticule every sixth of the view, labelled in degrees.
  const digits = f.step < 0.01 ? 4 : 2;
  for (let i = -3; i <= 3; i++) {
    const lon = f.lon(W / 2) + (i * f.step) / f.k, lat = f.lat(H / 2) + i * f.step;
    svg.append(node('line', { x1: f.x(lon), y1: 0, x2: f.x(lon), y2: H, class: 'map-grid' }), node('text', { x: f.x(lon) + 3, y: H - 6, class: 'map-label' }, lon.toFixed(digits) + '\u00b0'));
    svg.append(node('line', { x1: 0, y1: f.y(lat), x2: W, y2: f.y(lat), class: 'map-grid' }), node('text', { x: 4, y: f.y(lat) - 3, class: 'map-label' }, lat.toFixed(digits) + '\u00b0'));
  }
  if (track.length > 1) svg.append(node('polyline', { points: track.map((p) => `${f.x(p.longitude)},${f.y(p.latitude)}`).join(' '), class: 'map-track' }));
  for (const p of latest.values()) {
    const g = node('g', { class: 'map-dot' + (chosen === key(p) ? ' chosen' : ''), 'data-key': key(p), tabindex: 0, role: 'button' });
    g.append(node('circle', { cx: f.x(p.longitude), cy: f.y(p.latitude), r: 7 }), node('text', { x: f.x(p.longitude) + 10, y: f.y(p.latitude) + 4, class: 'map-name' }, p.source_id.slice(-7)));
    g.append(node('title', {}, `${p.source_id}\n${p.latitude.toFixed(5)}, ${p.longitude.toFixed(5)}${p.speed != null ? `\n${p.speed} km/h` : ''}\n${new Date(p.time || p.received_ms).toLocaleString()}`));
    g.addEventListener('click', () => choose(p));
    g.addEventListener('keydown', (e) => { if (e.key === 'Enter') choose(p); });
    svg.append(g);
  }
  status.textContent = `${latest.size} device${latest.size === 1 ? '' : 's'} reporting. Click one for its track.`;
}

async function choose(p) {
  chosen = key(p);
  try {
    const r = await api(`/api/v1/devices/${p.device_id}/positions/${p.source_id}/track?limit=200`);
    track = r.items.reverse();
  } catch (e) {
    status.textContent = plainWords(e);
  }
  draw();
}

async function load() {
  try {
    const r = await api('/api/v1/positions');
    latest.clear();
    for (const p of r.items) latest.set(key(p), p);
  } catch (e) {
    status.textContent = plainWords(e);
    return;
  }
  draw();
}

export function show(el_) {
  if (!root) {
    root = el_;
    svg = node('svg', { viewBox: `0 0 ${W} ${H}`, class: 'map', role: 'img', 'aria-label': 'Positions of mobile devices' });
    status = el('p', { class: 'muted', role: 'status' });
    root.append(el('div', { class: 'details' }, el('h2', {}, 'Map'), status, svg));
    window.addEventListener('gbc:position', (e) => {
      const p = e.detail;
      latest.set(key(p), p);
      if (chosen === key(p)) { track.push(p); if (track.length > 1000) track.shift(); }
      if (!root.hidden) draw();
    });
    window.addEventListener('gbc:resync', () => { if (!root.hidden) load(); });
  }
  load();
}
