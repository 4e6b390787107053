#!/usr/bin/python3
"""Serve one video file like a camera at rtsp://HOST:PORT/stream.

Run it with the system python: it needs gi and GstRtspServer, which are not in the venv.

    /usr/bin/python3 tests/support/rtsp_server.py VIDEO --port 8554 [--loop] [--fps 10]

ffmpeg decodes the file (any codec, mp4 or avi) and re-encodes it to H.264: one slice per frame,
no B-frames, a keyframe every second. GStreamer only packetizes and serves it. ffmpeg decodes
because the GStreamer decoders Debian installs without gstreamer1.0-libav cannot read MPEG-4
Part 2, which several of the team's clips are.

The media is live, like a camera: ffmpeg reads the file at its own pace (-re), so frames leave at
the file's frame rate, and they keep its exact timestamps (tsdemux ignore-pcr: its PCR clock-skew
correction bent the frame steps by up to 10 % for seconds). A non-live media would not do:
GstRtspServer then thinks it is seekable and answers a client's PLAY (Range: npt=0-) with 503
once the seek fails. All clients share one ffmpeg, which starts with the first client and stops
when the last one leaves, so a client that comes back later sees the file from its start.

Prints READY on stdout once listening; exits 0 on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def ffmpeg_command(video: Path, loop: bool, fps: float | None) -> list[str]:
    filters = ["scale=trunc(iw/2)*2:trunc(ih/2)*2"]  # libx264 with yuv420p needs even sizes
    if fps:
        filters.append(f"fps={fps}")
    return [
        shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
        "-re", *(["-stream_loop", "-1"] if loop else []), "-i", str(video),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", ",".join(filters),
        # One thread: zerolatency's sliced threads cut frames into slices, and FFmpeg's RTSP client
        # returns each slice of a keyframe as its own packet, which then decodes to a frame of its own.
        "-c:v", "libx264", "-threads", "1", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
        "-force_key_frames", "expr:gte(t,n_forced*1)",
        "-f", "mpegts", "-flush_packets", "1", "pipe:1",
    ]  # fmt: skip


class FileCameraFactory(GstRtspServer.RTSPMediaFactory):
    """One ffmpeg per media; a shared factory makes all clients watch the same one, like a camera."""

    def __init__(self, video: Path, loop: bool, fps: float | None) -> None:
        super().__init__()
        self.command = ffmpeg_command(video, loop, fps)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.count = 0
        self.set_shared(True)
        self.connect("media-configure", self.on_media_configure)

    def do_create_element(self, url: GstRtspServer.RTSPUrl) -> Gst.Element:
        launch = (
            'appsrc name=src is-live=true format=time do-timestamp=true caps="video/mpegts,systemstream=true,packetsize=188"'
            " ! tsdemux ignore-pcr=true ! h264parse ! rtph264pay name=pay0 pt=96 config-interval=-1"
        )
        element = Gst.parse_launch_full(launch, None, Gst.ParseFlags.PLACE_IN_BIN)
        self.count += 1
        element.set_name(f"camera{self.count}")
        proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.procs[element.get_name()] = proc
        threading.Thread(target=feed, args=(proc, element.get_by_name("src")), daemon=True).start()
        return element

    def on_media_configure(self, factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia) -> None:
        media.connect("unprepared", self.on_unprepared)

    def on_unprepared(self, media: GstRtspServer.RTSPMedia) -> None:
        proc = self.procs.pop(media.get_element().get_name(), None)
        if proc is not None:
            stop(proc)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            stop(proc)
        self.procs.clear()


def feed(proc: subprocess.Popen[bytes], appsrc: Gst.Element) -> None:
    assert proc.stdout is not None
    with proc.stdout:
        while chunk := os.read(proc.stdout.fileno(), 1 << 16):
            if appsrc.emit("push-buffer", Gst.Buffer.new_wrapped(chunk)) != Gst.FlowReturn.OK:
                return  # the media was shut down
    appsrc.emit("end-of-stream")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.kill()
    proc.wait(timeout=5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("video", type=Path)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--loop", action="store_true", help="start the file again when it ends")
    parser.add_argument("--fps", type=float, help="resample to this frame rate (default: keep the file's)")
    args = parser.parse_args()
    if not args.video.is_file():
        parser.error(f"no such file: {args.video}")

    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address(args.host)
    server.set_service(str(args.port))
    factory = FileCameraFactory(args.video.resolve(), args.loop, args.fps)
    server.get_mount_points().add_factory("/stream", factory)
    if server.attach(None) == 0:
        print(f"cannot listen on {args.host}:{args.port}", file=sys.stderr)
        return 1

    loop = GLib.MainLoop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, loop.quit)
    print("READY", flush=True)
    try:
        loop.run()
    finally:
        factory.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
