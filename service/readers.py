"""Camera readers: demux with PyAV, keep encoded packets in a ring buffer, decode only what is analyzed.

A ``VideoSource`` is one connection to a source (file or stream) yielding the frames to
analyze; it also feeds ``ClipRecording``s from its packets, so clips are copies of the
camera's own encoded video (no re-encode). ``CameraReader`` runs a source in a thread
with timeouts, reconnection with backoff, and status reports.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
import av.error

from service.config import CameraConfig, redact_source
from service.pipeline import AnalyzedFrame

log = logging.getLogger(__name__)

# Fragmented MP4: a file cut short by a crash still holds every fragment written so far.
PARTIAL_MP4_OPTIONS = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}


class SourceError(RuntimeError):
    """The source cannot be opened or read; the message says which and why."""


@dataclass(frozen=True)
class StoredPacket:
    data: bytes
    pts: int | None
    dts: int | None
    keyframe: bool
    t: float  # stream seconds, same clock as AnalyzedFrame.t


class PacketRing:
    """The last ``seconds`` of encoded packets, for a clip's pre-roll."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._packets: deque[StoredPacket] = deque()

    def append(self, packet: StoredPacket) -> None:
        self._packets.append(packet)
        # Keep whole GOPs: drop from the front only while the next keyframe is also old enough.
        while len(self._packets) > 1 and self._packets[-1].t - self._packets[0].t > self.seconds:
            second_key = next((i for i, p in enumerate(self._packets) if i > 0 and p.keyframe), None)
            if second_key is None or self._packets[-1].t - self._packets[second_key].t < self.seconds:
                break
            for _ in range(second_key):
                self._packets.popleft()

    def since(self, t: float) -> list[StoredPacket]:
        """Packets from the last keyframe at or before ``t`` (or the oldest keyframe held)."""
        packets = list(self._packets)
        keys = [i for i, p in enumerate(packets) if p.keyframe]
        if not keys:
            return []
        start = max((i for i in keys if packets[i].t <= t), default=keys[0])
        return packets[start:]

    def clear(self) -> None:
        self._packets.clear()


@dataclass
class ClipRecording:
    """A clip being cut from a camera's packets, from ``start_t`` until ``stop_t``."""

    path: Path  # fragmented MP4 being written
    start_t: float
    stop_t: float
    on_done: Callable[[ClipRecording], None]
    first_t: float | None = None
    last_t: float | None = None
    interrupted: bool = False
    error: str | None = None
    _container: av.container.OutputContainer | None = field(default=None, repr=False)
    _stream: av.video.stream.VideoStream | None = field(default=None, repr=False)
    _time_base: Fraction = field(default=Fraction(1, 90000), repr=False)
    _offset: int = 0

    def open(self, template: av.video.stream.VideoStream) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), "w", format="mp4", options=PARTIAL_MP4_OPTIONS)
        self._stream = self._container.add_stream_from_template(template)
        self._time_base = template.time_base or Fraction(1, 90000)

    def write(self, packet: StoredPacket) -> None:
        assert self._container is not None and self._stream is not None
        if self.first_t is None:
            self._offset = packet.dts if packet.dts is not None else (packet.pts or 0)
            self.first_t = packet.t
        out = av.Packet(packet.data)
        out.pts = None if packet.pts is None else packet.pts - self._offset
        out.dts = None if packet.dts is None else packet.dts - self._offset
        out.is_keyframe = packet.keyframe
        out.time_base = self._time_base
        out.stream = self._stream
        self._container.mux(out)
        self.last_t = packet.t

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def _open_options(camera: CameraConfig) -> dict[str, str]:
    if camera.source.startswith("rtsp://"):
        return {"rtsp_transport": "tcp"}
    return {}


class VideoSource:
    """One open connection to a camera or file, yielding the frames to analyze."""

    def __init__(self, camera: CameraConfig, ring_seconds: float = 20.0, realtime: bool | None = None,
                 start_wallclock: datetime | None = None) -> None:
        self.camera = camera
        self.ring = PacketRing(ring_seconds)
        self.realtime = camera.realtime if realtime is None else realtime
        self.start_wallclock = start_wallclock
        self.frames_read = 0
        self.codec = ""
        self._recordings: list[ClipRecording] = []
        self._pending: list[ClipRecording] = []
        self._lock = threading.Lock()

    def record(self, recording: ClipRecording) -> None:
        """Start cutting a clip; its pre-roll comes from the ring buffer. Thread-safe."""
        with self._lock:
            self._pending.append(recording)

    def set_stop(self, recording: ClipRecording, stop_t: float) -> None:
        with self._lock:
            recording.stop_t = stop_t

    def frames(self) -> Generator[AnalyzedFrame]:
        """Decode the source and yield the frames at the camera's analysis rate."""
        camera = self.camera
        shown = redact_source(camera.source)
        # A device index means a local capture device (Linux: /dev/videoN through v4l2).
        target, input_format = (f"/dev/video{camera.source}", "v4l2") if camera.source.isdigit() else (camera.source, None)
        if camera.is_file and not Path(camera.source).is_file():
            raise SourceError(f"camera {camera.id!r}: video file not found: {camera.source}")
        try:
            container = av.open(target, "r", format=input_format, options=_open_options(camera),
                                timeout=(camera.open_timeout_s, camera.read_timeout_s))
        except (av.error.FFmpegError, OSError) as error:
            raise SourceError(redact_source(f"camera {camera.id!r}: cannot open {shown}: {error}")) from None
        reached_end = False
        try:
            if not container.streams.video:
                raise SourceError(f"camera {camera.id!r}: {shown} has no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "SLICE"  # frame threads in every camera's decoder oversubscribe a small CPU
            self.codec = stream.codec_context.name
            yield from self._demux(container, stream)
            reached_end = True
        except (av.error.FFmpegError, OSError) as error:
            raise SourceError(redact_source(f"camera {camera.id!r}: stream failed: {error}")) from None
        finally:
            # The end of a file is the natural end of its clips; any end of a live stream cuts them short.
            self._close_recordings(interrupted=not (reached_end and camera.is_file))
            container.close()

    def _demux(self, container: av.container.InputContainer, stream: av.video.stream.VideoStream) -> Iterator[AnalyzedFrame]:
        time_base: Fraction = stream.time_base or Fraction(1, 90000)
        step = 1.0 / self.camera.analysis_fps
        next_t = 0.0
        origin: int | None = None
        started = time.monotonic()
        wall_origin = self.start_wallclock or datetime.now(UTC)
        for packet in container.demux(stream):
            stamp = packet.dts if packet.dts is not None else packet.pts
            if stamp is not None and origin is None:
                origin = stamp
            t = float((stamp - origin) * time_base) if stamp is not None and origin is not None else 0.0
            if packet.size:  # the empty packet at the end only flushes the decoder's last frames
                stored = StoredPacket(bytes(packet), packet.pts, packet.dts, packet.is_keyframe, t)
                self._feed_recordings(stored, stream)  # before the ring takes it, so a new clip's pre-roll ends just before it
                self.ring.append(stored)
            for frame in packet.decode():
                self.frames_read += 1
                frame_t = float((frame.pts - origin) * time_base) if frame.pts is not None and origin is not None else t
                if frame_t + 1e-6 < next_t:
                    continue
                next_t = max(next_t + step, frame_t + step / 2)
                if self.realtime and self.camera.is_file:
                    delay = frame_t - (time.monotonic() - started)
                    if delay > 0:
                        time.sleep(delay)
                wallclock = wall_origin + timedelta(seconds=frame_t) if self.camera.is_file else datetime.now(UTC)
                yield AnalyzedFrame(self.camera.id, self.frames_read - 1, frame_t, wallclock,
                                    frame.to_ndarray(format="bgr24"))

    def _feed_recordings(self, packet: StoredPacket, stream: av.video.stream.VideoStream) -> None:
        with self._lock:
            pending, self._pending = self._pending, []
            for recording in pending:
                try:
                    recording.open(stream)
                    for old in self.ring.since(recording.start_t):
                        recording.write(old)
                    self._recordings.append(recording)
                except (av.error.FFmpegError, OSError) as error:
                    recording.error = f"cannot write clip {recording.path}: {error}"
                    self._finish(recording)
                    continue
                if packet.t > recording.stop_t:
                    self._finish(recording)
            for recording in list(self._recordings):
                if packet.t > recording.stop_t:
                    self._recordings.remove(recording)
                    self._finish(recording)
                    continue
                try:
                    recording.write(packet)
                except (av.error.FFmpegError, OSError) as error:
                    recording.error = f"cannot write clip {recording.path}: {error}"
                    self._recordings.remove(recording)
                    self._finish(recording)

    def _finish(self, recording: ClipRecording) -> None:
        try:
            recording.close()
        except (av.error.FFmpegError, OSError) as error:
            recording.error = recording.error or f"cannot close clip {recording.path}: {error}"
        if recording in self._recordings:
            self._recordings.remove(recording)
        recording.on_done(recording)

    def _close_recordings(self, interrupted: bool) -> None:
        with self._lock:
            for recording in self._recordings + self._pending:
                recording.interrupted = interrupted
                self._finish(recording)
            self._recordings, self._pending = [], []


StatusCallback = Callable[[str, str, str], None]  # camera id, "online" | "offline" | "ended", reason


class CameraReader(threading.Thread):
    """Keeps one camera connected: opens with timeouts, reconnects with backoff, reports status.

    Frames go to ``on_frame``; a source that fails never holds up other cameras.
    """

    def __init__(self, camera: CameraConfig, on_frame: Callable[[AnalyzedFrame, VideoSource], None],
                 on_status: StatusCallback, ring_seconds: float) -> None:
        super().__init__(name=f"reader-{camera.id}", daemon=True)
        self.camera, self.on_frame, self.on_status, self.ring_seconds = camera, on_frame, on_status, ring_seconds
        self.stop_event = threading.Event()
        self.source: VideoSource | None = None
        self.reconnects = 0
        self._frames_read_done = 0  # by connections that have ended

    @property
    def frames_read(self) -> int:
        """Frames decoded since the reader started, across reconnections."""
        source = self.source
        return self._frames_read_done + (source.frames_read if source is not None else 0)

    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> None:
        backoff = 1.0
        while not self.stop_event.is_set():
            source = self.source = VideoSource(self.camera, self.ring_seconds)
            online = False
            try:
                for frame in source.frames():
                    if not online:
                        online, backoff = True, 1.0
                        self.on_status(self.camera.id, "online", f"{redact_source(self.camera.source)} ({source.codec})")
                    self.on_frame(frame, source)
                    if self.stop_event.is_set():
                        break
                reason = "end of file" if self.camera.is_file else "stream ended"
            except SourceError as error:
                reason = str(error)
            finally:
                self._frames_read_done += source.frames_read
                self.source = None
            if self.stop_event.is_set():
                break
            if self.camera.is_file and online:
                if not self.camera.loop:
                    self.on_status(self.camera.id, "ended", reason)
                    break
                continue  # a looping file starts again at once; it never went offline
            self.on_status(self.camera.id, "offline", reason)
            self.reconnects += 1
            if self.stop_event.wait(backoff):
                break
            backoff = min(backoff * 2, self.camera.max_backoff_s)
