"""A VTK XML PolyData (``.vtp``) reader without VTK: points, lines, polygons and point data,
raw, base64 or appended binary, zlib-compressed or not."""

from __future__ import annotations

import base64
import re
import zlib
from pathlib import Path
from xml.etree import ElementTree

import numpy as np

from autocar.errors import TreeFormatError

__all__ = ["read_vtp", "existing_file"]


def existing_file(path: str | Path) -> Path:
    """``path`` as a Path; TreeFormatError naming it when it is not a file."""
    p = Path(path)
    if not p.is_file():
        raise TreeFormatError(f"{p}: no such file")
    return p


# --------------------------------------------------------------- VTK XML reader
_VTK_TYPES = {
    "Int8": "i1",
    "UInt8": "u1",
    "Int16": "i2",
    "UInt16": "u2",
    "Int32": "i4",
    "UInt32": "u4",
    "Int64": "i8",
    "UInt64": "u8",
    "Float32": "f4",
    "Float64": "f8",
}


class _VtkDecoder:
    """Decodes the DataArrays of one VTK XML file (inline/appended, raw/base64, zlib)."""

    def __init__(self, path: Path, root: ElementTree.Element, appended: bytes | None, appended_encoding: str):
        self.path = path
        self.endian = "<" if root.get("byte_order", "LittleEndian") == "LittleEndian" else ">"
        header = root.get("header_type", "UInt32")
        if header not in ("UInt32", "UInt64"):
            raise TreeFormatError(f"{path}: unsupported header_type {header!r}")
        self.hdr = np.dtype(self.endian + ("u4" if header == "UInt32" else "u8"))
        compressor = root.get("compressor")
        if compressor not in (None, "", "vtkZLibDataCompressor"):
            raise TreeFormatError(f"{path}: unsupported compressor {compressor!r} (only vtkZLibDataCompressor)")
        self.compressed = bool(compressor)
        self.appended = appended
        self.appended_encoding = appended_encoding

    def _fail(self, what: str) -> TreeFormatError:
        return TreeFormatError(f"{self.path}: truncated or corrupt VTK data ({what})")

    def _b64(self, text: bytes | str) -> bytes:
        try:
            return base64.b64decode(text, validate=False)
        except (ValueError, TypeError):
            raise self._fail("bad base64") from None

    def _inflate(self, header: np.ndarray, blocks: bytes) -> bytes:
        nblocks = int(header[0])
        sizes = header[3 : 3 + nblocks].astype(np.int64)
        if len(sizes) != nblocks or int(sizes.sum()) > len(blocks):
            raise self._fail("compressed blocks shorter than their header says")
        out = []
        start = 0
        for s in sizes.tolist():
            try:
                out.append(zlib.decompress(blocks[start : start + s]))
            except zlib.error:
                raise self._fail("zlib block does not decompress") from None
            start += s
        return b"".join(out)

    def _header_len(self, first: bytes) -> int:
        """Bytes of a compression header given its first bytes."""
        if len(first) < self.hdr.itemsize:
            raise self._fail("missing header")
        nblocks = int(np.frombuffer(first[: self.hdr.itemsize], dtype=self.hdr)[0])
        if nblocks > 1 << 24:
            raise self._fail(f"implausible block count {nblocks}")
        return (3 + nblocks) * self.hdr.itemsize

    def _inline_binary(self, text: str) -> bytes:
        raw = "".join(text.split()).encode("ascii")
        if not self.compressed:
            data = self._b64(raw)
            n = self.hdr.itemsize
            if len(data) < n:
                raise self._fail("missing size header")
            size = int(np.frombuffer(data[:n], dtype=self.hdr)[0])
            if len(data) < n + size:
                raise self._fail("fewer bytes than the size header says")
            return data[n : n + size]
        # Compressed: the header is base64-encoded on its own, then the blocks.
        first = self._b64(raw[:8] if self.hdr.itemsize == 4 else raw[:12])
        hlen = self._header_len(first)
        hchars = 4 * ((hlen + 2) // 3)
        header = np.frombuffer(self._b64(raw[:hchars])[:hlen], dtype=self.hdr)
        if len(header) * self.hdr.itemsize != hlen:
            raise self._fail("short compression header")
        return self._inflate(header, self._b64(raw[hchars:]))

    def _appended(self, offset: int) -> bytes:
        if self.appended is None:
            raise self._fail("format='appended' but no AppendedData")
        buf = self.appended
        n = self.hdr.itemsize
        if self.appended_encoding == "base64":
            text = buf[offset:]
            if not self.compressed:
                first = self._b64(text[: 4 * ((n + 2) // 3)])
                size = int(np.frombuffer(first[:n], dtype=self.hdr)[0])
                data = self._b64(text[: 4 * ((n + size + 2) // 3)])
                if len(data) < n + size:
                    raise self._fail("appended array shorter than its size header")
                return data[n : n + size]
            first = self._b64(text[:8] if n == 4 else text[:12])
            hlen = self._header_len(first)
            hchars = 4 * ((hlen + 2) // 3)
            header = np.frombuffer(self._b64(text[:hchars])[:hlen], dtype=self.hdr)
            total = int(header[3 : 3 + int(header[0])].sum())
            blocks = self._b64(text[hchars : hchars + 4 * ((total + 2) // 3)])
            return self._inflate(header, blocks)
        if not self.compressed:
            if len(buf) < offset + n:
                raise self._fail("appended data shorter than an offset")
            size = int(np.frombuffer(buf[offset : offset + n], dtype=self.hdr)[0])
            if len(buf) < offset + n + size:
                raise self._fail("appended array shorter than its size header")
            return buf[offset + n : offset + n + size]
        hlen = self._header_len(buf[offset : offset + n])
        header = np.frombuffer(buf[offset : offset + hlen], dtype=self.hdr)
        if len(header) * n != hlen:
            raise self._fail("short compression header")
        return self._inflate(header, buf[offset + hlen :])

    def array(self, el: ElementTree.Element) -> np.ndarray:
        """(n, components) array of one DataArray element."""
        vtype = el.get("type")
        if vtype not in _VTK_TYPES:
            raise TreeFormatError(f"{self.path}: DataArray {el.get('Name')!r} has unsupported type {vtype!r}")
        dtype = np.dtype(self.endian + _VTK_TYPES[vtype])
        ncomp = int(el.get("NumberOfComponents", "1"))
        fmt = el.get("format", "ascii")
        if fmt == "ascii":
            try:
                arr = np.array((el.text or "").split(), dtype=np.float64).astype(dtype)
            except ValueError:
                raise self._fail(f"non-numeric ascii in {el.get('Name')!r}") from None
        elif fmt == "binary":
            data = self._inline_binary(el.text or "")
            arr = np.frombuffer(data[: len(data) // dtype.itemsize * dtype.itemsize], dtype=dtype)
        elif fmt == "appended":
            data = self._appended(int(el.get("offset", "0")))
            arr = np.frombuffer(data[: len(data) // dtype.itemsize * dtype.itemsize], dtype=dtype)
        else:
            raise TreeFormatError(f"{self.path}: DataArray {el.get('Name')!r} has unknown format {fmt!r}")
        if arr.size % ncomp:
            raise self._fail(f"{el.get('Name')!r} size {arr.size} is not a multiple of {ncomp} components")
        return arr.reshape(-1, ncomp).astype(dtype.newbyteorder("="))


def _cells(dec: _VtkDecoder, piece: ElementTree.Element, tag: str, count: int, path: Path) -> list[np.ndarray]:
    el = piece.find(tag)
    if el is None or count == 0:
        return []
    arrays = {a.get("Name"): a for a in el.findall("DataArray")}
    if "connectivity" not in arrays or "offsets" not in arrays:
        raise TreeFormatError(f"{path}: <{tag}> needs 'connectivity' and 'offsets' arrays")
    conn = dec.array(arrays["connectivity"]).ravel().astype(np.int64)
    offs = dec.array(arrays["offsets"]).ravel().astype(np.int64)
    if len(offs) == count + 1 and offs[0] == 0:
        ends = offs[1:]
    elif len(offs) == count:
        ends = offs
    else:
        raise TreeFormatError(f"{path}: <{tag}> has {len(offs)} offsets for {count} cells")
    if len(ends) and (ends[-1] > len(conn) or np.any(np.diff(ends) < 0) or ends[0] < 0):
        raise TreeFormatError(f"{path}: <{tag}> offsets run past the connectivity array (truncated file?)")
    starts = np.concatenate([[0], ends[:-1]])
    return [conn[s:e] for s, e in zip(starts.tolist(), ends.tolist())]


def read_vtp(path: str | Path) -> dict[str, object]:
    """Read a VTK XML PolyData file without VTK.

    Returns
    -------
    dict with ``points`` (N, 3) float64, ``lines`` and ``polys`` (lists of
    int arrays of point indices), ``point_data`` (dict name -> (N,) or
    (N, C) array).
    """
    p = existing_file(path)
    blob = p.read_bytes()
    appended = None
    encoding = "raw"
    start = blob.find(b"<AppendedData")
    if start >= 0:
        open_end = blob.find(b">", start)
        end = blob.rfind(b"</AppendedData>")
        if open_end < 0 or end < 0:
            raise TreeFormatError(f"{p}: truncated or corrupt VTK file (unterminated AppendedData)")
        m = re.search(rb'encoding\s*=\s*"([^"]*)"', blob[start:open_end])
        encoding = m.group(1).decode() if m else "raw"
        underscore = blob.find(b"_", open_end)
        if underscore < 0 or underscore > end:
            raise TreeFormatError(f"{p}: corrupt VTK AppendedData (no '_' marker)")
        # Raw data is addressed by offsets from the byte after '_'; trailing
        # whitespace before the closing tag is harmless. Base64 text may wrap.
        appended = blob[underscore + 1 : end]
        if encoding != "raw":
            appended = b"".join(appended.split())
        blob = blob[: open_end + 1] + blob[end:]
    try:
        root = ElementTree.fromstring(blob)
    except ElementTree.ParseError as exc:
        raise TreeFormatError(f"{p}: truncated or corrupt VTK XML ({exc})") from None
    if root.tag != "VTKFile" or root.get("type") != "PolyData":
        raise TreeFormatError(f"{p}: not a VTK XML PolyData file (root {root.tag!r} type {root.get('type')!r})")
    dec = _VtkDecoder(p, root, appended, encoding)
    pieces = root.findall("PolyData/Piece")
    if not pieces:
        raise TreeFormatError(f"{p}: no PolyData/Piece element")
    points_all: list[np.ndarray] = []
    lines: list[np.ndarray] = []
    polys: list[np.ndarray] = []
    pdata: dict[str, list[np.ndarray]] = {}
    base = 0
    for piece in pieces:
        try:
            npts = int(piece.get("NumberOfPoints", "0"))
            nlines = int(piece.get("NumberOfLines", "0"))
            npolys = int(piece.get("NumberOfPolys", "0"))
        except ValueError:
            raise TreeFormatError(f"{p}: non-integer counts on <Piece>") from None
        pel = piece.find("Points/DataArray")
        pts = dec.array(pel) if pel is not None and npts else np.zeros((0, 3))
        if pts.shape != (npts, 3):
            raise TreeFormatError(f"{p}: Points has shape {pts.shape}, expected ({npts}, 3) (truncated file?)")
        points_all.append(pts.astype(np.float64))
        lines += [c + base for c in _cells(dec, piece, "Lines", nlines, p)]
        polys += [c + base for c in _cells(dec, piece, "Polys", npolys, p)]
        for el in piece.findall("PointData/DataArray"):
            name = el.get("Name", "")
            arr = dec.array(el)
            if len(arr) != npts:
                raise TreeFormatError(f"{p}: point array {name!r} has {len(arr)} values for {npts} points")
            pdata.setdefault(name, []).append(arr[:, 0] if arr.shape[1] == 1 else arr)
        base += npts
    points = np.concatenate(points_all) if points_all else np.zeros((0, 3))
    for c in lines + polys:
        if len(c) and (c.min() < 0 or c.max() >= len(points)):
            raise TreeFormatError(f"{p}: a cell refers to a point index outside [0, {len(points) - 1}]")
    if not np.all(np.isfinite(points)):
        raise TreeFormatError(f"{p}: Points contain NaN or infinite values")
    return {
        "points": points,
        "lines": lines,
        "polys": polys,
        "point_data": {k: np.concatenate(v) for k, v in pdata.items() if len(v) == len(pieces)},
    }
