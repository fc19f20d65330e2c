"""A minimal AVI (RIFF) frame reader: Motion-JPEG frames (decoded by Pillow) and uncompressed
8/24-bit frames. Written here because no video library (OpenCV, PyAV, ffmpeg) is in the pinned
environment; other codecs fall back to imageio's plugins when one is installed."""
from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np

from ...errors import InputError


def _chunks(buf: bytes, start: int, end: int):
    """Yield (fourcc, list_type or None, data_start, size) of the chunks in buf[start:end]."""
    pos = start
    while pos + 8 <= end:
        fourcc = buf[pos:pos + 4]
        size = struct.unpack("<I", buf[pos + 4:pos + 8])[0]
        if fourcc in (b"LIST", b"RIFF"):
            yield fourcc, buf[pos + 8:pos + 12], pos + 12, size - 4
        else:
            yield fourcc, None, pos + 8, size
        pos += 8 + size + (size & 1)


def read_avi(path: str | Path) -> np.ndarray:
    """Frames as a (T, H, W) float32 grayscale array in [0, 1] (rows top to bottom)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: video not found")
    buf = path.read_bytes()
    if buf[:4] != b"RIFF" or buf[8:12] != b"AVI ":
        raise InputError(f"{path}: not an AVI file")
    width = height = bits = 0
    compression = b""
    frames: list[bytes] = []

    def walk(start: int, end: int) -> None:
        nonlocal width, height, bits, compression
        for fourcc, ltype, data, size in _chunks(buf, start, end):
            if ltype is not None:
                walk(data, data + size)
            elif fourcc == b"strf" and not width:
                width, height, _, bits, comp = struct.unpack("<iiHHI", buf[data + 4:data + 20])
                compression = struct.pack("<I", comp)
            elif fourcc[2:] in (b"dc", b"db") and size > 0:
                frames.append(buf[data:data + size])

    walk(12, len(buf))
    if not frames:
        raise InputError(f"{path}: no video frames found")
    out = []
    for f in frames:
        if f[:2] == b"\xff\xd8":  # JPEG start-of-image: Motion-JPEG
            from PIL import Image
            out.append(np.asarray(Image.open(io.BytesIO(f)).convert("L"), dtype=np.float32) / 255.0)
        elif compression in (b"\0\0\0\0", b"DIB ") and bits in (8, 24):
            h, w = abs(height), width
            ch = bits // 8
            stride = (w * ch + 3) & ~3
            rows = np.frombuffer(f[:stride * h], dtype=np.uint8).reshape(h, stride)[:, :w * ch].reshape(h, w, ch)
            img = rows.mean(axis=2) / 255.0  # BGR -> grey (equal weights as the frames are grey)
            out.append((img[::-1] if height > 0 else img).astype(np.float32))  # bottom-up DIB rows
        else:
            return _fallback(path, compression)
    return np.stack(out)


def _fallback(path: Path, compression: bytes) -> np.ndarray:
    try:
        import imageio.v3 as iio
        arr = np.asarray(iio.imread(path, index=None), dtype=np.float32)
    except Exception:
        raise InputError(f"{path}: AVI codec {compression!r} needs a video plugin "
                         "(pip install imageio-ffmpeg or av)") from None
    if arr.ndim == 4:
        arr = arr.mean(axis=-1)
    return arr / 255.0


def write_avi_mjpeg(path: str | Path, frames: np.ndarray, fps: int = 50) -> None:
    """Write (T, H, W) uint8 frames as a Motion-JPEG AVI (used by tests and small fixtures)."""
    from PIL import Image

    t, h, w = frames.shape
    jpgs = []
    for fr in frames:
        b = io.BytesIO()
        Image.fromarray(fr.astype(np.uint8), mode="L").convert("RGB").save(b, format="JPEG", quality=95)
        jpgs.append(b.getvalue())

    def chunk(fourcc: bytes, data: bytes) -> bytes:
        return fourcc + struct.pack("<I", len(data)) + data + (b"\0" if len(data) & 1 else b"")

    def lst(ltype: bytes, data: bytes) -> bytes:
        return b"LIST" + struct.pack("<I", len(data) + 4) + ltype + data

    avih = struct.pack("<IIIIIIIIII4I", 1_000_000 // fps, 0, 0, 0x10, t, 0, 1, 0, w, h, 0, 0, 0, 0)
    strh = struct.pack("<4s4sIHHIIIIIIIIhhhh", b"vids", b"MJPG", 0, 0, 0, 0, 1, fps, 0, t, 0, 0xFFFFFFFF, 0,
                       0, 0, w, h)
    strf = struct.pack("<IiiHH4sIiiII", 40, w, h, 1, 24, b"MJPG", w * h * 3, 0, 0, 0, 0)
    hdrl = lst(b"hdrl", chunk(b"avih", avih) + lst(b"strl", chunk(b"strh", strh) + chunk(b"strf", strf)))
    movi = lst(b"movi", b"".join(chunk(b"00dc", j) for j in jpgs))
    body = b"AVI " + hdrl + movi
    Path(path).write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
