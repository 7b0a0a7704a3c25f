import errno
import os
from pathlib import Path

import av
import numpy as np
import pytest

from i2v.errors import InvalidInputError, OutputWriteError
from i2v.media import files
from i2v.media.video import encode_video


def clip(frames=8, height=64, width=96) -> np.ndarray:
    video = np.zeros((frames, height, width, 3), np.uint8)
    for index in range(frames):
        video[index, :, : (index + 1) * width // frames] = (200, 60, 30)
        video[index, height // 2 :, :, 1] = 180
    return video


def decode(path: Path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
        return np.stack(frames), stream.average_rate, stream.codec_context.name


@pytest.mark.parametrize(("fmt", "codec"), [("mp4", "h264"), ("webm", "vp9"), ("gif", "gif")])
def test_formats_decode_back(tmp_path, fmt, codec):
    source = clip()
    path = encode_video(source, tmp_path / f"out.{fmt}", fps=8)
    frames, rate, name = decode(path)
    assert name == codec
    assert frames.shape == source.shape
    assert np.abs(frames.astype(int) - source).mean() < 6
    if fmt != "gif":  # GIF stores delays in 1/100 s, so 8 fps becomes 8.33
        assert rate == 8


@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_long_clips_encode_every_frame_at_its_time(tmp_path, fmt):
    """Wan's default 121 frames at 24 fps: past ~40 frames the muxer rewrites the stream's time base, which once
    made every clip longer than that fail to save."""
    source = clip(frames=121, height=32, width=48)
    path = encode_video(source, tmp_path / f"long.{fmt}", fps=24)
    frames, rate, _ = decode(path)
    assert frames.shape == source.shape and rate == 24
    with av.open(str(path)) as container:
        assert float(container.duration / av.time_base) == pytest.approx(121 / 24, abs=0.1)


def test_mp4_is_yuv420p_h264(tmp_path):
    path = encode_video(clip(frames=16), tmp_path / "out.mp4", fps=16)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.frames == 16
        assert float(container.duration / av.time_base) == pytest.approx(1.0, abs=0.07)


def test_crash_mid_write_leaves_old_file_and_no_partial(tmp_path, monkeypatch):
    path = tmp_path / "out.mp4"
    encode_video(clip(), path, fps=8)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise RuntimeError("power cut")

    monkeypatch.setattr(av.VideoFrame, "from_ndarray", crash)
    with pytest.raises(RuntimeError):
        encode_video(clip(frames=12), path, fps=8)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mp4"]


def test_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "replace", full)
    with pytest.raises(OutputWriteError, match="disk full while writing .*out.mp4"):
        encode_video(clip(), tmp_path / "out.mp4", fps=8)
    assert list(tmp_path.iterdir()) == []


def test_format_and_suffix_must_agree(tmp_path):
    with pytest.raises(InvalidInputError, match="ends in .mp4 but the format is gif"):
        encode_video(clip(), tmp_path / "out.mp4", fps=8, fmt="gif")
    with pytest.raises(InvalidInputError, match="must end in .mp4, .webm or .gif"):
        encode_video(clip(), tmp_path / "out.avi", fps=8)
