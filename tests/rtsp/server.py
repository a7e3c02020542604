#!/usr/bin/python3
"""An RTSP server standing in for a Hikvision / Dahua NVR in the NVR pusher's tests.

Serves live test video (H.264, H.265 or JPEG, with G.711 A-law or AAC) at the vendors' live and playback
paths, with digest authentication, from GStreamer's RTSP server (gir1.2-gst-rtsp-server-1.0).

    /usr/bin/python3 tests/rtsp/server.py --port 8554 --user admin --password 12345 [--codec h265]

Prints "ready" on stdout once listening, then "DESCRIBE <url>" for each DESCRIBE. Paths: /Streaming/Channels/{101,201,3001},
/Streaming/tracks/{101,301}, /cam/realmonitor, /cam/playback (the query string is not part of the
mount). Query strings are accepted as sent.
"""
import argparse
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402


def launch(codec: str, audio: str, size: str, pattern: str, kbps: int, frames: int) -> str:
    width, height = size.split("x")
    limit = f" num-buffers={frames}" if frames else ""
    video = f"videotestsrc is-live=true pattern={pattern}{limit} ! video/x-raw,width={width},height={height},framerate=25/1 ! "
    rate = f" bitrate={kbps}" if kbps else ""
    if codec == "jpeg":
        # RFC 2435 JPEG, as MJPEG cameras send it over RTSP (4:2:0: the payload format has no
        # 4:4:4, which videotestsrc's default would give).
        video = video.replace("video/x-raw,", "video/x-raw,format=I420,")
        video += "jpegenc quality=70 ! rtpjpegpay name=pay0 pt=26"
    elif codec == "h265":
        video += f"x265enc tune=zerolatency key-int-max=25{rate} ! video/x-h265,profile=main ! rtph265pay name=pay0 pt=96 config-interval=-1"
    else:
        # (vbv-buf-capacity in ms: keeps a noisy picture near the bit rate asked for.)
        cbr = " pass=cbr vbv-buf-capacity=1000" if kbps else ""
        video += (f"x264enc tune=zerolatency speed-preset=ultrafast key-int-max=25 bframes=0{rate}{cbr} ! "
                  "video/x-h264,profile=baseline ! rtph264pay name=pay0 pt=96 config-interval=-1")
    pipe = f"( {video}"
    if audio == "pcma":
        pipe += " audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8"
    elif audio == "aac":
        # mpeg4-generic (RFC 3640), as cameras send AAC.
        pipe += " audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=16000,channels=1 ! voaacenc bitrate=32000 ! rtpmp4gpay name=pay1 pt=97"
    return pipe + " )"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default="12345")
    ap.add_argument("--codec", choices=["h264", "h265", "jpeg"], default="h264")
    ap.add_argument("--audio", choices=["pcma", "aac", "none"], default="pcma")
    ap.add_argument("--no-audio", action="store_true", help="the same as --audio none")
    # For the benchmark: a bigger, noisier picture at a set bit rate (clients of a path share
    # one encoder, so N sessions cost one encode).
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--pattern", default="ball")
    ap.add_argument("--kbps", type=int, default=0)
    # One pipeline per client (a shared one is torn down when its last client leaves, which
    # races a client joining at that moment: play/stop churn wants its own).
    ap.add_argument("--unshared", action="store_true")
    # A recording that ends: the video stops after this many frames (use with --audio none).
    ap.add_argument("--frames", type=int, default=0)
    a = ap.parse_args()

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(a.port))

    auth = GstRtspServer.RTSPAuth()
    auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
    token = GstRtspServer.RTSPToken()
    # set_string, not writable_structure(): PyGObject hands out a copy of the structure.
    token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
    auth.add_digest(a.user, a.password, token)
    server.set_auth(auth)

    mounts = server.get_mount_points()
    for path in ["/Streaming/Channels/101", "/Streaming/Channels/201", "/Streaming/Channels/3001", "/Streaming/tracks/101", "/Streaming/tracks/301",
                 "/cam/realmonitor", "/cam/playback"]:
        f = GstRtspServer.RTSPMediaFactory()
        f.set_launch(launch(a.codec, "none" if a.no_audio else a.audio, a.size, a.pattern, a.kbps, a.frames))
        f.set_shared(not a.unshared)
        perms = GstRtspServer.RTSPPermissions()
        perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_ACCESS, True)
        perms.add_permission_for_role("user", GstRtspServer.RTSP_PERM_MEDIA_FACTORY_CONSTRUCT, True)
        f.set_permissions(perms)
        mounts.add_factory(path, f)

    # Each DESCRIBE's URL (with its query) on stdout: the tests check the playback times sent.
    def on_describe(_client, ctx):
        print(f"DESCRIBE {ctx.uri.get_request_uri()}", flush=True)

    server.connect("client-connected", lambda _s, client: client.connect("describe-request", on_describe))

    if server.attach(None) == 0:
        print("could not listen", file=sys.stderr)
        return 1
    print("ready", flush=True)
    GLib.MainLoop().run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
