// Recordings: a channel's day as a timeline of what its device recorded (RecordInfo), played
// back from any point with pause, speed and seek (INFO to the device; the media node keeps the
// picture's clock continuous). A click inside the playing span seeks; elsewhere it starts a new
// playback there. A recording can also be downloaded as an MP4 (the device sends it at the
// chosen speed; a progress bar follows it, then the file is saved from the media node).

import { api, plainWords } from './api.js';
import { el, Tree } from './devices.js';
import { playerFor } from './player.js';

const SPEEDS = [0.25, 0.5, 1, 2, 4, 8];
let root = null;
let ui = null;
let chosen = null; // { device, channel, name }
let items = [];
let dayStart = 0; // Unix seconds of the shown day's local midnight
let playing = null; // { stream, start, end, player }
let poll = null;
const downloads = new Map(); // id -> { data, row } for the chosen channel's downloads
let downloadPoll = null;
const DONE = ['done', 'failed', 'cancelled', 'lost'];

const pad2 = (n) => String(n).padStart(2, '0');
const clock = (unix) => { const d = new Date(unix * 1000); return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`; };
const isoDay = (d) => `${d.getFullYear()}-${pad2(d.getMonth() + 1)}-${pad2(d.getDate())}`;

function build(el_) {
  root = el_;
  const left = el('div', { class: 'side' });
  const day = el('input', { type: 'date', 'aria-label': 'Day', value: isoDay(new Date()) });
  const kind = el('select', { 'aria-label': 'Recording type' },
    el('option', { value: 'all' }, 'All'), el('option', { value: 'time' }, 'Scheduled'), el('option', { value: 'alarm' }, 'Alarm'), el('option', { value: 'manual' }, 'Manual'));
  const video = el('video', { muted: true, playsinline: true, autoplay: true });
  video.muted = true;
  const speed = el('select', { 'aria-label': 'Speed', onchange: () => steer({ action: 'speed', scale: Number(speed.value) }) },
    ...SPEEDS.map((s) => el('option', { value: s, selected: s === 1 }, s + '\u00d7')));
  const pause = el('button', { type: 'button', class: 'quiet', disabled: true, onclick: () => steer({ action: playing && playing.paused ? 'resume' : 'pause' }) }, 'Pause');
  const stop = el('button', { type: 'button', class: 'quiet', disabled: true, onclick: () => stopPlayback() }, 'Stop');
  ui = {
    day, kind, video, speed, pause, stop,
    title: el('h2', {}, 'Recordings'),
    status: el('p', { class: 'muted', role: 'status' }),
    timeline: el('div', { class: 'timeline', role: 'group', 'aria-label': 'Day timeline' }),
    position: el('span', { class: 'position', 'aria-live': 'off' }),
    list: el('div', { class: 'rec-list' }),
    downloads: el('ul', { class: 'downloads', 'aria-label': 'Downloads' }),
    dlSpeed: el('select', { class: 'dl-speed', 'aria-label': 'Download speed' }, ...[1, 2, 4, 8].map((s) => el('option', { value: s, selected: s === 4 }, s + '\u00d7'))),
  };
  day.addEventListener('change', () => search());
  kind.addEventListener('change', () => search());
  // The picture and its controls show while something plays; the list stays in view otherwise.
  const screen = el('div', { class: 'rec-screen', hidden: true }, video);
  const controls = el('div', { class: 'rec-controls', hidden: true }, pause, el('label', { class: 'muted' }, 'Speed ', speed), stop, ui.position);
  Object.assign(ui, { screen, controls });
  root.append(el('div', { class: 'split' }, left,
    el('div', { class: 'details recordings' }, ui.title, el('div', { class: 'rec-tools' }, day, kind), ui.status, ui.timeline, screen, controls,
      ui.downloads, el('div', { class: 'rec-tools' }, el('label', { class: 'muted' }, 'Download at ', ui.dlSpeed)), ui.list)));
  new Tree(left, { onChannel: (dev, ch) => { chosen = { device: dev.id, channel: ch.id, name: ch.name || ch.id }; search(); loadDownloads(); } }).load();
  ui.status.textContent = 'Choose a channel.';
}

export function show(el_) {
  if (!root) build(el_);
  // Polling stops while the page is hidden; back on it, running downloads are followed again.
  else if (!downloadPoll && [...downloads.values()].some((e) => !DONE.includes(e.data.state))) downloadPoll = setInterval(refreshDownloads, 1000);
}

let searches = 0; // the latest search: an answer to an earlier one (another day, another channel) is dropped

/** The chosen channel's recordings on the chosen day (RecordInfo through the API). */
async function search() {
  if (!chosen) return;
  const mine = ++searches;
  const [y, m, d] = ui.day.value.split('-').map(Number);
  dayStart = Math.floor(new Date(y, m - 1, d).getTime() / 1000);
  const end = Math.min(dayStart + 86400, Math.floor(Date.now() / 1000));
  ui.title.textContent = chosen.name;
  ui.status.textContent = 'Asking the device\u2026';
  items = [];
  draw();
  try {
    const r = await api(`/api/v1/devices/${chosen.device}/channels/${chosen.channel}/records?start=${dayStart}&end=${Math.max(end, dayStart + 1)}&type=${ui.kind.value}`);
    if (mine !== searches) return; // a later search owns the page
    items = r.items;
    const partial = r.truncated ? ` (the first ${r.total} of ${r.sum_num})` : r.complete ? '' : ' (the device stopped answering: some may be missing)';
    ui.status.textContent = items.length ? `${items.length} recordings${partial}. Click the timeline to play from there.` : 'No recordings on this day.';
  } catch (e) {
    if (mine !== searches) return;
    ui.status.textContent = plainWords(e);
  }
  draw();
}

/** The day as an SVG bar: recorded spans (alarm recordings in red), hour ticks, the playing span
 *  and its position. */
function draw() {
  const svgNs = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(svgNs, 'svg');
  svg.setAttribute('viewBox', '0 0 1440 34');
  svg.setAttribute('preserveAspectRatio', 'none');
  svg.setAttribute('class', 'tl');
  const rect = (x, w, y, h, cls) => {
    const r = document.createElementNS(svgNs, 'rect');
    Object.entries({ x, y, width: Math.max(w, 0.5), height: h, class: cls }).forEach(([k, v]) => r.setAttribute(k, v));
    svg.append(r);
    return r;
  };
  rect(0, 1440, 8, 22, 'tl-bg');
  for (const it of items) {
    const a = Math.max(0, (it.start_unix - dayStart) / 60);
    const b = Math.min(1440, (it.end_unix - dayStart) / 60);
    if (b > a) rect(a, b - a, 8, 22, it.type === 'alarm' ? 'tl-rec alarm' : 'tl-rec').setAttribute('data-start', it.start_unix);
  }
  // Hour labels in HTML under the bar (SVG text would stretch with the bar).
  // (Positioned through CSSOM: the CSP allows no inline style attributes.)
  const hours = el('div', { class: 'tl-hours', 'aria-hidden': 'true' }, ...[0, 3, 6, 9, 12, 15, 18, 21].map((h) => {
    const label = el('span', {}, pad2(h) + ':00');
    label.style.left = `${(h / 24) * 100}%`;
    return label;
  }));
  if (playing) {
    rect((playing.start - dayStart) / 60, (playing.end - playing.start) / 60, 4, 2, 'tl-span');
    if (playing.at) rect((playing.at - dayStart) / 60 - 0.5, 1.5, 2, 30, 'tl-cursor');
  }
  svg.addEventListener('click', (e) => {
    const box = svg.getBoundingClientRect();
    const at = dayStart + Math.round(((e.clientX - box.left) / box.width) * 86400);
    clicked(at);
  });
  ui.timeline.replaceChildren(svg, hours);
  ui.list.replaceChildren(items.length ? el('table', {},
    el('thead', {}, el('tr', {}, el('th', {}, 'From'), el('th', {}, 'To'), el('th', {}, 'Type'), el('th', {}))),
    el('tbody', {}, ...items.slice(0, 200).map((it) => el('tr', {},
      el('td', {}, clock(it.start_unix)), el('td', {}, clock(it.end_unix)), el('td', {}, it.type || ''),
      el('td', {}, el('button', { type: 'button', class: 'quiet', onclick: () => clicked(it.start_unix) }, 'Play'),
        el('button', { type: 'button', class: 'quiet', onclick: () => startDownload(it) }, 'Download')))))) : '');
}

/** A click at `at`: a seek within the playing span, else a new playback from there. */
function clicked(at) {
  if (!chosen) return;
  if (playing && at >= playing.start && at < playing.end) return steer({ action: 'seek', position: at - playing.start });
  // Play from there to the end of the recording it falls in (or an hour when between them).
  const within = items.find((it) => at >= it.start_unix && at < it.end_unix);
  const next = items.find((it) => it.start_unix > at);
  const start = within ? at : next ? next.start_unix : at;
  const end = Math.min(Math.floor(Date.now() / 1000), within ? Math.max(within.end_unix, start + 60) : start + 3600, dayStart + 86400);
  startPlayback(start, end);
}

async function startPlayback(start, end) {
  await stopPlayback();
  ui.status.textContent = `Playing from ${clock(start)}\u2026`;
  try {
    const r = await api(`/api/v1/devices/${chosen.device}/channels/${chosen.channel}/playback`, { method: 'POST', body: { start: String(start), end: String(end) } });
    const form = localStorage.getItem('gbc.form') || 'auto';
    playing = { stream: r.stream_id, start, end, at: start, paused: false };
    playing.player = playerFor(form, ui.video, r.urls, {
      onError: (message) => { ui.status.textContent = message; },
      onFirstFrame: () => { ui.status.textContent = `Playing ${clock(start)}\u2013${clock(end)}.`; },
    });
    playing.player.start();
    root.dataset.stream = r.stream_id;
    ui.screen.hidden = ui.controls.hidden = false;
    ui.pause.disabled = ui.stop.disabled = false;
    ui.speed.value = '1';
    poll = setInterval(position, 1000);
  } catch (e) {
    ui.status.textContent = plainWords(e);
  }
  draw();
}

async function steer(body) {
  if (!playing) return;
  try {
    const r = await api(`/api/v1/streams/${playing.stream}/playback`, { method: 'POST', body });
    playing.paused = r.playback && r.playback.paused;
    ui.pause.textContent = playing.paused ? 'Resume' : 'Pause';
    if (body.action === 'seek') { playing.at = playing.start + body.position; draw(); }
  } catch (e) {
    window.gbcToast(plainWords(e), 'error');
  }
}

/** Where the playback is, from the media node's count since the last seek. */
async function position() {
  if (!playing || root.hidden) return;
  try {
    const p = await api(`/api/v1/streams/${playing.stream}/playback`);
    playing.at = playing.start + Math.floor(p.position_ms / 1000);
    ui.position.textContent = `${clock(playing.at)} \u00b7 ${p.scale}\u00d7${p.paused ? ' \u00b7 paused' : ''}`;
    draw();
  } catch (e) {
    if (e.status === 404) { ui.status.textContent = 'The playback ended.'; finish(); }
  }
}

function finish() {
  clearInterval(poll);
  if (playing && playing.player) playing.player.stop();
  playing = null;
  delete root.dataset.stream;
  ui.screen.hidden = ui.controls.hidden = true;
  ui.pause.disabled = ui.stop.disabled = true;
  ui.pause.textContent = 'Pause';
  ui.position.textContent = '';
  draw();
}

async function stopPlayback() {
  if (!playing) return;
  const id = playing.stream;
  finish();
  await api(`/api/v1/streams/${id}`, { method: 'DELETE' }).catch(() => {});
}

// ---- downloads ---------------------------------------------------------------------------

const megabytes = (b) => `${(b / 1048576).toFixed(1)} MB`;

/** Downloads the recording `it` at 4× into an MP4 on a media node. */
async function startDownload(it) {
  try {
    const end = Math.min(it.end_unix, Math.floor(Date.now() / 1000));
    const d = await api(`/api/v1/devices/${chosen.device}/channels/${chosen.channel}/download`, { method: 'POST', body: { start: String(it.start_unix), end: String(end), speed: Number(ui.dlSpeed.value) } });
    track(d);
  } catch (e) {
    window.gbcToast(plainWords(e), 'error');
  }
}

/** The chosen channel's downloads, newest first. */
async function loadDownloads() {
  downloads.clear();
  ui.downloads.replaceChildren();
  try {
    const r = await api('/api/v1/downloads');
    r.items.filter((d) => d.channel_id === chosen.channel).reverse().forEach(track);
  } catch (e) {
    ui.status.textContent = plainWords(e);
  }
}

/** Shows `d` (new or updated) and keeps polling while any download runs. */
function track(d) {
  let entry = downloads.get(d.id);
  if (!entry) {
    const bar = el('progress', { max: 1, value: 0 });
    const label = el('span', { class: 'muted' });
    const actions = el('span', { class: 'dl-actions' });
    const row = el('li', { class: 'dl', 'data-id': d.id },
      el('span', {}, `${clock(Date.parse(d.start) / 1000)}–${clock(Date.parse(d.end) / 1000)} · ${d.speed}×`), bar, label, actions);
    entry = { row, bar, label, actions };
    downloads.set(d.id, entry);
    ui.downloads.prepend(row);
  }
  entry.data = d;
  entry.bar.value = d.progress || 0;
  entry.row.dataset.state = d.state;
  const pct = `${Math.round((d.progress || 0) * 100)}%`;
  const words = { writing: `${pct} · ${megabytes(d.bytes || 0)}`, finishing: 'finishing…', done: `done · ${megabytes(d.bytes || 0)}`,
    failed: `failed: ${d.error || 'the device stopped sending'}`, cancelled: 'cancelled', lost: 'its media node no longer has it' };
  entry.label.textContent = words[d.state] || d.state;
  const remove = (text) => el('button', { type: 'button', class: 'quiet', onclick: () => removeDownload(d.id) }, text);
  entry.actions.replaceChildren(...(d.state === 'done'
    ? [el('a', { href: d.url, download: `${d.id}.mp4`, class: 'button' }, 'Save MP4'), remove('Delete')]
    : DONE.includes(d.state) ? [remove('Remove')] : [remove('Cancel')]));
  if (!DONE.includes(d.state) && !downloadPoll) downloadPoll = setInterval(refreshDownloads, 1000);
}

async function refreshDownloads() {
  const running = [...downloads.values()].filter((e) => !DONE.includes(e.data.state));
  if (!running.length || root.hidden) {
    clearInterval(downloadPoll);
    downloadPoll = null;
    return;
  }
  for (const e of running) {
    try {
      track(await api(`/api/v1/downloads/${e.data.id}`));
    } catch (err) {
      if (err.status === 404) { downloads.delete(e.data.id); e.row.remove(); }
    }
  }
}

/** Cancels a running download, or deletes a finished one's file. */
async function removeDownload(id) {
  try {
    await api(`/api/v1/downloads/${id}`, { method: 'DELETE' });
  } catch (e) {
    if (e.status !== 404) { window.gbcToast(plainWords(e), 'error'); return; }
  }
  const e = downloads.get(id);
  if (e) e.row.remove();
  downloads.delete(id);
}
