// NVR pusher: every node's sessions with their beats and status, and a form to push a
// channel's live (REAL_STREAM) or recorded (BACK_STREAM) video as RTMP, or stop one.

import { api, plainWords } from './api.js';
import { el, ago } from './devices.js';

let root = null;
let timer = null;

const STATUS = { 600: 'bad parameter', 601: 'no usable video came (no H.264/H.265 or no key frame)', 602: 'cannot connect to the RTMP server', 603: 'live play failed (NVR unreachable or the stream refused)', 604: 'playback failed', 605: 'no such session (it ended)', 606: 'the NVR refused the login', 607: 'nothing is recorded in that range', 608: 'playback control failed', 609: 'PTZ failed' };

export function show(el_) {
  if (!root) {
    root = el_;
    root.append(el('div', { class: 'scroll' }, el('h2', {}, 'Sessions'), el('div', { id: 'nvr-sessions' }), el('h2', {}, 'Push a channel'), form(), el('p', { id: 'nvr-status', role: 'status' })));
  }
  refresh();
  clearInterval(timer);
  timer = setInterval(() => { if (root.hidden) { clearInterval(timer); timer = null; } else refresh(); }, 2000);
}

function say(text, error = false) {
  const s = document.getElementById('nvr-status');
  s.textContent = text;
  s.className = error ? 'error' : 'muted';
}

function outcome(r) {
  return r.status_code === 200 ? null : `${r.status_code}: ${STATUS[r.status_code] || ''}${r.status_message ? ' \u2014 ' + r.status_message : ''}`;
}

async function call(path, method = 'GET', body) {
  const r = await api('/api/v1/nvr-calls/' + path, { method, body });
  const bad = outcome(r);
  if (bad) throw new Error(bad);
  return r;
}

async function refresh() {
  let nodes;
  try {
    nodes = (await api('/api/v1/cluster')).nvr;
  } catch (e) { say(plainWords(e), true); return; }
  const out = document.getElementById('nvr-sessions');
  if (!nodes.length) { out.replaceChildren(el('p', { class: 'muted' }, 'No NVR pusher is running.')); return; }
  const pages = await Promise.all(nodes.map((n) => api('/api/v1/nvr/sessions?node=' + encodeURIComponent(n.id)).catch(() => ({ node: n.id, items: [], failed: true }))));
  const rows = pages.flatMap((p) => p.items.map((s) => {
    const stop = el('button', { class: 'quiet', onclick: async () => {
      try { await call(`STREAM/${s.play_handle}/STOP`); say(`Session ${s.play_handle} stopped.`); refresh(); } catch (e) { say(plainWords(e), true); }
    } }, 'Stop');
    const beat = el('button', { class: 'quiet', onclick: async () => {
      try { await call(`STREAM/${s.play_handle}/BEATS`); say(`Session ${s.play_handle} kept alive.`); refresh(); } catch (e) { say(plainWords(e), true); }
    } }, 'Beat');
    return el('tr', { 'data-handle': s.play_handle },
      el('td', {}, String(s.play_handle)), el('td', {}, p.node), el('td', {}, s.kind), el('td', {}, s.state),
      el('td', {}, `${s.nvr_addr} ch ${s.nvr_channel}`), el('td', {}, s.rtmp_url),
      el('td', {}, s.since_beat_ms != null ? `${Math.round(s.since_beat_ms / 1000)} s ago` : ''), el('td', {}, String(s.reconnects || 0)),
      el('td', {}, `${s.video_frames || 0} frames`), el('td', {}, s.started_ms ? ago(s.started_ms) : ''), el('td', {}, beat, ' ', stop));
  }));
  const failed = pages.filter((p) => p.failed).map((p) => p.node);
  out.replaceChildren(rows.length ? el('table', {},
    el('thead', {}, el('tr', {}, ...['Handle', 'Node', 'Kind', 'State', 'NVR', 'RTMP', 'Last beat', 'Reconnects', 'Pushed', 'Started', ''].map((h) => el('th', {}, h)))),
    el('tbody', {}, ...rows)) : el('p', { class: 'muted' }, 'No session.'), ...(failed.length ? [el('p', { class: 'error' }, 'Not answering: ' + failed.join(', '))] : []));
}

function form() {
  const f = (name, attrs = {}) => el('input', { name, 'aria-label': attrs.placeholder || name, title: attrs.placeholder || name, ...attrs });
  const kind = el('select', { name: 'kind', 'aria-label': 'Kind' }, el('option', { value: 'REAL_STREAM' }, 'Live (REAL_STREAM)'), el('option', { value: 'BACK_STREAM' }, 'Recorded (BACK_STREAM)'));
  const category = el('select', { name: 'nvr_category', 'aria-label': 'Brand' },
    el('option', { value: '0' }, 'Hikvision'), el('option', { value: '1' }, 'Dahua'), el('option', { value: '2' }, 'Any, by RTSP URL'), el('option', { value: '3' }, 'ONVIF'));
  const inputs = {
    nvr_addr: f('nvr_addr', { placeholder: 'NVR address', required: true }),
    nvr_port: f('nvr_port', { type: 'number', value: '8000', placeholder: 'SDK port' }),
    nvr_user: f('nvr_user', { placeholder: 'user', autocomplete: 'off' }),
    nvr_pwd: f('nvr_pwd', { type: 'password', placeholder: 'password', autocomplete: 'new-password' }),
    nvr_channel: f('nvr_channel', { type: 'number', min: '1', max: '512', value: '1', placeholder: 'channel' }),
    rtsp_url: f('rtsp_url', { placeholder: 'rtsp://… (any brand)' }),
    startTime: f('startTime', { type: 'datetime-local', step: '1' }),
    endTime: f('endTime', { type: 'datetime-local', step: '1' }),
  };
  const back = el('span', { class: 'inline', hidden: true }, el('label', {}, 'From ', inputs.startTime), el('label', {}, 'To ', inputs.endTime));
  const byUrl = el('span', { hidden: true }, inputs.rtsp_url);
  const sync = () => { back.hidden = kind.value !== 'BACK_STREAM'; byUrl.hidden = category.value !== '2'; };
  kind.addEventListener('change', sync);
  category.addEventListener('change', sync);
  const submit = el('button', { type: 'submit' }, 'Start');
  return el('form', { class: 'inline', onsubmit: async (e) => {
    e.preventDefault();
    const body = { nvr_category: Number(category.value), nvr_addr: inputs.nvr_addr.value.trim(), nvr_port: Number(inputs.nvr_port.value || 0), nvr_user: inputs.nvr_user.value, nvr_pwd: inputs.nvr_pwd.value, nvr_channel: Number(inputs.nvr_channel.value || 1) };
    if (category.value === '2') body.rtsp_url = inputs.rtsp_url.value.trim();
    if (kind.value === 'BACK_STREAM') {
      const t = (v) => v.replace('T', ' ') + (v.length === 16 ? ':00' : '');
      body.startTime = t(inputs.startTime.value);
      body.endTime = t(inputs.endTime.value);
    }
    submit.disabled = true;
    say('Starting\u2026');
    try {
      const r = await call(kind.value, 'POST', body);
      say(`Pushing to ${r.rtmp_url} (session ${r.play_handle}).`);
      inputs.nvr_pwd.value = '';
      refresh();
    } catch (err) { say(plainWords(err), true); }
    submit.disabled = false;
  } }, kind, category, inputs.nvr_addr, inputs.nvr_port, inputs.nvr_user, inputs.nvr_pwd, inputs.nvr_channel, byUrl, back, submit);
}
