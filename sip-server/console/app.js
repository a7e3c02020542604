// The console's shell: sign-in, the page router (#/devices, #/live, #/recordings, #/gallery, #/alarms,
// #/map, #/sources, #/cluster, #/lpr, #/nvr),
// the cluster's event stream (re-dispatched on `window` as `gbc:presence`, `gbc:play`,
// `gbc:stream`, `gbc:lpr`, `gbc:alarm`, `gbc:position`, `gbc:resync`; actions of the pages use other names), and messages.

import { api, setToken, hasToken, onUnauthorized, plainWords, readEvents } from './api.js';
import * as devices from './devices.js';
import * as live from './live.js';
import * as recordings from './recordings.js';
import * as alarms from './alarms.js';
import * as gallery from './gallery.js';
import * as map from './map.js';
import * as cluster from './cluster.js';
import * as lpr from './lpr.js';
import * as nvr from './nvr.js';
import * as sources from './sources.js';

const $ = (id) => document.getElementById(id);
const pages = { devices, live, recordings, gallery, alarms, map, sources, cluster, lpr, nvr };
let started = false;
let events = null;

/** A short message in the corner; errors stay until dismissed or replaced. */
export function toast(text, kind = 'info') {
  const el = document.createElement('div');
  el.className = 'toast ' + kind;
  el.textContent = text;
  el.tabIndex = 0;
  el.addEventListener('click', () => el.remove());
  $('toasts').append(el);
  while ($('toasts').children.length > 4) $('toasts').firstChild.remove();
  setTimeout(() => el.remove(), kind === 'error' ? 10000 : 4000);
}
window.gbcToast = toast;

function showSignIn(message) {
  stop();
  $('sign-in').hidden = false;
  $('sign-in-error').textContent = message || '';
  $('token').value = '';
  $('token').focus();
}

function stop() {
  started = false;
  if (events) events.abort();
  events = null;
  $('nav').hidden = true;
  $('sign-out').hidden = true;
  $('link-state').hidden = true;
  for (const p of document.querySelectorAll('.page')) p.hidden = true;
  live.closeAll();
}

function start() {
  $('sign-in').hidden = true;
  $('nav').hidden = false;
  $('sign-out').hidden = !hasToken();
  started = true;
  streamEvents();
  route();
}

function route() {
  if (!started) return;
  const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || 'devices';
  const page = pages[name] ? name : 'devices';
  for (const [n, mod] of Object.entries(pages)) {
    const el = $('page-' + n);
    if (n === page) { el.hidden = false; mod.show(el); } else { el.hidden = true; }
  }
  for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === page);
}

/** Keeps the event stream open; after a gap the pages reload what they show. */
async function streamEvents() {
  let delay = 500;
  let connectedBefore = false;
  while (started) {
    const ctl = new AbortController();
    events = ctl;
    try {
      await readEvents((name, data) => window.dispatchEvent(new CustomEvent('gbc:' + name, { detail: data })), ctl.signal, () => {
        linkState(true);
        delay = 500;
        if (connectedBefore) window.dispatchEvent(new CustomEvent('gbc:resync'));
        connectedBefore = true;
      });
    } catch (e) {
      if (ctl.signal.aborted || e.status === 401) return;
    }
    if (!started || ctl.signal.aborted) return;
    linkState(false);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 8000);
  }
}

function linkState(ok) {
  $('link-state').hidden = ok;
  $('link-state').textContent = ok ? '' : 'Live updates interrupted; reconnecting\u2026';
}

async function boot() {
  onUnauthorized(() => { if (started || !$('sign-in').hidden) { setToken(''); showSignIn('The token is wrong or has changed. Sign in again.'); } });
  $('sign-in').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    setToken($('token').value.trim());
    try {
      await api('/api/v1/session');
      start();
    } catch (e) {
      setToken('');
      showSignIn(e.status === 401 ? 'The token is wrong.' : plainWords(e));
    }
  });
  $('sign-out').addEventListener('click', () => { setToken(''); showSignIn(); });
  window.addEventListener('hashchange', route);
  window.addEventListener('gbc:open-channel', (e) => live.play(e.detail));
  let needs;
  try {
    needs = (await api('/api/v1/auth')).token_required;
  } catch (e) {
    document.body.classList.add('unreachable');
    $('main').textContent = plainWords(e);
    return;
  }
  if (!needs) return start();
  if (!hasToken()) return showSignIn();
  try {
    await api('/api/v1/session');
    start();
  } catch (e) {
    setToken('');
    showSignIn(e.status === 401 ? 'The token is wrong or has changed. Sign in again.' : plainWords(e));
  }
}

boot();
