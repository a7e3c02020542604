// Cluster: the nodes of every kind with their load, and the play sessions with each stream's
// bitrate and loss as small live plots and a button to stop it.

import { api, plainWords } from './api.js';
import { el, ago } from './devices.js';

const HISTORY = 60; // points per plot (one per refresh)
let root = null;
let timer = null;
const history = new Map(); // stream id → { kbps: [], loss: [], last: {packets, lost} }

export function show(el_) {
  if (!root) {
    root = el_;
    root.append(el('div', { class: 'scroll' },
      el('h2', {}, 'Media nodes'), el('div', { id: 'cl-media' }),
      el('h2', {}, 'Sessions'), el('div', { id: 'cl-sessions' }),
      el('h2', {}, 'Signalling, LPR and NVR nodes'), el('div', { id: 'cl-other' }),
      el('p', { id: 'cl-status', class: 'muted', role: 'status' })));
    window.addEventListener('gbc:play', () => { if (!root.hidden) refresh(); });
  }
  refresh();
  clearInterval(timer);
  timer = setInterval(() => { if (root.hidden) { clearInterval(timer); timer = null; } else refresh(); }, 2000);
}

function table(head, rows, empty) {
  if (!rows.length) return el('p', { class: 'muted' }, empty);
  return el('table', {}, el('thead', {}, el('tr', {}, ...head.map((h) => el('th', {}, h)))), el('tbody', {}, ...rows));
}

/** A sparkline of `values` (newest last) as inline SVG. */
function plot(values, label, unit) {
  const w = 120, h = 28;
  const max = Math.max(1e-9, ...values);
  const pts = values.map((v, i) => `${(i * w) / (HISTORY - 1)},${h - 2 - ((h - 4) * v) / max}`).join(' ');
  const svg = document.createElementNS('http://www.w3.org/2000/svg', 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('class', 'spark');
  svg.setAttribute('role', 'img');
  const last = values.length ? values[values.length - 1] : 0;
  svg.setAttribute('aria-label', `${label}: ${last.toFixed(unit === '%' ? 2 : 0)} ${unit}`);
  const line = document.createElementNS('http://www.w3.org/2000/svg', 'polyline');
  line.setAttribute('points', pts);
  svg.append(line);
  return el('span', { class: 'plot' }, svg, el('span', { class: 'muted' }, `${last.toFixed(unit === '%' ? 2 : 0)} ${unit}`));
}

async function refresh() {
  const status = document.getElementById('cl-status');
  let nodes, sessions, streams;
  try {
    [nodes, sessions, streams] = await Promise.all([api('/api/v1/cluster'), api('/api/v1/streams'), api('/api/v1/cluster/streams')]);
  } catch (e) {
    status.textContent = plainWords(e);
    return;
  }
  status.textContent = streams.unreachable.length ? 'Not answering: ' + streams.unreachable.map((u) => u.node).join(', ') : '';
  document.getElementById('cl-media').replaceChildren(table(
    ['Node', 'API', 'Streams', 'Reserved', 'Ingest', 'CPU', 'Updated'],
    nodes.media.map((n) => el('tr', { 'data-node': n.id },
      el('td', {}, n.id), el('td', {}, n.api_url), el('td', {}, `${n.streams} / ${n.max_streams}`),
      el('td', {}, String(n.reserved)), el('td', {}, `${(n.mbps || 0).toFixed(1)} Mbit/s` + (n.capacity_mbps ? ` of ${n.capacity_mbps}` : '')),
      el('td', {}, `${(n.cpu || 0).toFixed(0)} %`), el('td', {}, ago(n.updated_ms)))),
    'No media node is running: streams cannot be played.'));
  const stats = new Map(streams.items.map((s) => [s.stream_id, s]));
  const seen = new Set();
  const rows = sessions.items.map((s) => {
    seen.add(s.stream_id);
    const st = stats.get(s.stream_id);
    const h = history.get(s.stream_id) || { kbps: [], loss: [], last: null };
    history.set(s.stream_id, h);
    if (st) {
      // Loss over the last interval, not since the start.
      const dp = h.last ? st.packets - h.last.packets : 0, dl = h.last ? st.lost - h.last.lost : 0;
      h.kbps.push(st.bitrate_kbps);
      h.loss.push(dp + dl > 0 ? (100 * dl) / (dp + dl) : 0);
      h.last = { packets: st.packets, lost: st.lost };
      for (const k of ['kbps', 'loss']) if (h[k].length > HISTORY) h[k].shift();
    }
    const stop = el('button', { class: 'quiet', onclick: async () => {
      stop.disabled = true;
      try { await api(`/api/v1/streams/${s.stream_id}?all=true`, { method: 'DELETE' }); refresh(); } catch (e) { status.textContent = plainWords(e); stop.disabled = false; }
    } }, 'Stop');
    return el('tr', { 'data-stream': s.stream_id },
      el('td', {}, s.stream_id), el('td', {}, s.state), el('td', {}, s.media_node || '\u2014'), el('td', {}, s.transport),
      el('td', {}, st ? `${st.video_codec || ''} ${st.width ? st.width + '\u00d7' + st.height : ''}` : ''),
      el('td', {}, st ? String(st.viewers) : ''), el('td', {}, plot(h.kbps, 'bitrate', 'kbit/s')), el('td', {}, plot(h.loss, 'loss', '%')),
      el('td', {}, s.started_ms ? ago(s.started_ms) : ''), el('td', {}, stop));
  });
  for (const id of [...history.keys()]) if (!seen.has(id)) history.delete(id);
  document.getElementById('cl-sessions').replaceChildren(table(['Stream', 'State', 'Media node', 'Transport', 'Video', 'Viewers', 'Bitrate', 'Loss', 'Started', ''], rows, 'Nothing is playing.'));
  const other = [
    ...nodes.sip.map((n) => el('tr', {}, el('td', {}, 'sip'), el('td', {}, n.id), el('td', {}, `SIP ${n.sip}, API port ${n.api_port}`))),
    ...nodes.lpr.map((n) => el('tr', {}, el('td', {}, 'lpr'), el('td', {}, n.id), el('td', {}, n.api_url))),
    ...nodes.nvr.map((n) => el('tr', {}, el('td', {}, 'nvr'), el('td', {}, n.id), el('td', {}, `${n.api_url} \u00b7 ${n.sessions} / ${n.max_sessions} sessions \u00b7 ${(n.mbps || 0).toFixed(1)} Mbit/s`))),
  ];
  document.getElementById('cl-other').replaceChildren(table(['Kind', 'Node', 'Where'], other, 'None.'));
}
