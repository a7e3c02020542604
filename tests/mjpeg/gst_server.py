#!/usr/bin/python3
"""MJPEG over HTTP from GStreamer's multipartmux, standing in for a network camera in the pull
source tests: an independent multipart writer, behind HTTP basic authentication.

    /usr/bin/python3 tests/mjpeg/gst_server.py --port 8090 --user admin --password 12345

Each client gets its own pipeline (videotestsrc ! jpegenc ! multipartmux), so its body starts on
a part. Prints "ready" on stdout once listening.
"""
import argparse
import base64
import socket
import sys
import threading

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gst  # noqa: E402

BOUNDARY = "gstcamera"


def serve(conn: socket.socket, expected: str, size: str, fps: int) -> None:
    try:
        request = b""
        while b"\r\n\r\n" not in request and len(request) < 16384:
            chunk = conn.recv(4096)
            if not chunk:
                return
            request += chunk
        auth = [line.split(b":", 1)[1].strip().decode() for line in request.split(b"\r\n") if line.lower().startswith(b"authorization:")]
        if not auth or auth[0] != expected:
            conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"gst\"\r\nContent-Length: 0\r\n\r\n")
            return
        width, height = size.split("x")
        pipeline = Gst.parse_launch(
            f"videotestsrc is-live=true pattern=ball ! video/x-raw,width={width},height={height},framerate={fps}/1 ! "
            f"jpegenc quality=70 ! multipartmux boundary={BOUNDARY} ! appsink name=sink sync=false max-buffers=50 drop=false")
        sink = pipeline.get_by_name("sink")
        pipeline.set_state(Gst.State.PLAYING)
        conn.sendall(f"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary={BOUNDARY}\r\nCache-Control: no-cache\r\n\r\n".encode())
        try:
            while True:
                sample = sink.emit("pull-sample")
                if sample is None:
                    break
                buf = sample.get_buffer()
                ok, info = buf.map(Gst.MapFlags.READ)
                if not ok:
                    break
                data = bytes(info.data)
                buf.unmap(info)
                conn.sendall(data)
        finally:
            pipeline.set_state(Gst.State.NULL)
    except OSError:
        pass
    finally:
        conn.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", default="admin")
    ap.add_argument("--password", default="12345")
    ap.add_argument("--size", default="320x240")
    ap.add_argument("--fps", type=int, default=10)
    a = ap.parse_args()
    Gst.init(None)
    expected = "Basic " + base64.b64encode(f"{a.user}:{a.password}".encode()).decode()
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", a.port))
    srv.listen(16)
    print("ready", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=serve, args=(conn, expected, a.size, a.fps), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
