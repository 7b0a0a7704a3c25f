import hashlib
import io
import struct
import zlib

import numpy as np
import pytest
from helpers import make_photo
from PIL import Image

from i2v.errors import InvalidInputError
from i2v.media.images import cover_crop, load_image


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def forge_png_size(data: bytes, width: int, height: int) -> bytes:
    """Rewrite the IHDR chunk (with a valid CRC) so the header claims a huge image: a decompression bomb."""
    start = 8  # after the signature
    length = struct.unpack(">I", data[start : start + 4])[0]
    body = bytearray(data[start + 4 : start + 8 + length])  # type + payload
    body[4:12] = struct.pack(">II", width, height)
    crc = struct.pack(">I", zlib.crc32(bytes(body)) & 0xFFFFFFFF)
    return data[:start] + data[start : start + 4] + bytes(body) + crc + data[start + 12 + length :]


def test_each_supported_format_loads_as_rgb(tmp_path):
    photo = make_photo(300, 280)
    for fmt, suffix in [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp"), ("BMP", "bmp")]:
        path = tmp_path / f"photo.{suffix}"
        photo.save(path, format=fmt)
        loaded = load_image(path)
        assert loaded.image.mode == "RGB" and loaded.image.size == (300, 280), fmt
        assert loaded.source_format == fmt and loaded.warnings == []
        assert np.abs(np.asarray(loaded.image, dtype=int) - np.asarray(photo, dtype=int)).mean() < 8


def test_exif_orientation_is_applied(tmp_path):
    photo = make_photo(300, 260)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    path = tmp_path / "rotated.jpg"
    photo.save(path, exif=exif.tobytes())
    loaded = load_image(path)
    assert loaded.image.size == (260, 300)
    assert loaded.source_size == (300, 260)
    # Turned the right way (clockwise), not merely given the turned size.
    pixels = np.asarray(loaded.image, dtype=int)
    clockwise = np.asarray(photo.transpose(Image.Transpose.ROTATE_270), dtype=int)
    anticlockwise = np.asarray(photo.transpose(Image.Transpose.ROTATE_90), dtype=int)
    assert np.abs(pixels - clockwise).mean() < 8 < np.abs(pixels - anticlockwise).mean()


def test_alpha_is_flattened_onto_white(tmp_path):
    image = Image.new("RGBA", (300, 300), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (0, 0, 150, 300))
    path = tmp_path / "alpha.png"
    image.save(path)
    pixels = np.asarray(load_image(path).image)
    assert tuple(pixels[10, 10]) == (0, 0, 255)
    assert tuple(pixels[10, 290]) == (255, 255, 255)


@pytest.mark.parametrize("mode", ["L", "CMYK", "P", "I;16", "LA"])
def test_other_colour_modes_become_rgb(tmp_path, mode):
    image = make_photo(300, 300).convert(mode) if mode != "I;16" else Image.new("I;16", (300, 300), 40000)
    path = tmp_path / ("img.jpg" if mode == "CMYK" else "img.png")
    image.save(path)
    loaded = load_image(path)
    assert loaded.image.mode == "RGB"
    pixels = np.asarray(loaded.image, dtype=int)
    if mode == "I;16":
        assert (pixels == 156).all()  # 40000 / 256: scaled to 8 bits, not clipped to white
    elif mode == "CMYK":  # the same picture, through a lossy JPEG
        assert np.abs(pixels - np.asarray(make_photo(300, 300), dtype=int)).mean() < 8
    else:  # grey, palette and grey + alpha: the picture's own pixels, not a blank or a misread palette
        assert np.array_equal(pixels, np.asarray(image.convert("RGB"), dtype=int))


def test_small_image_warns(tmp_path):
    path = tmp_path / "small.png"
    make_photo(120, 80).save(path)
    loaded = load_image(path)
    assert any("120×80" in note and "256" in note for note in loaded.warnings)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "image file is empty"),
        (b"this is a text file, not a picture\n", "not a supported image"),
        (b"GIF89a" + b"\0" * 64, "not a supported image"),
    ],
)
def test_unusable_files_get_specific_errors(tmp_path, content, expected):
    path = tmp_path / "input.png"
    path.write_bytes(content)
    with pytest.raises(InvalidInputError, match=expected):
        load_image(path)


def test_truncated_file(tmp_path):
    path = tmp_path / "cut.png"
    path.write_bytes(png_bytes(make_photo(300, 300))[:900])
    with pytest.raises(InvalidInputError, match="truncated or corrupt"):
        load_image(path)


def test_missing_and_folder(tmp_path):
    with pytest.raises(InvalidInputError, match="image not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(InvalidInputError, match="folder"):
        load_image(tmp_path)


def test_decompression_bomb_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(forge_png_size(png_bytes(make_photo(64, 64)), 20000, 20000))
    with pytest.raises(InvalidInputError, match=r"20000×20000 = 400 megapixels, over the 50 MP limit"):
        load_image(path)


def test_pixel_limit_is_configurable(tmp_path, monkeypatch):
    path = tmp_path / "photo.png"
    make_photo(300, 300).save(path)
    monkeypatch.setenv("I2V_MAX_IMAGE_PIXELS", "50000")
    with pytest.raises(InvalidInputError, match="I2V_MAX_IMAGE_PIXELS"):
        load_image(path)


def test_bytes_input():
    data = png_bytes(make_photo(300, 300))
    loaded = load_image(data, name="upload.png")
    assert loaded.image.size == (300, 300) and loaded.source_format == "PNG"
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()  # of the bytes given: what the metadata records


def bands(width: int, height: int, across: bool = True) -> Image.Image:
    """Red, green and blue thirds (left to right, or top to bottom), a white square at the centre."""
    pixels = np.zeros((height, width, 3), np.uint8)
    length = width if across else height
    for index, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        part = slice(index * length // 3, (index + 1) * length // 3)
        pixels[(slice(None), part) if across else (part, slice(None))] = colour
    pixels[height // 2 - 10 : height // 2 + 10, width // 2 - 10 : width // 2 + 10] = 255
    return Image.fromarray(pixels)


@pytest.mark.parametrize(("size", "across"), [((600, 100), True), ((100, 600), False)])
def test_cover_crop_fills_target_and_keeps_centre(size, across):
    image = bands(*size, across=across)
    crop = cover_crop(image, (64, 64))
    pixels = np.asarray(crop)
    assert crop.size == (64, 64)
    # Only the middle third is kept: the edge bands are cropped away, not squeezed in, and nothing is padded.
    # (Green, white, or a blend of the two at the square's edge: full green and red equal to blue everywhere.)
    assert (pixels[..., 1] == 255).all() and np.array_equal(pixels[..., 0], pixels[..., 2])
    assert tuple(pixels[32, 32]) == (255, 255, 255)  # the centre stays the centre
    assert tuple(pixels[0, 0]) == tuple(pixels[-1, -1]) == (0, 255, 0)
    # A frame of the image's own shape keeps all of it: every band, in order, and the square in the middle.
    whole = np.asarray(cover_crop(image, (96, 16) if across else (16, 96)))
    first, last = (whole[8, 2], whole[8, -3]) if across else (whole[2, 8], whole[-3, 8])
    assert (tuple(first), tuple(last)) == ((255, 0, 0), (0, 0, 255))
    assert tuple(whole[whole.shape[0] // 2, whole.shape[1] // 2]) == (255, 255, 255)


@pytest.mark.parametrize("size", [(1, 20000), (20000, 1), (900, 100)])
def test_extreme_aspect_ratio_is_refused_with_the_ratio_and_limit(size):
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, format="PNG")
    with pytest.raises(InvalidInputError, match=r"aspect ratio of .*:1; the limit is 8:1") as raised:
        load_image(buffer.getvalue())
    assert raised.value.field == "image"


@pytest.mark.parametrize(
    ("size", "target"),
    [((96, 64), (64, 64)), ((451, 300), (512, 320)), ((427, 640), (256, 256)), ((1000, 300), (128, 64)), ((64, 2000), (64, 128))],
)
def test_cover_crop_matches_scale_then_crop_without_scaling_the_whole_image(size, target):
    """The reference scales the whole image and crops; we scale only the kept box. Same pixels, bounded memory."""
    image = make_photo(*size)
    scale = min(image.width / target[0], image.height / target[1])
    full = image.resize((round(image.width // scale), round(image.height // scale)), resample=Image.BOX)
    left, top = (full.width - target[0]) // 2, (full.height - target[1]) // 2
    expected = np.asarray(full.crop((left, top, left + target[0], top + target[1])), dtype=int)
    assert np.abs(np.asarray(cover_crop(image, target), dtype=int) - expected).max() == 0


@pytest.mark.parametrize(("size", "target"), [((200, 140), (140, 91)), ((95, 64), (64, 64)), ((300, 201), (200, 134))])
def test_cover_crop_never_paints_a_black_edge_where_the_reference_rounds_short(size, target):
    image = Image.new("RGB", size, (255, 255, 255))
    cropped = np.asarray(cover_crop(image, target))
    assert cropped.shape == (target[1], target[0], 3) and cropped.min() == 255
