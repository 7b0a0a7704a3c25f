"""Encode frames to MP4 (H.264), WebM (VP9) or GIF with PyAV, atomically."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from i2v.errors import InvalidInputError
from i2v.media.files import atomic_path

VideoFormat = Literal["mp4", "webm", "gif"]
FORMATS: tuple[VideoFormat, ...] = ("mp4", "webm", "gif")
DEFAULT_CRF = 18

_CODECS = {
    "mp4": ("libx264", "yuv420p"),
    "webm": ("libvpx-vp9", "yuv420p"),
}


def format_for(path: Path, requested: str | None = None) -> VideoFormat:
    """The container for `path`: the one asked for, else its suffix; a mismatch is an error, not a surprise."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if requested is not None:
        requested = requested.lower()
        if requested not in FORMATS:
            raise InvalidInputError(f"format must be one of {', '.join(FORMATS)}, got {requested!r}")
        if suffix and suffix != requested:
            raise InvalidInputError(f"output {path} ends in .{suffix} but the format is {requested}: make them agree")
        return requested  # type: ignore[return-value]
    if suffix not in FORMATS:
        raise InvalidInputError(f"output {path} must end in .mp4, .webm or .gif (or pass a format)")
    return suffix  # type: ignore[return-value]


def encode_video(
    frames: np.ndarray, path: Path, *, fps: int, fmt: VideoFormat | None = None, crf: int = DEFAULT_CRF
) -> Path:
    """Write `frames` (uint8, F×H×W×3) to `path`; the file appears whole or not at all."""
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must be uint8 F×H×W×3, got {frames.dtype} {frames.shape}")
    fmt = format_for(path, fmt)
    with atomic_path(Path(path)) as temp:
        if fmt == "gif":
            _write_gif(frames, temp, fps)
        else:
            _write_av(frames, temp, fps, fmt, crf)
    return Path(path)


def _write_av(frames: np.ndarray, temp: Path, fps: int, fmt: VideoFormat, crf: int) -> None:
    import av  # here, not at the top: code that never encodes (bench/gpu_check.py on a bare GPU box) needs no PyAV

    codec, pix_fmt = _CODECS[fmt]
    height, width = frames.shape[1:3]
    with av.open(str(temp), mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=Fraction(fps))
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        # Frames carry their own time base: the stream's changes when the muxer writes its header (to 1/12288 in
        # mp4, once the encoder's lookahead first emits packets, ~40 frames in), and frame indices read in that
        # base go backwards, which the muxer refuses.
        frame_time_base = stream.time_base = Fraction(1, fps)
        if fmt == "mp4":
            stream.options = {"crf": str(crf), "preset": "medium"}
        elif fmt == "webm":
            stream.options = {"crf": str(crf + 13), "b": "0", "row-mt": "1"}
        for index, frame in enumerate(frames):
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24")
            video_frame.pts = index
            video_frame.time_base = frame_time_base
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode(None))


def _write_gif(frames: np.ndarray, temp: Path, fps: int) -> None:
    """GIF through Pillow: its adaptive per-frame palette looks far better than FFmpeg's fixed rgb8 one."""
    images = [Image.fromarray(frame).quantize(colors=256, method=Image.Quantize.MEDIANCUT) for frame in frames]
    images[0].save(
        temp, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0, optimize=False
    )
