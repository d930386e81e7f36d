"""Read and write single 2D frames as PNG (CASE_FORMAT v1).

Conversion rules on reading (``kind`` is ``"mask"`` or ``"image"``):

- Greyscale PNGs (1-, 8- or 16-bit) are used as they are: 8-bit gives
  ``uint8``, 16-bit gives ``uint16``, 1-bit gives ``uint8`` 0/1.
- RGB, RGBA, grey+alpha and palette PNGs are accepted only when they are grey
  in disguise: every pixel has R == G == B and any alpha channel is fully
  opaque. The grey value is then the common channel value. True colour (any
  pixel whose channels differ) and transparency are rejected for masks AND
  images, because there is no single right way to turn colour into vessel
  contrast; save such files as greyscale first.
- Masks become ``bool`` with ``vessel = value > 0``. An all-zero mask is
  allowed (a frame in which no vessel was segmented).

Writing: ``bool`` (written 0/255) and ``uint8`` arrays as 8-bit greyscale PNG,
``uint16`` as 16-bit greyscale PNG, always atomically.

Shapes: a frame is (H, W) = (rows, columns), indexed ``[row, col]``.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autocar.errors import CaseFormatError, ShapeError
from autocar.io.atomic import atomic_write_bytes

if TYPE_CHECKING:
    from PIL import Image as PILImage

__all__ = ["read_frame", "write_frame", "encode_png", "FRAME_KINDS"]

FRAME_KINDS = ("mask", "image")
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_COLOUR_TYPES = {0: "grey", 2: "RGB", 3: "palette", 4: "grey+alpha", 6: "RGBA"}


def _png_header(path: Path, head: bytes) -> tuple[int, int, int, int]:
    """(width, height, bit depth, colour type) from the IHDR chunk."""
    if not head.startswith(_PNG_SIGNATURE):
        raise CaseFormatError(f"{path}: not a PNG file (bad signature)")
    if len(head) < 33 or head[12:16] != b"IHDR":
        raise CaseFormatError(f"{path}: truncated or corrupt PNG (no IHDR header)")
    width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
    return width, height, depth, colour


def read_frame(
    path: str | Path,
    *,
    kind: str,
    expected_shape: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read one PNG frame.

    Parameters
    ----------
    path : str or Path
        The PNG file.
    kind : {"mask", "image"}
        ``"mask"``: vessel where the value is > 0; ``"image"``: grey-level
        angiogram.
    expected_shape : (int, int), optional
        (rows, columns) the frame must have (from the view geometry).

    Returns
    -------
    (H, W) ndarray
        ``bool`` for masks; ``uint8`` or ``uint16`` (the PNG bit depth) for
        images.

    Raises
    ------
    CaseFormatError
        Naming the file: missing, not a PNG, truncated or corrupt, colour or
        transparent pixels, 16-bit colour, wrong size.
    """
    from PIL import Image

    if kind not in FRAME_KINDS:
        raise CaseFormatError(f"{path}: kind must be one of {FRAME_KINDS}, got {kind!r}")
    path = Path(path)
    if not path.is_file():
        raise CaseFormatError(f"{path}: frame file not found")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise CaseFormatError(f"{path}: cannot read frame file: {exc}") from None
    width, height, depth, colour = _png_header(path, raw[:64])
    if colour in (2, 4, 6) and depth == 16:
        raise CaseFormatError(
            f"{path}: 16-bit {_PNG_COLOUR_TYPES[colour]} PNG is not supported; save it as 16-bit greyscale"
        )
    try:
        with Image.open(io.BytesIO(raw)) as img:
            img.load()
            arr = _to_grey(path, img)
    except CaseFormatError:
        raise
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as exc:
        raise CaseFormatError(f"{path}: truncated or corrupt PNG ({exc})") from None
    if expected_shape is not None:
        rows, cols = (int(x) for x in expected_shape)
        if arr.shape != (rows, cols):
            raise CaseFormatError(
                f"{path}: frame is {arr.shape[0]} x {arr.shape[1]} px (rows x columns), "
                f"expected {rows} x {cols} from the view's rows/columns"
            )
    if kind == "mask":
        return arr > 0
    return arr


def _to_grey(path: Path, img: "PILImage.Image") -> np.ndarray:
    """Grey (H, W) uint8/uint16 array of a loaded PIL image, following the module rules."""
    mode = img.mode
    if mode == "1":
        return np.asarray(img, dtype=np.uint8)
    if mode == "L":
        return np.asarray(img, dtype=np.uint8).copy()
    if mode.startswith("I;16") or mode == "I":
        arr = np.asarray(img)
        if arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
            raise CaseFormatError(f"{path}: values outside the 16-bit range")
        return arr.astype(np.uint16)
    if mode == "P":
        has_alpha = "transparency" in img.info
        img = img.convert("RGBA" if has_alpha else "RGB")
        mode = img.mode
    if mode in ("LA", "RGBA", "RGB"):
        arr = np.asarray(img)
        if arr.ndim != 3:
            raise CaseFormatError(f"{path}: unexpected pixel layout {arr.shape} for mode {mode}")
        if mode in ("LA", "RGBA"):
            alpha = arr[..., -1]
            if np.any(alpha != 255):
                raise CaseFormatError(
                    f"{path}: has transparent pixels ({int(np.count_nonzero(alpha != 255))}); "
                    "save the frame as an opaque greyscale PNG"
                )
            arr = arr[..., :-1]
        grey = arr[..., 0]
        if arr.shape[-1] > 1:
            differ = np.any(arr != grey[..., None], axis=-1)
            if np.any(differ):
                raise CaseFormatError(
                    f"{path}: is a colour image ({int(np.count_nonzero(differ))} pixels with R, G, B "
                    "not equal); save the frame as a greyscale PNG"
                )
        return np.ascontiguousarray(grey, dtype=np.uint8)
    raise CaseFormatError(f"{path}: unsupported PNG pixel mode {mode!r}")


def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a 2D ``bool``/``uint8`` (8-bit) or ``uint16`` (16-bit) array, greyscale."""
    from PIL import Image

    arr = np.asarray(array)
    if arr.ndim != 2:
        raise ShapeError(f"a frame must be a 2D (H, W) array, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ShapeError(f"a frame must not be empty, got shape {arr.shape}")
    if arr.dtype == np.bool_:
        img = Image.fromarray(arr.astype(np.uint8) * np.uint8(255))
    elif arr.dtype == np.uint8:
        img = Image.fromarray(np.ascontiguousarray(arr))
    elif arr.dtype == np.uint16:
        # Pillow maps a native uint16 array to mode "I;16", saved as 16-bit grey PNG.
        img = Image.fromarray(np.ascontiguousarray(arr.astype("<u2")))
    else:
        raise ShapeError(f"a frame must be bool, uint8 or uint16, got dtype {arr.dtype}")
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def write_frame(path: str | Path, array: np.ndarray) -> Path:
    """Write a 2D frame as greyscale PNG atomically.

    Parameters
    ----------
    path : str or Path
        Destination ``.png`` file; its folder must exist.
    array : (H, W) ndarray
        ``bool`` (mask, written 0/255, 8-bit), ``uint8`` (8-bit) or ``uint16``
        (16-bit).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ShapeError
        Not 2D, empty, or another dtype (float images must be scaled to an
        integer type by the caller: the scaling is a choice, not a format
        detail).
    """
    return atomic_write_bytes(path, encode_png(array))
