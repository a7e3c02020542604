// Plays a media node's live fragmented MP4 in a <video> through Media Source Extensions. The
// init segment names the codecs; the player asks the browser before appending, so a stream it
// cannot decode (H.265 on most desktop browsers) is said in words, not shown as a black tile.

/** Top-level boxes of `buf` from `at`: [{type, start, size}] as far as they are complete. */
function boxes(buf, at = 0) {
  const out = [];
  while (at + 8 <= buf.length) {
    const size = ((buf[at] << 24) >>> 0) + (buf[at + 1] << 16) + (buf[at + 2] << 8) + buf[at + 3];
    const type = String.fromCharCode(buf[at + 4], buf[at + 5], buf[at + 6], buf[at + 7]);
    if (size < 8 || at + size > buf.length) break;
    out.push({ type, start: at, size });
    at += size;
  }
  return out;
}

function find(buf, fourcc, from, to) {
  const c = [...fourcc].map((ch) => ch.charCodeAt(0));
  for (let i = from; i + 4 <= to; i++) if (buf[i] === c[0] && buf[i + 1] === c[1] && buf[i + 2] === c[2] && buf[i + 3] === c[3]) return i;
  return -1;
}

const hex = (b) => b.toString(16).padStart(2, '0');

/** The RFC 6381 codec strings of an init segment's moov (avcC / hvcC / mp4a). */
export function codecsOf(buf, moov) {
  const end = moov.start + moov.size;
  const out = [];
  let at = find(buf, 'avcC', moov.start, end);
  if (at >= 0) {
    out.push('avc1.' + hex(buf[at + 5]) + hex(buf[at + 6]) + hex(buf[at + 7]));
  } else if ((at = find(buf, 'hvcC', moov.start, end)) >= 0) {
    const c = at + 4; // the record, after the fourcc
    const spaceTierProfile = buf[c + 1];
    const space = ['', 'A', 'B', 'C'][spaceTierProfile >> 6];
    const tier = spaceTierProfile & 0x20 ? 'H' : 'L';
    let compat = ((buf[c + 2] << 24) >>> 0) + (buf[c + 3] << 16) + (buf[c + 4] << 8) + buf[c + 5];
    let reversed = 0;
    for (let i = 0; i < 32; i++) { reversed = (reversed * 2) + (compat & 1); compat >>>= 1; }
    const constraints = [...buf.slice(c + 6, c + 12)];
    while (constraints.length && constraints[constraints.length - 1] === 0) constraints.pop();
    out.push(['hvc1', space + (spaceTierProfile & 0x1f), reversed.toString(16), tier + buf[c + 12], ...constraints.map(hex)].join('.'));
  }
  if (find(buf, 'mp4a', moov.start, end) >= 0) out.push('mp4a.40.2');
  return out;
}

export class Fmp4Player {
  /** `onError(message, retryable)` once if it cannot play; `onFirstFrame()` when a picture
   *  shows. Retryable: the stream broke off or the decoder gave up (a new player on the same
   *  URL starts over from the node's init segment and GOP cache). */
  constructor(video, url, { onError, onFirstFrame }) {
    this.video = video;
    this.url = url;
    this.onError = onError;
    this.onFirstFrame = onFirstFrame;
    this.ctl = new AbortController();
    this.bytes = 0;
    this.codecs = [];
    this.queue = [];
    this.sb = null;
    this.failed = false;
  }

  start() {
    if (!window.MediaSource) return this.fail('This browser cannot play live video (no Media Source Extensions).');
    this.ms = new MediaSource();
    this.video.src = URL.createObjectURL(this.ms);
    this.ms.addEventListener('sourceopen', () => this.pump(), { once: true });
    this.video.addEventListener('loadeddata', () => this.onFirstFrame && this.onFirstFrame(), { once: true });
    this.video.addEventListener('error', () => this.fail('The browser could not decode this stream.', true));
    this.timer = setInterval(() => this.keepLive(), 1000);
  }

  stop() {
    this.ctl.abort();
    clearInterval(this.timer);
    if (this.video.src.startsWith('blob:')) URL.revokeObjectURL(this.video.src);
    this.video.removeAttribute('src');
    this.video.load();
  }

  fail(message, retryable = false) {
    if (this.failed || this.ctl.signal.aborted) return;
    this.failed = true;
    this.stop();
    if (this.onError) this.onError(message, retryable);
  }

  async pump() {
    let r;
    try {
      r = await fetch(this.url, { signal: this.ctl.signal, cache: 'no-store' });
    } catch (e) {
      return this.fail('The media node cannot be reached.');
    }
    if (!r.ok) return this.fail(r.status === 404 ? 'The stream is not on the media node (it may have ended).' : `The media node answered ${r.status}.`);
    const reader = r.body.getReader();
    let head = new Uint8Array(0);
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return this.fail('The stream ended.', true);
        this.bytes += value.length;
        if (this.sb) { this.append(value); continue; }
        const joined = new Uint8Array(head.length + value.length);
        joined.set(head);
        joined.set(value, head.length);
        head = joined;
        const moov = boxes(head).find((b) => b.type === 'moov');
        if (!moov) {
          if (head.length > 1 << 20) return this.fail('The media node sent no playable header.');
          continue;
        }
        this.codecs = codecsOf(head, moov);
        const type = `video/mp4; codecs="${this.codecs.join(', ')}"`;
        if (!MediaSource.isTypeSupported(type)) {
          const h265 = this.codecs.some((c) => c.startsWith('hvc1'));
          return this.fail(h265 ? 'This browser cannot decode H.265 video. Use Safari or Edge with hardware decoding, or play it with VLC.' : `This browser cannot decode ${this.codecs.join(', ')}.`);
        }
        this.sb = this.ms.addSourceBuffer(type);
        this.sb.mode = 'segments';
        this.sb.addEventListener('updateend', () => this.drain());
        this.append(head);
      }
    } catch (e) {
      if (!this.ctl.signal.aborted) this.fail('The stream was interrupted.', true);
    }
  }

  append(chunk) {
    // Bytes are never dropped here (that would cut a box in two): the media node bounds what a
    // slow viewer may fall behind and cuts it off past that.
    this.queue.push(chunk);
    this.drain();
  }

  drain() {
    if (!this.sb || this.sb.updating || !this.queue.length || this.ms.readyState !== 'open') return;
    const chunk = this.queue.length === 1 ? this.queue[0] : concat(this.queue);
    try {
      this.sb.appendBuffer(chunk);
      this.queue.length = 0;
    } catch (e) {
      if (e.name !== 'QuotaExceededError') return this.fail('The browser refused the stream: ' + e.message);
      // Full: keep the bytes, free what was played, and append again when that is done.
      this.queue = [chunk];
      this.trim(2);
      return;
    }
    if (this.video.paused) this.video.play().catch(() => {});
  }

  /** Stays at the live edge and keeps the buffer short. */
  keepLive() {
    const v = this.video;
    if (!this.sb || !v.buffered.length) return;
    const end = v.buffered.end(v.buffered.length - 1);
    if (end - v.currentTime > 3) v.currentTime = end - 0.3;
    else if (v.currentTime < v.buffered.start(0)) v.currentTime = v.buffered.start(0);
    this.trim(30);
  }

  trim(keepSecs) {
    const v = this.video;
    if (!this.sb || this.sb.updating || !v.buffered.length) return;
    const cut = v.currentTime - keepSecs;
    if (cut > v.buffered.start(0) + 1) this.sb.remove(v.buffered.start(0), cut);
  }
}

function concat(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** HLS through the browser's own player (Safari, iOS, recent Chromium): the video element
 *  reads the playlist itself, so bytes and codecs come from the media node's figures. */
export class HlsPlayer {
  constructor(video, url, { onError, onFirstFrame }) {
    this.video = video;
    this.url = url;
    this.onError = onError;
    this.onFirstFrame = onFirstFrame;
    this.bytes = null;
    this.codecs = [];
    this.stopped = false;
  }

  static supported() {
    return document.createElement('video').canPlayType('application/vnd.apple.mpegurl') !== '';
  }

  start() {
    if (!HlsPlayer.supported()) return this.onError('This browser cannot play HLS; choose fMP4.');
    this.video.addEventListener('loadeddata', () => this.onFirstFrame && this.onFirstFrame(), { once: true });
    this.video.addEventListener('error', () => {
      if (!this.stopped) this.onError('The browser could not play this stream over HLS.');
    }, { once: true });
    this.video.src = this.url;
    this.video.play().catch(() => {});
  }

  stop() {
    this.stopped = true;
    this.video.removeAttribute('src');
    this.video.load();
  }
}

/** The player for `urls` in the chosen form: `auto` takes fMP4 where MSE exists, else HLS. */
export function playerFor(form, video, urls, callbacks) {
  const hls = form === 'hls' || (form === 'auto' && !window.MediaSource && HlsPlayer.supported());
  return hls ? new HlsPlayer(video, urls.hls, callbacks) : new Fmp4Player(video, urls.fmp4, callbacks);
}
