// Pull sources: cameras that are not GB devices (MJPEG over HTTP, RTSP), taken in as streams by
// a media node. The list shows each source's state as its node sees it (what it carries, how
// many pictures or frames, what went wrong); a source is watched here (its MJPEG as an <img>,
// or its H.264 through the same player as the live wall), added and deleted. Passwords go in
// and never come back.

import { api, plainWords } from './api.js';
import { el, ago } from './devices.js';
import { playerFor } from './player.js';

let root = null;
let ui = null;
let timer = null;
let watching = null; // { id, player }

const STATES = { playing: 'on', connecting: '', retrying: 'bad' };

function build(el_) {
  root = el_;
  ui = {
    list: el('div', { id: 'sources-list' }),
    status: el('p', { id: 'sources-status', class: 'muted', role: 'status' }),
    viewer: el('div', { class: 'source-viewer', hidden: true }),
  };
  root.append(el('div', { class: 'scroll' },
    el('h2', {}, 'Pull sources'),
    el('p', { class: 'muted' }, 'Network cameras pulled over MJPEG-over-HTTP or RTSP, served like any stream.'),
    ui.list, ui.viewer, el('h2', {}, 'Add a source'), form(), ui.status));
}

export function show(el_) {
  if (!root) build(el_);
  refresh();
  clearInterval(timer);
  timer = setInterval(() => {
    if (root.hidden) { clearInterval(timer); timer = null; stopWatching(); } else refresh();
  }, 2000);
}

function say(text, error = false) {
  ui.status.textContent = text;
  ui.status.className = error ? 'error' : 'muted';
}

/** The source is watched as its pictures (MJPEG, not encoded to H.264), not in the player. */
export function showsPictures(s) {
  return !s.h264 && (s.kind === 'mjpeg' || Boolean(s.status && s.status.video === 'jpeg'));
}

/** What a source has carried, in a few words. */
function carried(s) {
  const st = s.status;
  if (!st) return s.mode === 'on_demand' ? 'idle until watched' : '';
  if (!st.video) return '';
  const what = st.video.toUpperCase();
  const n = st.video === 'jpeg' ? `${st.pictures} pictures` : `${st.frames} frames`;
  return [what, n].filter(Boolean).join(', ');
}

/** What an operator can do about a connection's error. */
const HINTS = [
  [/unreachable|no answer/i, 'Check the camera\'s address and port, and that it is on.'],
  [/login|credentials|refused user|401|403/i, 'Check the user and password.'],
  [/not MJPEG|404|no .*video|refused the stream/i, 'Check the URL: it must be the camera\'s MJPEG or RTSP stream.'],
  [/no media node/i, 'Start a media node (stream-server).'],
];

/** What went wrong, if anything, and what to do: the connection's error, else a problem in a
 *  stream that goes on. */
function trouble(s) {
  const st = s.status;
  const advised = (e) => { const h = HINTS.find(([re]) => re.test(e)); return h ? `${e}. ${h[1]}` : e; };
  if (s.last_error && !st) return advised(s.last_error);
  if (!st) return '';
  if (st.state !== 'playing' && st.last_error) return advised(st.last_error) + (st.retry_in_ms ? ` (trying again in ${Math.round(st.retry_in_ms / 1000)} s)` : '');
  return st.last_problem || '';
}

async function refresh() {
  let items;
  try {
    items = (await api('/api/v1/sources')).items;
  } catch (e) { say(plainWords(e), true); return; }
  if (!items.length) { ui.list.replaceChildren(el('p', { class: 'muted' }, 'No source yet.')); return; }
  const rows = items.map((s) => {
    const state = s.status ? s.status.state : (s.mode === 'on_demand' ? 'idle' : 'placing');
    const watch = el('button', { class: 'quiet', onclick: () => startWatching(s.stream_id) }, 'Watch');
    const del = el('button', { class: 'quiet', onclick: () => remove(s) }, 'Delete');
    return el('tr', { 'data-source': s.stream_id },
      el('td', {}, el('strong', {}, s.name || s.stream_id), el('div', { class: 'muted' }, s.stream_id)),
      el('td', {}, s.kind.toUpperCase() + (s.h264 ? ' \u2192 H.264' : '')),
      el('td', { class: 'url' }, s.url),
      el('td', {}, s.mode === 'on_demand' ? 'on demand' : 'always'),
      el('td', {}, el('span', { class: 'badge ' + (STATES[state] || ''), 'data-state': state }, state)),
      el('td', {}, carried(s)),
      el('td', {}, s.node || ''),
      el('td', { class: 'trouble' }, trouble(s)),
      el('td', {}, s.status && s.status.playing_since_ms ? ago(s.status.playing_since_ms) : ''),
      el('td', {}, watch, ' ', del));
  });
  ui.list.replaceChildren(el('table', {},
    el('thead', {}, el('tr', {}, ...['Source', 'Kind', 'URL', 'Runs', 'State', 'Carried', 'Node', 'Trouble', 'Playing since', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows)));
}

async function remove(s) {
  if (!confirm(`Delete source ${s.name || s.stream_id}?`)) return;
  try {
    await api('/api/v1/sources/' + encodeURIComponent(s.stream_id), { method: 'DELETE' });
    if (watching && watching.id === s.stream_id) stopWatching();
    say(`Source ${s.stream_id} deleted.`);
    refresh();
  } catch (e) { say(plainWords(e), true); }
}

function stopWatching() {
  if (watching && watching.player) watching.player.stop();
  watching = null;
  if (ui) { ui.viewer.replaceChildren(); ui.viewer.hidden = true; }
}

/** Shows a source: pictures as they come (MJPEG), or its H.264 in the player. */
async function startWatching(id) {
  stopWatching();
  let s;
  try {
    s = await api('/api/v1/sources/' + encodeURIComponent(id) + '/play', { method: 'POST' });
  } catch (e) { say(plainWords(e), true); return; }
  if (!s.urls) { say('The source is not placed on a media node yet; try again in a moment.', true); return; }
  watching = { id, player: null };
  const close = el('button', { class: 'quiet', onclick: () => stopWatching() }, 'Close');
  const title = el('h3', {}, s.name || s.stream_id, ' ', close);
  if (showsPictures(s)) {
    const img = el('img', { class: 'source-picture', alt: `Pictures of ${s.name || s.stream_id}`, src: s.urls.mjpeg });
    img.addEventListener('error', () => say(`${s.stream_id}: no picture (the source is not sending).`, true));
    ui.viewer.replaceChildren(title, img, el('p', { class: 'muted' }, el('a', { href: s.urls.snapshot, target: '_blank', rel: 'noopener' }, 'Snapshot'), ' \u00b7 MJPEG: ', s.urls.mjpeg));
  } else {
    const video = el('video', { class: 'source-video', muted: true, autoplay: true, playsinline: true });
    video.muted = true;
    ui.viewer.replaceChildren(title, video, el('p', { class: 'muted' }, 'HTTP-FLV: ', s.urls.http_flv, s.urls.rtmp ? ' \u00b7 RTMP: ' + s.urls.rtmp : ''));
    const mine = watching;
    let retries = 0;
    // A source placed a moment ago may have no key frame yet: try again a few times.
    const attach = () => {
      mine.player = playerFor(localStorage.getItem('gbc.form') || 'auto', video, s.urls, {
        onError: (m, retryable) => {
          if (watching !== mine) return;
          if (retries < 3) { retries += 1; setTimeout(() => { if (watching === mine) attach(); }, 1000); return; }
          say(`${s.stream_id}: ${m}`, true);
        },
      });
      mine.player.start();
    };
    attach();
  }
  ui.viewer.hidden = false;
  say(`Watching ${s.stream_id} from ${s.node}.`);
}

function form() {
  const f = (name, attrs = {}) => el('input', { name, 'aria-label': attrs.placeholder || name, title: attrs.placeholder || name, ...attrs });
  const inputs = {
    url: f('url', { placeholder: 'http://camera/video.mjpg or rtsp://camera/stream', required: true, size: '40' }),
    name: f('name', { placeholder: 'name' }),
    stream_id: f('stream_id', { placeholder: 'stream id (optional)', pattern: '[A-Za-z0-9_.\\-]{1,128}' }),
    username: f('username', { placeholder: 'user', autocomplete: 'off' }),
    password: f('password', { type: 'password', placeholder: 'password', autocomplete: 'new-password' }),
  };
  const mode = el('select', { name: 'mode', 'aria-label': 'Runs' }, el('option', { value: 'always_on' }, 'Always on'), el('option', { value: 'on_demand' }, 'On demand'));
  const transport = el('select', { name: 'rtsp_transport', 'aria-label': 'RTSP transport' }, el('option', { value: 'tcp' }, 'RTSP over TCP'), el('option', { value: 'udp' }, 'RTSP over UDP'));
  const h264 = el('input', { type: 'checkbox', name: 'h264' });
  const submit = el('button', { type: 'submit' }, 'Add');
  return el('form', { class: 'inline', id: 'source-form', onsubmit: async (e) => {
    e.preventDefault();
    const url = inputs.url.value.trim();
    const body = { url, name: inputs.name.value.trim(), username: inputs.username.value, password: inputs.password.value, mode: mode.value, h264: h264.checked };
    if (inputs.stream_id.value.trim()) body.stream_id = inputs.stream_id.value.trim();
    if (url.toLowerCase().startsWith('rtsp://')) body.rtsp_transport = transport.value;
    submit.disabled = true;
    try {
      const s = await api('/api/v1/sources', { method: 'POST', body });
      say(`Source ${s.stream_id} added${s.node ? ` on ${s.node}` : ''}.`);
      for (const k of ['url', 'name', 'stream_id', 'password']) inputs[k].value = '';
      refresh();
    } catch (err) { say(plainWords(err), true); }
    submit.disabled = false;
  } }, inputs.url, inputs.name, inputs.stream_id, inputs.username, inputs.password, mode, transport,
  el('label', { class: 'muted' }, h264, ' also as H.264'), submit);
}
