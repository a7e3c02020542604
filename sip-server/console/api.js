// The sip-server API as the pages use it. The token rides in the Authorization header only:
// never in a URL (URLs end up in logs and histories). It is kept for the browser tab.

const KEY = 'gbc.token';
let token = sessionStorage.getItem(KEY) || '';
const unauthorized = new Set();

export function setToken(t) {
  token = t;
  if (t) sessionStorage.setItem(KEY, t); else sessionStorage.removeItem(KEY);
}

export function hasToken() { return token !== ''; }

/** Called with the error whenever the API says the token is wrong. */
export function onUnauthorized(f) { unauthorized.add(f); }

export class ApiError extends Error {
  constructor(status, body) {
    super(body.message || `HTTP ${status}`);
    this.status = status;
    this.kind = body.kind || null;
    this.sipStatus = body.sip_status || null;
    this.retryAfter = body.retry_after_secs || null;
  }
}

function headers(extra) {
  const h = { ...extra };
  if (token) h.Authorization = 'Bearer ' + token;
  return h;
}

export async function api(path, { method = 'GET', body, signal, keepalive = false } = {}) {
  let r;
  try {
    r = await fetch(path, {
      method, signal, keepalive,
      headers: headers(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new ApiError(0, { message: 'The server cannot be reached.' });
  }
  if (r.status === 204) return null;
  const data = await r.json().catch(() => ({}));
  if (!r.ok) {
    const err = new ApiError(r.status, data);
    if (r.status === 401) unauthorized.forEach((f) => f(err));
    throw err;
  }
  return data;
}

const SIP_REASONS = { 403: 'Forbidden', 404: 'Not Found', 408: 'no answer', 480: 'Temporarily Unavailable', 486: 'Busy Here', 488: 'Not Acceptable Here', 500: 'Server Error', 503: 'Service Unavailable' };

/** What went wrong, in words an operator understands. */
export function plainWords(err) {
  if (!(err instanceof ApiError)) return String(err && err.message || err);
  const sip = err.sipStatus ? ` (${err.sipStatus} ${SIP_REASONS[err.sipStatus] || ''})`.replace(' )', ')') : '';
  switch (err.kind) {
    case 'device_offline': return 'The device is offline.';
    case 'device_unknown': return 'This device is not registered with the cluster.';
    case 'channel_unknown': return 'This channel is not in the device\u2019s catalog. Re-query the catalog.';
    case 'camera_refused': return `The camera refused to send video${sip}.`;
    case 'camera_timeout': return 'The camera did not answer the request for video.';
    case 'camera_bad_answer': return 'The camera answered with settings the cluster cannot use.';
    case 'no_media_node': return 'No media node is available to receive the video.';
    case 'media_node_failed': return 'The media node did not accept the stream: ' + err.message;
    case 'owner_unreachable': return 'The signalling node that holds this device does not answer.';
    case 'device_refused': return `The device refused the command${sip}.`;
    case 'device_timeout': return 'The device did not answer the command.';
    case 'device_failed': return 'The device could not carry out the command.';
    case 'busy': return 'This stream is being set up right now; try again in a moment.';
    case 'ssrc_exhausted': return 'The cluster has no stream numbers left (too many streams).';
    case 'store_unavailable': return 'The cluster\u2019s shared store (Redis) does not answer.';
    case 'no_session': return 'The stream has ended.';
  }
  if (err.status === 401) return 'The token is wrong.';
  if (err.status === 409 && /offline|not registered/i.test(err.message)) return 'The device is offline.';
  if (err.status === 504) return 'The device did not answer in time.';
  if (err.status === 0) return err.message;
  return err.message;
}

/**
 * The cluster's events (Server-Sent Events read with fetch, so the token stays in a header).
 * Calls `onOpen()` once connected and `on(name, data)` for each event; resolves when the
 * stream ends, rejects on failure.
 */
export async function readEvents(on, signal, onOpen) {
  const r = await fetch('/api/v1/events', { headers: headers({ Accept: 'text/event-stream' }), signal });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => ({})));
  onOpen();
  const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end;
    while ((end = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, end);
      buf = buf.slice(end + 2);
      let name = 'message';
      const data = [];
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) name = line.slice(7);
        else if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (!data.length) continue;
      let parsed;
      try { parsed = JSON.parse(data.join('\n')); } catch { continue; }
      on(name, parsed);
    }
    if (buf.length > 1 << 20) buf = ''; // a frame this long is not ours
  }
}

/** An image (or any file) from the API as an object URL, fetched with the token: `<img src>`
 *  cannot send a header, and the token must not go in the URL. Revoke it when done. */
export async function apiBlobUrl(path, signal) {
  const r = await fetch(path, { headers: headers({}), signal });
  if (!r.ok) throw new ApiError(r.status, await r.json().catch(() => ({})));
  return URL.createObjectURL(await r.blob());
}
