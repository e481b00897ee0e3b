"""QR codes for certificates, drawn as vector rectangles in the PDF.

The symbol is exactly what the ``qrcode`` package makes for the same payload (same version,
same mask, same modules — `tests/test_certificates_pdf.py` compares them), produced about ten
times faster, because a certificate needs one per document (~0.6 ms here, ~7 ms with
``qrcode.make``).  ``qrcode`` supplies the tables and the function patterns (finders, timing,
alignment, format and version areas); this module does the per-payload work:

1. **Mode**: a payload made only of the QR alphanumeric set (``0-9 A-Z $%*+-./:`` and space;
   upper-case URLs such as ``HTTPS://CE-LEDGER.EXAMPLE/V/…`` are) is encoded as a single
   alphanumeric segment — 5.5 bits a character instead of 8, so a ~130-character token URL fits
   version 6 instead of 8 — and its codewords (terminator, padding, Reed–Solomon per block,
   interleaving) are computed here.  Anything else goes through ``qrcode``'s segment optimiser
   and ``create_data`` (byte mode for lower case).  ``require_alphanumeric=True`` makes the
   first case mandatory.
2. **Error correction M** (15 %), **quiet zone 4 modules**, version at most ``max_version``
   (default 10: beyond that phone scans get unreliable at certificate sizes); too long a
   payload raises `QrError` saying how long it is and what fits.
3. **Mask**: the same choice as ``qrcode``'s `best_mask_pattern` — its four penalty rules,
   its tie-break (first lowest), its "test" matrix with blank format and version bits — but
   the data is placed once and each mask is an XOR, and the penalties are computed on all rows
   and columns packed into one integer (`_Packed`), instead of eight placements and module
   loops.
4. **Drawing**: one PDF path of rectangles (one per horizontal run of dark modules, in module
   units under one scaling transform) over a white square that includes the quiet zone, so
   nothing else can be drawn into it.  One filled path has no anti-aliasing seams between
   modules.  The default module of 2 pt gives 4.2 px per module at 150 dpi, which ``zbarimg``
   decodes from ``pdftoppm -r 150`` rasters; a version 6 code is then 98 pt (34.6 mm) wide.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import qrcode
from qrcode import base as qr_base
from qrcode import constants as qr_constants
from qrcode import exceptions as qr_exceptions
from qrcode import util as qr_util

from certificates.model import QrError

__all__ = [
    "QUIET_ZONE",
    "QrMatrix",
    "is_alphanumeric",
    "qr_matrix",
    "qr_pdf_ops",
]

QUIET_ZONE: Final = 4
_EC_LEVEL: Final = qr_constants.ERROR_CORRECT_M
_ALNUM_RE: Final = re.compile(r"[0-9A-Z $%*+\-./:]+")
_ONES_RE: Final = re.compile("1")
_DARK_RUN_RE: Final = re.compile("1+")


def is_alphanumeric(payload: str) -> bool:
    """True when ``payload`` is entirely in the QR alphanumeric character set."""
    return _ALNUM_RE.fullmatch(payload) is not None


@dataclass(frozen=True, slots=True)
class QrMatrix:
    """A QR symbol without its quiet zone.

    ``rows[r]`` has bit ``size - 1 - c`` set when the module at row ``r``, column ``c`` is dark
    (so ``format(rows[r], f"0{size}b")`` reads left to right).
    """

    payload: str
    version: int
    mask: int
    alphanumeric: bool
    size: int
    rows: tuple[int, ...]

    def dark(self, row: int, col: int) -> bool:
        return bool((self.rows[row] >> (self.size - 1 - col)) & 1)

    def as_lists(self) -> list[list[bool]]:
        """The matrix as ``qrcode``'s ``modules`` lists (for comparisons)."""
        return [[c == "1" for c in format(r, f"0{self.size}b")] for r in self.rows]


# --- per-version constants --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Layout:
    """What depends only on the version: where the data modules and the format bits are."""

    size: int
    dark: tuple[int, ...]  # per row: dark modules of the function patterns
    order: tuple[tuple[int, int], ...]  # data modules in placement order: (row, bit)
    data: tuple[int, ...]  # per row: bits of data modules
    fmt: tuple[int, ...]  # per row: bits of format info, dark module, version info
    mask_bits: tuple[tuple[int, ...], ...]  # [mask][row]: data modules that mask flips
    fmt_bits: tuple[tuple[int, ...], ...]  # [mask][row]: the real format/version bits


def _rows_of(modules: list[list[Any]], predicate: Any) -> tuple[int, ...]:
    size = len(modules)
    out = []
    for row in modules:
        bits = 0
        for c, value in enumerate(row):
            if predicate(value):
                bits |= 1 << (size - 1 - c)
        out.append(bits)
    return tuple(out)


@functools.lru_cache(maxsize=40)
def _layout(version: int) -> _Layout:
    # Built with qrcode's own pattern-drawing methods, so the data area is exactly the one its
    # map_data fills (the modules it leaves as None).
    q: Any = qrcode.QRCode(version=version, error_correction=_EC_LEVEL, border=0)
    size = q.modules_count = version * 4 + 17
    q.modules = [[None] * size for _ in range(size)]
    q.setup_position_probe_pattern(0, 0)
    q.setup_position_probe_pattern(size - 7, 0)
    q.setup_position_probe_pattern(0, size - 7)
    q.setup_position_adjust_pattern()
    q.setup_timing_pattern()
    functional = _rows_of(q.modules, lambda v: v is not None)
    dark = _rows_of(q.modules, lambda v: v is True)
    q.setup_type_info(True, 0)
    if version >= 7:
        q.setup_type_number(True)
    reserved = _rows_of(q.modules, lambda v: v is not None)
    data = tuple(~r & ((1 << size) - 1) for r in reserved)
    fmt = tuple(r & ~f for r, f in zip(reserved, functional, strict=True))

    mask_bits = []
    fmt_bits = []
    for mask in range(8):
        func = qr_util.mask_func(mask)
        rows = []
        for r in range(size):
            bits = 0
            d = data[r]
            for c in range(size):
                bit = 1 << (size - 1 - c)
                if d & bit and func(r, c):
                    bits |= bit
            rows.append(bits)
        mask_bits.append(tuple(rows))
        q.modules = [[False] * size for _ in range(size)]
        q.setup_type_info(False, mask)
        if version >= 7:
            q.setup_type_number(False)
        fmt_bits.append(tuple(b & f for b, f in zip(_rows_of(q.modules, bool), fmt, strict=True)))
    return _Layout(
        size, dark, _placement_order(data, size), data, fmt, tuple(mask_bits), tuple(fmt_bits)
    )


def _placement_order(data: tuple[int, ...], size: int) -> tuple[tuple[int, int], ...]:
    """Data modules in the order ``qrcode``'s map_data fills them (ISO/IEC 18004 §7.7.3):
    two-column strips from the right, alternately upwards and downwards, skipping column 6."""
    order = []
    upward = True
    col = size - 1
    while col > 0:
        if col == 6:
            col -= 1  # the vertical timing pattern
        rows = range(size - 1, -1, -1) if upward else range(size)
        for r in rows:
            for c in (col, col - 1):
                bit = 1 << (size - 1 - c)
                if data[r] & bit:
                    order.append((r, bit))
        upward = not upward
        col -= 2
    return tuple(order)


# --- data codewords (alphanumeric fast path) ---------------------------------------------------

# GF(256) with the QR polynomial x^8 + x^4 + x^3 + x^2 + 1 (0x11D).
_EXP = [0] * 512
_LOG = [0] * 256
_x = 1
for _i in range(255):
    _EXP[_i] = _x
    _LOG[_x] = _i
    _x <<= 1
    if _x & 0x100:
        _x ^= 0x11D
for _i in range(255, 512):
    _EXP[_i] = _EXP[_i - 255]
del _x, _i
_ALNUM_VALUE: Final = {c: i for i, c in enumerate(qr_util.ALPHA_NUM.decode("ascii"))}


@functools.lru_cache(maxsize=64)
def _generator_logs(degree: int) -> tuple[int, ...]:
    """Logs of the coefficients (after the leading 1) of prod(x - a^i), i < degree."""
    poly = [1]
    for i in range(degree):
        nxt = [0] * (len(poly) + 1)
        for j, coef in enumerate(poly):
            nxt[j] ^= coef
            if coef:
                nxt[j + 1] ^= _EXP[_LOG[coef] + i]
        poly = nxt
    return tuple(_LOG[c] for c in poly[1:])


def _rs_remainder(data: list[int], degree: int) -> list[int]:
    """The ``degree`` error-correction codewords of ``data`` (polynomial long division)."""
    gen = _generator_logs(degree)
    rem = [0] * degree
    for byte in data:
        factor = byte ^ rem[0]
        rem = rem[1:]
        rem.append(0)
        if factor:
            lf = _LOG[factor]
            rem = [r ^ _EXP[g + lf] for r, g in zip(rem, gen, strict=True)]
    return rem


def _alnum_bits(payload: str, version: int) -> str:
    """Mode indicator, character count and data of one alphanumeric segment, as '0'/'1'."""
    parts = [
        "0010",
        format(len(payload), f"0{qr_util.length_in_bits(qr_util.MODE_ALPHA_NUM, version)}b"),
    ]
    values = [_ALNUM_VALUE[c] for c in payload]
    parts += [format(values[i] * 45 + values[i + 1], "011b") for i in range(0, len(values) - 1, 2)]
    if len(values) % 2:
        parts.append(format(values[-1], "06b"))
    return "".join(parts)


def _alnum_fit(payload: str) -> int:
    """The smallest version whose capacity at error correction M holds ``payload``."""
    limits = qr_util.BIT_LIMIT_TABLE[_EC_LEVEL]
    for version in range(1, 41):
        if len(_alnum_bits(payload, version)) <= limits[version]:
            return version
    raise qr_exceptions.DataOverflowError


def _alnum_codewords(payload: str, version: int) -> list[int]:
    """What ``qrcode.util.create_data`` gives for one alphanumeric segment, computed directly:
    terminator, padding to bytes, pad codewords 0xEC/0x11, Reed–Solomon per block, and the
    interleaving of data then error-correction codewords across blocks."""
    limit = qr_util.BIT_LIMIT_TABLE[_EC_LEVEL][version]
    bits = _alnum_bits(payload, version)
    bits += "0" * min(limit - len(bits), 4)
    bits += "0" * (-len(bits) % 8)
    data = list(int(bits, 2).to_bytes(len(bits) // 8, "big")) if bits else []
    data += [qr_util.PAD0 if i % 2 == 0 else qr_util.PAD1 for i in range((limit - len(bits)) // 8)]
    blocks_dc: list[list[int]] = []
    blocks_ec: list[list[int]] = []
    offset = 0
    for block in qr_base.rs_blocks(version, _EC_LEVEL):
        dc = data[offset : offset + block.data_count]
        offset += block.data_count
        blocks_dc.append(dc)
        blocks_ec.append(_rs_remainder(dc, block.total_count - block.data_count))
    out = [dc[i] for i in range(max(map(len, blocks_dc))) for dc in blocks_dc if i < len(dc)]
    out += [ec[i] for i in range(max(map(len, blocks_ec))) for ec in blocks_ec if i < len(ec)]
    return out


# --- mask choice ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Packed:
    """Penalty scoring on all rows and columns at once, packed into one big integer.

    Line ``j`` (rows 0..n-1, then columns 0..n-1) occupies bits ``j*stride`` up to
    ``j*stride + n``; the masks mark where a window may start so that no pattern straddles two
    lines.  Each rule is then a handful of shifts and ANDs on one integer (done in C) instead
    of a loop over modules.
    """

    stride: int
    full: int  # all bits of all lines' slots
    rows: int  # the bits of the row lines (dark count)
    win2_rows: int  # 2-module windows in rows 0..n-2 (2x2 blocks)
    win5: int  # 5-module windows (runs)
    win11: int  # 11-module windows (finder-like patterns)
    masks: tuple[int, ...]  # [mask]: data modules the mask flips, packed
    fmt: int  # format/version/dark-module modules, packed


def _windows(size: int, stride: int, lines: range, width: int) -> int:
    run = (1 << (size - width + 1)) - 1
    return sum(run << (j * stride) for j in lines)


def _transpose(rows: Sequence[int], size: int) -> list[int]:
    text = [format(r, f"0{size}b") for r in rows]
    return [int("".join(col), 2) for col in zip(*text, strict=True)]


def _pack(rows: Sequence[int], size: int, stride: int) -> int:
    lines = [*rows, *_transpose(rows, size)]
    packed = 0
    for j, line in enumerate(lines):
        packed |= line << (j * stride)
    return packed


@functools.lru_cache(maxsize=40)
def _packed(version: int) -> _Packed:
    layout = _layout(version)
    n = layout.size
    stride = n + 12
    lines = 2 * n
    return _Packed(
        stride=stride,
        full=_windows(n, stride, range(lines), 1),
        rows=_windows(n, stride, range(n), 1),
        win2_rows=_windows(n, stride, range(n - 1), 2),
        win5=_windows(n, stride, range(lines), 5),
        win11=_windows(n, stride, range(lines), 11),
        masks=tuple(_pack(m, n, stride) for m in layout.mask_bits),
        fmt=_pack(layout.fmt, n, stride),
    )


# Finder-like patterns, bit j of a window = module at offset j from the window's low end.
# Reading order runs from high bits to low, so each pattern is matched reversed; the pair
# 10111010000 / 00001011101 maps onto itself under reversal.
_FINDER_BITS: Final = tuple(
    tuple(int(c) for c in reversed(p)) for p in ("10111010000", "00001011101")
)


def _penalty(b: int, pk: _Packed, size: int) -> int:
    """``qrcode.util.lost_point`` of the packed matrix ``b`` (same rules, same sums)."""
    full = pk.full
    nb = b ^ full
    # Rule 1: a run of L >= 5 same-colour modules costs L - 2 = (its L - 4 five-module
    # windows) + 2 (one for its first window).
    eq = (b ^ (b >> 1)) ^ full  # bit k: module k equals module k + 1
    w5 = eq & (eq >> 1) & (eq >> 2) & (eq >> 3) & pk.win5
    points = w5.bit_count() + 2 * (w5 & ~(w5 << 1)).bit_count()
    # Rule 2: each 2x2 block of one colour (rows only) costs 3.
    same_v = (b ^ (b >> pk.stride)) ^ full
    points += 3 * (same_v & (same_v >> 1) & eq & pk.win2_rows).bit_count()
    # Rule 3: each finder-like pattern in a row or column costs 40.
    for pattern in _FINDER_BITS:
        m = pk.win11
        for j, bit in enumerate(pattern):
            m &= (b if bit else nb) >> j
        points += 40 * m.bit_count()
    # Rule 4: 10 for every full 5 % the dark share departs from 50 %.
    dark = (b & pk.rows).bit_count()
    percent = float(dark) / (size**2)
    return points + int(abs(percent * 100 - 50) / 5) * 10


def _best_mask(unmasked: tuple[int, ...], layout: _Layout) -> int:
    pk = _packed((layout.size - 17) // 4)
    base = _pack(unmasked, layout.size, pk.stride)
    best, best_points = 0, -1
    keep = pk.full & ~pk.fmt
    for mask in range(8):
        # qrcode scores a "test" matrix: format info, version info and dark module all light.
        points = _penalty((base ^ pk.masks[mask]) & keep, pk, layout.size)
        if best_points < 0 or points < best_points:
            best, best_points = mask, points
    return best


# --- public API -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1024)
def qr_matrix(
    payload: str, *, max_version: int = 10, require_alphanumeric: bool = False
) -> QrMatrix:
    """Encode ``payload`` (error correction M) as a `QrMatrix` (see the module rules)."""
    if not payload:
        raise QrError("QR payload: expected at least one character, found an empty string")
    alnum = is_alphanumeric(payload)
    if require_alphanumeric and not alnum:
        bad = sorted({c for c in payload if not _ALNUM_RE.fullmatch(c)})
        raise QrError(
            f"QR payload: expected only QR alphanumeric characters (0-9 A-Z space $%*+-./:), "
            f"found {''.join(bad)!r}"
        )
    try:
        if alnum:
            version = _alnum_fit(payload)
        else:
            q: Any = qrcode.QRCode(error_correction=_EC_LEVEL, border=0)
            q.add_data(payload)  # qrcode's own segmenting (byte mode for lower case)
            version = q.best_fit()
    except qr_exceptions.DataOverflowError as exc:
        raise QrError(
            f"QR payload of {len(payload)} characters: expected it to fit a QR code at error "
            f"correction M, found it is too long"
        ) from exc
    if version > max_version:
        raise QrError(
            f"QR payload of {len(payload)} characters needs version {version}: expected at "
            f"most version {max_version} (denser codes scan unreliably); shorten the payload"
        )
    layout = _layout(version)
    # The data is placed once, unmasked, on row bit-sets; each mask is then one XOR per row.
    if alnum:
        codewords = _alnum_codewords(payload, version)
    else:
        codewords = qr_util.create_data(version, _EC_LEVEL, q.data_list)
    bits = "".join([format(b, "08b") for b in codewords])
    rows_acc = list(layout.dark)
    order = layout.order
    for i in (m.start() for m in _ONES_RE.finditer(bits, 0, len(order))):
        r, bit = order[i]
        rows_acc[r] |= bit
    unmasked = tuple(rows_acc)
    size = layout.size
    mask = _best_mask(unmasked, layout)
    rows = tuple(
        ((u ^ m) & ~f) | fb
        for u, m, f, fb in zip(
            unmasked, layout.mask_bits[mask], layout.fmt, layout.fmt_bits[mask], strict=True
        )
    )
    return QrMatrix(payload, version, mask, alnum, size, rows)


def _rectangles(matrix: QrMatrix) -> list[tuple[int, int, int, int]]:
    """Dark areas as ``(col, row, width, 1)`` rectangles in module units (row 0 on top): one
    per horizontal run of dark modules."""
    size = matrix.size
    return [
        (m.start(), r, m.end() - m.start(), 1)
        for r, bits in enumerate(matrix.rows)
        for m in _DARK_RUN_RE.finditer(format(bits, f"0{size}b"))
    ]


def qr_pdf_ops(matrix: QrMatrix, x: float, y: float, module: float = 2.0) -> str:
    """PDF content operators drawing ``matrix`` with its quiet zone, lower-left at ``(x, y)``.

    The drawn square is ``(matrix.size + 8) * module`` points wide, white underneath, black
    modules on top; the operators save and restore the graphics state.  The modules are
    written in module units (small integers) under one scaling transform.
    """
    total = (matrix.size + 2 * QUIET_ZONE) * module
    top = y + total - QUIET_ZONE * module  # y of the symbol's top edge
    left = x + QUIET_ZONE * module
    # Rows grow downwards: the transform maps module (c, r) to (left + c*m, top - r*m).
    ops = [
        "q",
        f"1 g {x:.3f} {y:.3f} {total:.3f} {total:.3f} re f",
        f"0 g {module:g} 0 0 {-module:g} {left:.3f} {top:.3f} cm",
    ]
    ops.extend(f"{c} {r} {w} {h} re" for c, r, w, h in _rectangles(matrix))
    ops += ["f", "Q"]
    return "\n".join(ops)
