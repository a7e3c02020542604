// Live view: a grid of 1, 4, 9 or 16 tiles, each its own player. A tile holds its play session
// while it shows it: closing the tile stops the player and releases the hold. Pull sources (the
// Sources page's cameras) play in tiles too: H.264/H.265 in the player, MJPEG as pictures in an
// <img>; an on-demand source closes by itself once no tile shows it.

import { api, plainWords } from './api.js';
import { Tree, el } from './devices.js';
import { playerFor } from './player.js';
import { showsPictures } from './sources.js';

const LAYOUTS = [1, 4, 9, 16];
let root = null;
let grid = null;
let tiles = [];
let selected = 0;

const CODEC_NAMES = { avc1: 'H.264', hvc1: 'H.265', mp4a: 'AAC' };

class Tile {
  constructor(index) {
    this.index = index;
    this.title = el('span', { class: 'title' }, '');
    this.close = el('button', { class: 'close', 'aria-label': 'Close tile ' + (index + 1), hidden: true, onclick: (e) => { e.stopPropagation(); this.stop(); } }, '\u00d7');
    this.pad = ptzPad(() => this.play);
    this.ptz = el('button', { class: 'close ptz-toggle', 'aria-label': 'PTZ controls of tile ' + (index + 1), 'aria-expanded': 'false', hidden: true, title: 'PTZ', onclick: (e) => {
      e.stopPropagation();
      this.pad.hidden = !this.pad.hidden;
      this.ptz.setAttribute('aria-expanded', String(!this.pad.hidden));
    } }, '\u2725');
    // A picture of what the tile shows, saved to the gallery.
    this.snap = el('button', { class: 'tile-btn snap', 'aria-label': 'Save a picture of tile ' + (index + 1), hidden: true, title: 'Save a picture', onclick: (e) => {
      e.stopPropagation();
      this.snapshot();
    } }, '\u25c9');
    this.video = el('video', { muted: true, playsinline: true, autoplay: true });
    this.video.muted = true;
    // A source that sends pictures (MJPEG) shows them here instead of in the video.
    this.picture = el('img', { class: 'tile-picture', alt: '', hidden: true });
    this.message = el('p', { class: 'message' }, 'Choose a channel');
    this.overlay = el('div', { class: 'overlay', hidden: true });
    this.node = el('div', { class: 'tile', tabindex: '0', 'data-tile': index, 'aria-label': 'Tile ' + (index + 1), onclick: () => select(this.index), onkeydown: (e) => { if (e.key === 'Delete') this.stop(); } },
      el('div', { class: 'tile-head' }, this.title, el('span', {}, this.snap, this.ptz, this.close)), this.video, this.picture, this.message, this.overlay, this.pad);
    this.play = null;
  }

  busy() { return this.play !== null; }

  /** Saves a picture of the tile's channel (its latest key frame) to the gallery. */
  async snapshot() {
    const p = this.play;
    if (!p) return;
    try {
      const s = await api(`/api/v1/devices/${p.device}/channels/${p.channel}/snapshots`, { method: 'POST' });
      window.gbcToast(`Picture of ${p.name} saved to the gallery.`);
      this.node.dataset.snapshot = s.id;
    } catch (e) {
      window.gbcToast(plainWords(e), 'error');
    }
  }

  /** Shows a pull source: its stream in the player, or its pictures as they come. */
  async startSource({ source, name }) {
    this.stop();
    const play = { source, name, streamId: null, player: null, stats: null, ctl: new AbortController() };
    this.play = play;
    this.title.textContent = name;
    this.close.hidden = false;
    this.say('Starting\u2026');
    let s;
    try {
      s = await api(`/api/v1/sources/${encodeURIComponent(source)}/play`, { method: 'POST', signal: play.ctl.signal });
    } catch (e) {
      if (this.play === play) this.say(plainWords(e), true);
      return;
    }
    if (this.play !== play) return;
    if (!s.urls) { this.say('The source is not on a media node yet.', true); return; }
    this.node.dataset.source = source;
    this.node.dataset.stream = source;
    play.urls = s.urls;
    if (showsPictures(s)) {
      this.picture.alt = `Pictures of ${name}`;
      this.picture.onload = () => { if (this.play === play) this.say(''); };
      this.picture.onerror = () => { if (this.play === play) this.say('No picture: the source is not sending.', true); };
      this.picture.src = s.urls.mjpeg;
      this.picture.hidden = false;
      this.video.hidden = true;
      return;
    }
    play.retries = 0;
    this.attach(play);
  }

  async start({ device, channel, name }) {
    this.stop();
    const play = { device, channel, name, streamId: null, player: null, stats: null, ctl: new AbortController() };
    this.play = play;
    this.title.textContent = name;
    this.close.hidden = false;
    this.ptz.hidden = false;
    this.snap.hidden = false;
    this.say('Starting\u2026');
    let answer;
    try {
      answer = await api(`/api/v1/devices/${device}/channels/${channel}/play`, { method: 'POST', body: {}, signal: play.ctl.signal });
    } catch (e) {
      if (this.play === play) this.say(plainWords(e), true);
      return;
    }
    if (this.play !== play) {
      // Closed while the camera was being asked: give the hold back at once.
      release(answer.stream_id);
      return;
    }
    play.streamId = answer.stream_id;
    this.node.dataset.stream = answer.stream_id;
    play.urls = answer.urls;
    play.retries = 0;
    this.attach(play);
    play.last = { t: performance.now(), bytes: 0, frames: 0 };
    play.timer = setInterval(() => this.measure(play), 1000);
  }

  /** A player for the play's stream. A stream that breaks off or a decoder that gives up is
   *  tried again twice (the media node starts a new player at a key frame) before the tile
   *  says so; what cannot work (an unsupported codec) is said at once. */
  attach(play) {
    play.player = playerFor(localStorage.getItem('gbc.form') || 'auto', this.video, play.urls, {
      onError: (m, retryable) => {
        if (this.play !== play) return;
        // A source placed a moment ago may not have its first key frame yet.
        if ((retryable || play.source) && play.retries < 2) {
          play.retries += 1;
          this.say('Reconnecting\u2026');
          setTimeout(() => { if (this.play === play) this.attach(play); }, 500);
          return;
        }
        this.say(m, true);
        this.release(play);
      },
      onFirstFrame: () => { if (this.play === play) { this.say(''); this.overlay.hidden = !!play.source; } },
    });
    play.player.start();
  }

  /** Gives the session back while the tile still shows why it stopped. */
  release(play) {
    clearInterval(play.timer);
    this.overlay.hidden = true;
    if (play.streamId) release(play.streamId);
    play.streamId = null;
  }

  say(text, error = false) {
    this.message.textContent = text;
    this.message.hidden = !text;
    this.message.classList.toggle('error', error);
  }

  async measure(play) {
    if (play.source) return;
    const v = this.video;
    const now = performance.now();
    const frames = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality().totalVideoFrames : 0;
    const secs = (now - play.last.t) / 1000;
    const fps = (frames - play.last.frames) / secs;
    const s = play.stats;
    // HLS: the browser fetches by itself; the media node's ingest rate stands in.
    const kbps = play.player.bytes === null ? (s ? s.bitrate_kbps : 0) : Math.max(0, ((play.player.bytes - play.last.bytes) * 8) / 1000 / secs);
    play.last = { t: now, bytes: play.player.bytes, frames };
    if (!play.statsAt || now - play.statsAt > 3000) {
      play.statsAt = now;
      api(`/api/v1/streams/${play.streamId}/stats`).then((s) => { play.stats = s; }, () => {});
    }
    const loss = s && s.packets + s.lost > 0 ? ((100 * s.lost) / (s.packets + s.lost)).toFixed(2) + '% loss' : '';
    const codecs = play.player.codecs.length
      ? play.player.codecs.map((c) => CODEC_NAMES[c.slice(0, 4)] || c).join(' + ')
      : s ? [s.video_codec, s.audio_codec].filter(Boolean).map((c) => c.toUpperCase().replace('H264', 'H.264').replace('H265', 'H.265')).join(' + ') : '';
    this.overlay.textContent = [codecs, v.videoWidth ? `${v.videoWidth}\u00d7${v.videoHeight}` : '', fps > 0 ? fps.toFixed(0) + ' fps' : '', kbps.toFixed(0) + ' kbit/s', loss]
      .filter(Boolean).join(' \u00b7 ');
  }

  stop() {
    const play = this.play;
    if (!play) return;
    this.play = null;
    play.ctl.abort();
    clearInterval(play.timer);
    if (play.player) play.player.stop();
    if (play.streamId) release(play.streamId);
    // Dropping the <img>'s source ends its MJPEG response (the source counts one viewer less).
    this.picture.removeAttribute('src');
    this.picture.hidden = true;
    this.video.hidden = false;
    delete this.node.dataset.stream;
    delete this.node.dataset.source;
    this.title.textContent = '';
    this.close.hidden = true;
    this.ptz.hidden = true;
    this.snap.hidden = true;
    this.pad.hidden = true;
    this.ptz.setAttribute('aria-expanded', 'false');
    this.overlay.hidden = true;
    this.say('Choose a channel');
  }
}

/** A PTZ pad over a tile: hold an arrow or a zoom button to move (released: stop), and call
 *  or set a preset. `current()` is the tile's play (device and channel). */
function ptzPad(current) {
  const speed = el('input', { type: 'range', min: '1', max: '255', value: '128', 'aria-label': 'PTZ speed' });
  const send = (body) => {
    const p = current();
    if (!p) return Promise.resolve();
    return api(`/api/v1/devices/${p.device}/channels/${p.channel}/ptz`, { method: 'POST', body }).catch((e) => window.gbcToast(plainWords(e), 'error'));
  };
  const hold = (label, glyph, move, stop) => {
    const b = el('button', { class: 'ptz-btn', 'aria-label': label, title: label, type: 'button' }, glyph);
    const start = (e) => {
      e.preventDefault();
      e.stopPropagation();
      if (b.classList.contains('held')) return;
      b.classList.add('held');
      send(move());
    };
    const end = () => {
      if (!b.classList.contains('held')) return;
      b.classList.remove('held');
      send({ command: stop });
    };
    b.addEventListener('pointerdown', start);
    for (const ev of ['pointerup', 'pointerleave', 'pointercancel', 'blur']) b.addEventListener(ev, end);
    b.addEventListener('keydown', (e) => { if ((e.key === 'Enter' || e.key === ' ') && !e.repeat) start(e); });
    b.addEventListener('keyup', (e) => { if (e.key === 'Enter' || e.key === ' ') end(); });
    b.addEventListener('click', (e) => e.stopPropagation());
    return b;
  };
  const dir = (label, glyph, command) => hold(label, glyph, () => ({ command, speed: Number(speed.value) }), 'stop');
  const zoom = (label, glyph, command) => hold(label, glyph, () => ({ command, zoom_speed: Math.max(1, Math.round(Number(speed.value) / 17)) }), 'stop');
  const preset = el('input', { type: 'number', min: '1', max: '255', value: '1', 'aria-label': 'Preset number' });
  const presetAction = (label, command) => el('button', { type: 'button', class: 'quiet', onclick: (e) => { e.stopPropagation(); send({ command, preset: Number(preset.value) }); } }, label);
  const pad = el('div', { class: 'ptz', hidden: true, onclick: (e) => e.stopPropagation() },
    el('div', { class: 'ptz-grid' },
      dir('Up left', '\u2196', 'up_left'), dir('Up', '\u2191', 'up'), dir('Up right', '\u2197', 'up_right'),
      dir('Left', '\u2190', 'left'), zoom('Zoom in', '+', 'zoom_in'), dir('Right', '\u2192', 'right'),
      dir('Down left', '\u2199', 'down_left'), dir('Down', '\u2193', 'down'), dir('Down right', '\u2198', 'down_right')),
    el('div', { class: 'ptz-row' }, zoom('Zoom out', '\u2212', 'zoom_out'), speed),
    el('div', { class: 'ptz-row' }, el('label', {}, 'Preset ', preset), presetAction('Call', 'preset_call'), presetAction('Set', 'preset_set')));
  return pad;
}

/** Gives one hold on a session back (the session ends when nobody holds or watches it). */
function release(streamId) {
  api(`/api/v1/streams/${streamId}`, { method: 'DELETE', keepalive: true }).catch(() => {});
}

function select(i) {
  selected = i;
  tiles.forEach((t) => t.node.classList.toggle('selected', t.index === i));
}

function layout(n) {
  n = LAYOUTS.includes(n) ? n : 4;
  localStorage.setItem('gbc.layout', n);
  while (tiles.length < n) tiles.push(new Tile(tiles.length));
  for (const t of tiles.splice(n)) t.stop();
  grid.style.setProperty('--cols', Math.sqrt(n));
  grid.replaceChildren(...tiles.map((t) => t.node));
  for (const b of root.querySelectorAll('.layouts button')) b.setAttribute('aria-pressed', String(Number(b.dataset.n) === n));
  select(Math.min(selected, n - 1));
}

/** How tiles get their video: fMP4 through MSE, or HLS (what Safari and iOS play). */
function formPicker() {
  const pick = el('select', { 'aria-label': 'Browser stream', class: 'form', onchange: () => localStorage.setItem('gbc.form', pick.value) },
    el('option', { value: 'auto' }, 'Auto'), el('option', { value: 'fmp4' }, 'fMP4 (MSE)'), el('option', { value: 'hls' }, 'HLS'));
  pick.value = localStorage.getItem('gbc.form') || 'auto';
  return el('label', { class: 'muted' }, 'Stream ', pick);
}

function build(el_) {
  root = el_;
  grid = el('div', { class: 'grid' });
  const left = el('div', { class: 'side' });
  const tools = el('div', { class: 'layouts', role: 'group', 'aria-label': 'Layout' },
    ...LAYOUTS.map((n) => el('button', { 'data-n': n, onclick: () => layout(n), title: n + ' tiles' }, String(n))),
    el('button', { class: 'quiet', onclick: () => closeAll(), title: 'Close every tile' }, 'Close all'),
    formPicker());
  root.append(el('div', { class: 'split live' }, left, el('div', { class: 'wall' }, tools, grid)));
  new Tree(left, { onChannel: (dev, ch) => play({ device: dev.id, channel: ch.id, name: ch.name || ch.id }) }).load();
  sourceList = el('ul', { class: 'source-list', 'aria-label': 'Pull sources' });
  left.append(el('h3', { class: 'side-head' }, 'Pull sources'), sourceList);
  loadSources();
  layout(Number(localStorage.getItem('gbc.layout')) || 4);
  window.addEventListener('pagehide', () => closeAll());
}

let sourceList = null;

/** The pull sources, under the device tree: a click shows one in a tile. */
async function loadSources() {
  let items;
  try {
    items = (await api('/api/v1/sources')).items;
  } catch (e) { return; }
  sourceList.replaceChildren(...(items.length ? items.map((s) => el('li', {},
    el('button', { class: 'ch', 'data-source': s.stream_id, title: s.url, onclick: () => play({ source: s.stream_id, name: s.name || s.stream_id }) },
      s.name || s.stream_id, ' ', el('small', { class: 'muted' }, s.kind.toUpperCase()))))
    : [el('li', { class: 'muted' }, 'None: add them on the Sources page.')]));
}

export function show(el_) {
  if (!root) build(el_);
  else loadSources();
}

/** Plays a channel: in the chosen tile if it is free, else the first free one, else the chosen. */
export function play(what) {
  if (location.hash !== '#/live') location.hash = '#/live';
  if (!root) build(document.getElementById('page-live'));
  const same = (p) => (what.source ? p.source === what.source : p.channel === what.channel && p.device === what.device);
  const already = tiles.find((t) => t.play && same(t.play));
  if (already) return select(already.index);
  const free = tiles[selected].busy() ? tiles.find((t) => !t.busy()) : tiles[selected];
  const tile = free || tiles[selected];
  select(tile.index);
  if (what.source) tile.startSource(what);
  else tile.start(what);
  if (free) select(tiles.find((t) => !t.busy()) ? tiles.find((t) => !t.busy()).index : tile.index);
}

export function closeAll() {
  for (const t of tiles) t.stop();
}
