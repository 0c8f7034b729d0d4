"""Reading a video's frames in order and writing an overlay video (PyAV, FFmpeg inside)."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v", ".3gp", ".3g2", ".flv",
                  ".ts", ".mts", ".m2ts", ".wmv", ".mpg", ".mpeg", ".ogv", ".y4m")
DEFAULT_FPS = 30.0  # a folder of frames carries no rate


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def video_fps(path: str | Path) -> float:
    """Frames per second of a video file (``DEFAULT_FPS`` when the container says nothing)."""
    import av

    _check_file(path)
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise ValueError(f"{path}: has no video stream (no frames)")
            rate = c.streams.video[0].average_rate
    except (av.FFmpegError, OSError) as e:
        raise ValueError(f"{path}: not a readable video ({_reason(e)}"
                         f"{_cut_short_hint(path)})") from e  # fmt: skip
    return float(rate) if rate else DEFAULT_FPS


def _check_file(path: str | Path) -> None:
    """A ValueError naming ``path`` where it is no file, or an empty one (FFmpeg's own
    words for them are an errno)."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: an empty file")


def _reason(e: Exception) -> str:
    """FFmpeg's words for an error, without PyAV's errno and the path (the message names
    the file already)."""
    return getattr(e, "strerror", None) or str(e)


def _cut_short_hint(path: str | Path) -> str:
    """"; an MP4 cut short ..." for an MP4/MOV (its first box 'ftyp') whose index (its 'moov'
    box, at the start or the end of the file) is nowhere to be found; "" otherwise."""
    path = Path(path)
    if path.suffix.lower() not in (".mp4", ".mov", ".m4v") or not path.is_file():
        return ""
    with path.open("rb") as f:
        head = f.read(1 << 16)
        f.seek(max(0, path.stat().st_size - (1 << 20)))
        tail = f.read()
    if head[4:8] != b"ftyp" or b"moov" in head or b"moov" in tail:  # (not an MP4 at all)
        return ""
    return "; it has no index: an MP4 cut short loses the index at its end"


def read_frames(path: str | Path, times: list[float] | None = None) -> Iterator[np.ndarray]:
    """RGB uint8 frames (H, W, 3) of a video, in order. Errors name the file; a video that
    breaks off (a truncated file) raises after its last readable frame, also where its
    container ends quietly short of the length its header declares (a frame count; a
    duration, against the last frame's time, in Matroska). ``times``:
    a list to which each frame's presentation time (seconds from the first frame) is added
    as it is read: a phone's video keeps no constant rate."""
    import av

    path = Path(path)
    _check_file(path)
    n, declared, end, first, last = 0, None, None, None, None
    try:
        with av.open(str(path)) as c:
            if not c.streams.video:
                raise ValueError(f"{path}: has no video stream")
            declared, end = _declared_frames(c)
            rate = float(c.streams.video[0].average_rate or DEFAULT_FPS)
            for frame in c.decode(video=0):
                # (a frame without a time: its place at the mean rate)
                t = frame.time if frame.time is not None else n / rate
                first = t if first is None else first
                last = t
                if times is not None:
                    times.append(round(t - first, 6))
                n += 1
                yield frame.to_ndarray(format="rgb24")
    except av.FFmpegError as e:
        if n:
            raise ValueError(f"{path}: unreadable after its first {n} frame(s), a truncated "
                             f"file? ({_reason(e)})") from e  # fmt: skip
        raise ValueError(f"{path}: not a readable video ({_reason(e)}"
                         f"{_cut_short_hint(path)})") from e  # fmt: skip
    if n == 0:
        raise ValueError(f"{path}: no frames")
    if declared is not None and n < declared - max(2, 0.05 * declared):
        raise ValueError(f"{path}: ends after {n} of the {declared} frames its header "
                         "declares, a truncated file?")  # fmt: skip
    # A header that gives a duration, not a count (Matroska): the last frame's time against
    # it (a count from the duration and a nominal rate would call a variable-rate video cut)
    if end is not None and last is not None and last - first < end - max(2 / rate, 0.05 * end):
        raise ValueError(f"{path}: ends after {n} frames at {last - first:.2f} s of the "
                         f"{end:.2f} s its header declares, a truncated file?")  # fmt: skip


def _declared_frames(container) -> tuple[int | None, float | None]:
    """What a video's header says of its length: the stream's frame count where it gives
    one (then None for the rest), else its duration in seconds (the stream's or the
    container's), less one frame at the nominal rate: the time of its last frame's start;
    (None, None) where it says neither."""
    s = container.streams.video[0]
    if s.frames:
        return int(s.frames), None
    if s.duration and s.time_base:
        seconds = float(s.duration * s.time_base)
    elif container.duration:
        seconds = container.duration / 1e6  # av.time_base: microseconds
    else:
        return None, None
    rate = s.average_rate or s.guessed_rate
    return None, max(seconds - (1 / float(rate) if rate else 0.0), 0.0)


class ReadableFrames:
    """The frames of a video or sequence up to the first that cannot be read or differs in
    size from the first (a truncated file, a broken or foreign frame): the frames before it
    are still a sequence worth finishing. ``stopped`` then says at which frame (counted
    from 0, as the outputs are numbered; ``stopped_at``) and why; None while all went well.

    Args:
        frames: frames (H, W, 3) whose iteration may raise ``ValueError`` (``read_frames``,
            ``data.images.ImageError``) for an unreadable one.
    """

    def __init__(self, frames: Iterable[np.ndarray]) -> None:
        self._frames = iter(frames)
        self.stopped: str | None = None
        self.stopped_at: int | None = None  # the frame's number, from 0 (as the outputs')

    def __iter__(self) -> Iterator[np.ndarray]:
        shape = None
        for k in itertools.count(0):
            try:
                frame = next(self._frames)
            except StopIteration:
                return
            except ValueError as e:  # ImageError is one
                self.stopped, self.stopped_at = f"frame {k}: {e}", k
                return
            if shape is None:
                shape = frame.shape
            elif frame.shape != shape:
                (h, w), (h0, w0) = frame.shape[:2], shape[:2]
                self.stopped = (f"frame {k} is {w}x{h} pixels, the first {w0}x{h0}: one "
                                "camera's frames share one size (and K)")  # fmt: skip
                self.stopped_at = k
                return
            yield frame


class VideoWriter:
    """Streams RGB frames (H, W, 3) uint8 into an H.264 MP4 (yuv420p: plays in browsers).

    Frames go to a hidden temporary file that is renamed over ``path`` by ``close()``; an
    exception inside ``with`` removes it, so a half-written video is never left behind. Every
    frame is padded or cut to the first one's size (rounded up to even: yuv420p needs it).
    """

    def __init__(self, path: str | Path, fps: float = DEFAULT_FPS) -> None:
        self.path = Path(path)
        self.fps = fps
        self.tmp = self.path.with_name(f".{self.path.stem}.tmp{self.path.suffix}")
        self._container = None
        self._stream = None
        self.frames = 0

    def add(self, frame: np.ndarray) -> None:
        import av

        if self._container is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            h, w = frame.shape[:2]
            self._container = av.open(str(self.tmp), mode="w", format="mp4")
            # the source's rate as the ratio it is (30000/1001 for NTSC's 29.97: rounded to
            # 30, the overlay drifted from its source, 3.6 s an hour)
            rate = Fraction(self.fps).limit_denominator(1001)
            s = self._container.add_stream("libx264", rate=rate)
            s.width, s.height, s.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
            s.options = {"crf": "20", "preset": "veryfast"}
            self._stream = s
        s = self._stream
        f = np.ascontiguousarray(frame[: s.height, : s.width])
        pad = ((0, s.height - f.shape[0]), (0, s.width - f.shape[1]), (0, 0))
        f = np.pad(f, pad, mode="edge") if any(p[1] for p in pad) else f
        for packet in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path | None:
        """Finish the file and move it into place; None when no frame was added."""
        if self._container is None:
            return None
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        self.tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, *_) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


def write_video(path: str | Path, frames: list[np.ndarray], fps: float = DEFAULT_FPS) -> Path:
    """Write a list of RGB frames as an MP4 (see ``VideoWriter``)."""
    if not frames:
        raise ValueError(f"{path}: no frames to write")
    with VideoWriter(path, fps) as w:
        for f in frames:
            w.add(f)
    return Path(path)
