"""CJK TrueType fonts, a per-character fallback with no silent tofu, and fast PDF embedding.

Only TrueType outlines are embedded (reportlab parses them, and the subsetting below works on
``glyf``): a font with CFF outlines (every Noto CJK ``.otf``/``.ttc`` in Debian) is refused with
`FontError`, so the fonts here are TrueType/TTC files.  The defaults are Debian packages (CI
installs them):

* **primary** — WenQuanYi Zen Hei (``fonts-wqy-zenhei``, ``wqy-zenhei.ttc`` subfont 0): a 黑体
  with ~42,000 code points, CJK Unified Ideographs *and* Extension A (䶮 U+4DAE), Latin, digits,
  full-width punctuation; it lacks Extension B and beyond (𠮷 U+20BB7) and ✓.
* **fallbacks**, tried in order for a character the primary lacks — BabelStone Han
  (``fonts-babelstone-han``: CJK ideographs to Unicode 15, Extensions B–H included) and DejaVu
  Sans (``fonts-dejavu-core``: ✓ ✗ ⅔ ≥ and other symbols).

The primary can be overridden (the service passes its ``CELEDGER_CJK_FONT`` setting):
``/path/font.ttf`` or, for a collection, ``/path/font.ttc#1`` (subfont index).

Rules, in order, for every string drawn (`FontSet.runs`):

1. Each character is drawn with the first font that has a non-empty glyph for it (a cmap entry
   pointing at glyph 0, or at an empty outline for a non-space character, counts as missing —
   that is exactly what prints as tofu or as a blank).
2. A character that no font covers raises `MissingGlyphError` naming it and its code point.
3. Characters outside the BMP work end to end (drawing, text extraction, search).

Embedding (`DocumentFonts`): reportlab's own TTF embedding splits a font into 256-character
simple-font subsets, re-copies the 10 MB ``glyf`` table for each, formats every width through
Python, and writes ToUnicode maps that are wrong outside the BMP (``<20BB7>``).  Here each face
used by a document becomes **one** Type 0 font (CIDFontType2, Identity-H, CID = glyph id):

* the font program keeps the original glyph ids and holds only the glyphs the document uses
  (plus the components of composite glyphs and .notdef); unused glyphs are empty ``loca``
  slots, so no renumbering is needed and composite references stay valid;
* glyph bytes and their checksums are cached per process, so building a subset is a join, and
  table checksums are sums of cached parts;
* text is encoded with one ``str.translate`` per run (character → glyph id → two bytes);
* ``/W`` lists only the glyphs used, and ToUnicode maps each glyph back to its character in
  UTF-16BE (surrogate pairs for 𠮷), so copy-paste and ``pdftotext`` give the real text.

Fonts are parsed once per process (`load_fonts` is cached): parsing takes ~0.1 s per face.
"""

from __future__ import annotations

import functools
import hashlib
import struct
import threading
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from reportlab.pdfbase.pdfdoc import PDFDictionary, PDFObject, PDFStream
from reportlab.pdfbase.ttfonts import TTFError, TTFontFile

from certificates.model import FontError, MissingGlyphError

__all__ = [
    "DEFAULT_FALLBACKS",
    "DocumentFonts",
    "FontSet",
    "FontSpec",
    "default_primary",
    "load_fonts",
]


@dataclass(frozen=True, slots=True)
class FontSpec:
    """A font file and, for a TrueType collection (``.ttc``), the subfont index."""

    path: Path
    subfont_index: int = 0
    package: str = field(default="", compare=False)  # the Debian package, for error messages

    @classmethod
    def parse(cls, value: str | Path | FontSpec) -> FontSpec:
        """``/path/f.ttf`` or ``/path/f.ttc#2`` (the setting's format) → `FontSpec`."""
        if isinstance(value, FontSpec):
            return value
        text = str(value)
        path, sep, index = text.rpartition("#")
        if sep and index.isdigit():
            return cls(Path(path), int(index))
        return cls(Path(text), 0)

    def __str__(self) -> str:
        return f"{self.path}#{self.subfont_index}" if self.subfont_index else str(self.path)


_FONT_DIR: Final = Path("/usr/share/fonts/truetype")
# Tried in order when no primary font is configured.
_PRIMARY_CANDIDATES: Final = (
    FontSpec(_FONT_DIR / "wqy/wqy-zenhei.ttc", 0, "fonts-wqy-zenhei"),
    FontSpec(_FONT_DIR / "wqy/wqy-microhei.ttc", 0, "fonts-wqy-microhei"),
    FontSpec(_FONT_DIR / "arphic/uming.ttc", 0, "fonts-arphic-uming"),
)
DEFAULT_FALLBACKS: Final = (
    FontSpec(_FONT_DIR / "babelstone/BabelStoneHan.ttf", 0, "fonts-babelstone-han"),
    FontSpec(_FONT_DIR / "dejavu/DejaVuSans.ttf", 0, "fonts-dejavu-core"),
)


def default_primary() -> FontSpec:
    """The first installed default primary font; `FontError` naming the packages otherwise."""
    for spec in _PRIMARY_CANDIDATES:
        if spec.path.is_file():
            return spec
    tried = ", ".join(f"{s.path} ({s.package})" for s in _PRIMARY_CANDIDATES)
    raise FontError(
        f"no CJK TrueType font configured and none of the defaults is installed: expected one of "
        f"{tried}, found none; install fonts-wqy-zenhei or set CELEDGER_CJK_FONT"
    )


# --- one parsed face --------------------------------------------------------------------------

_MASK32: Final = 0xFFFFFFFF
# Composite glyph flags (OpenType glyf table).
_ARG_1_AND_2_ARE_WORDS: Final = 0x0001
_WE_HAVE_A_SCALE: Final = 0x0008
_MORE_COMPONENTS: Final = 0x0020
_WE_HAVE_AN_X_AND_Y_SCALE: Final = 0x0040
_WE_HAVE_A_TWO_BY_TWO: Final = 0x0080
# Tables copied unchanged into every subset, when the font has them.  Not "name" (up to 16 kB
# of licence and naming text that PDF readers never use: PDF 32000-1 §9.9 does not require it)
# and not "cmap" (a CIDFontType2 maps CIDs to glyphs with /CIDToGIDMap).
_STATIC_TABLES: Final = ("OS/2", "cvt ", "fpgm", "prep")


def _checksum(data: bytes) -> int:
    """OpenType table checksum: the sum of big-endian uint32 words, zero-padded."""
    if len(data) % 4:
        data += b"\0" * (4 - len(data) % 4)
    words: tuple[int, ...] = struct.unpack(f">{len(data) // 4}L", data)
    return sum(words) & _MASK32


@dataclass(frozen=True, slots=True)
class _Glyph:
    data: bytes  # outline bytes, zero-padded to a multiple of 4
    checksum: int
    components: tuple[int, ...]  # glyph ids a composite glyph refers to


class _Face:
    """One parsed TrueType face: metrics, cmap, and per-glyph caches for subsetting."""

    def __init__(self, spec: FontSpec) -> None:
        if not spec.path.is_file():
            hint = f" (Debian package {spec.package})" if spec.package else ""
            raise FontError(f"font file {spec.path}{hint}: expected a TrueType font, found no file")
        try:
            ttf: Any = TTFontFile(str(spec.path), validate=0, subfontIndex=spec.subfont_index)
        except TTFError as exc:
            raise FontError(
                f"font {spec}: expected a TrueType font with glyf outlines that can be embedded, "
                f"found: {exc} (CFF/OpenType .otf fonts cannot be embedded here)"
            ) from exc
        except (OSError, ValueError, IndexError, struct.error) as exc:
            raise FontError(
                f"font {spec}: expected a readable TrueType font, found: {exc}"
            ) from exc
        self.spec = spec
        self.ps_name: str = (
            ttf.name.decode("latin-1") if isinstance(ttf.name, bytes) else str(ttf.name)
        )
        self.glyphs: dict[int, int] = ttf.charToGlyph  # code point → glyph id
        self.widths: dict[int, float] = ttf.charWidths  # code point → advance, 1/1000 em
        self.default_width = float(ttf.defaultWidth)
        self.units_per_em: int = ttf.unitsPerEm
        self.hmetrics: list[tuple[int, int]] = ttf.hmetrics  # glyph id → (advance, lsb) raw
        self.num_glyphs: int = ttf.numGlyphs
        self.ascent = float(ttf.ascent)
        self.descent = float(ttf.descent)
        self.cap_height = float(ttf.capHeight)
        self.bbox = [round(v) for v in ttf.bbox]
        self.italic_angle = float(ttf.italicAngle)
        self.stem_v = int(ttf.stemV)
        self._glyph_pos: list[int] = ttf.glyphPos
        data: bytes = ttf._ttf_data
        self._data = data
        glyf_offset, _ = ttf.get_table_pos("glyf")
        self._glyf = glyf_offset
        self._tables: dict[str, bytes] = {}
        for tag in (*_STATIC_TABLES, "head", "hhea", "maxp", "post"):
            if tag in ttf.table:
                self._tables[tag] = ttf.get_table(tag)
        self._static_sums = {
            tag: _checksum(self._tables[tag]) for tag in _STATIC_TABLES if tag in self._tables
        }
        post = self._tables.get("post", b"\0" * 32)
        # post version 3: no glyph names (the PDF maps glyphs by id and ToUnicode).
        self._post = b"\x00\x03\x00\x00" + post[4:16] + b"\0" * 16
        self._glyph_cache: dict[int, _Glyph] = {}

    def covers(self, ch: str) -> bool:
        glyph = self.glyphs.get(ord(ch), 0)
        if glyph == 0:
            return False
        if ch.isspace():
            return True
        # An empty outline for a visible character prints as a blank: count it as missing.
        pos = self._glyph_pos
        return glyph + 1 < len(pos) and pos[glyph + 1] > pos[glyph]

    def glyph(self, gid: int) -> _Glyph:
        found = self._glyph_cache.get(gid)
        if found is not None:
            return found
        start = self._glyf + self._glyph_pos[gid]
        raw = self._data[start : self._glyf + self._glyph_pos[gid + 1]]
        components: list[int] = []
        if len(raw) >= 12 and struct.unpack_from(">h", raw, 0)[0] < 0:
            pos, flags = 10, _MORE_COMPONENTS
            while flags & _MORE_COMPONENTS:
                flags, component = struct.unpack_from(">HH", raw, pos)
                components.append(component)
                pos += 4 + (4 if flags & _ARG_1_AND_2_ARE_WORDS else 2)
                if flags & _WE_HAVE_A_SCALE:
                    pos += 2
                elif flags & _WE_HAVE_AN_X_AND_Y_SCALE:
                    pos += 4
                elif flags & _WE_HAVE_A_TWO_BY_TWO:
                    pos += 8
        data = raw + b"\0" * (-len(raw) % 4)
        found = self._glyph_cache[gid] = _Glyph(data, _checksum(data), tuple(components))
        return found

    def width_of_glyph(self, gid: int) -> float:
        return self.hmetrics[gid][0] * 1000.0 / self.units_per_em

    def subset_program(self, order: Sequence[int]) -> bytes:
        """A TrueType font whose glyph ``i`` is this face's glyph ``order[i]`` (``order[0]``
        must be 0, .notdef); components of composite glyphs are appended and re-pointed."""
        order = list(order)
        new_id = {gid: i for i, gid in enumerate(order)}
        i = 0
        while i < len(order):  # the closure over composite components
            for component in self.glyph(order[i]).components:
                if component not in new_id and 0 <= component < self.num_glyphs:
                    new_id[component] = len(order)
                    order.append(component)
            i += 1
        n = len(order)
        parts: list[bytes] = []
        offsets: list[int] = []
        glyf_sum = offset = 0
        hmtx_values: list[int] = []
        for gid in order:
            glyph = self.glyph(gid)
            data, checksum = glyph.data, glyph.checksum
            if glyph.components:
                data = _renumber_components(data, new_id)
                checksum = _checksum(data)
            offsets.append(offset)
            parts.append(data)
            glyf_sum += checksum
            offset += len(data)
            hmtx_values += self.hmetrics[gid]
        offsets.append(offset)
        loca = struct.pack(f">{n + 1}L", *offsets)
        hmtx = struct.pack(f">{2 * n}H", *hmtx_values)
        hhea = bytearray(self._tables["hhea"])
        struct.pack_into(">H", hhea, 34, n)  # numberOfHMetrics
        maxp = bytearray(self._tables["maxp"])
        struct.pack_into(">H", maxp, 4, n)  # numGlyphs
        head = bytearray(self._tables["head"])
        struct.pack_into(">L", head, 8, 0)  # checkSumAdjustment, set by _assemble
        struct.pack_into(">h", head, 50, 1)  # indexToLocFormat: long offsets

        tables: dict[str, tuple[bytes, int]] = {
            tag: (self._tables[tag], self._static_sums[tag]) for tag in self._static_sums
        }
        tables["glyf"] = (b"".join(parts), glyf_sum & _MASK32)
        tables["loca"] = (loca, sum(offsets) & _MASK32)
        tables["hmtx"] = (hmtx, _checksum(hmtx))
        tables["hhea"] = (bytes(hhea), _checksum(bytes(hhea)))
        tables["maxp"] = (bytes(maxp), _checksum(bytes(maxp)))
        tables["head"] = (bytes(head), _checksum(bytes(head)))
        tables["post"] = (self._post, _checksum(self._post))
        return _assemble(tables)


def _renumber_components(data: bytes, new_id: dict[int, int]) -> bytes:
    """A composite glyph's bytes with its component glyph ids replaced by ``new_id``."""
    out = bytearray(data)
    pos, flags = 10, _MORE_COMPONENTS
    while flags & _MORE_COMPONENTS:
        flags, component = struct.unpack_from(">HH", out, pos)
        struct.pack_into(">H", out, pos + 2, new_id.get(component, 0))
        pos += 4 + (4 if flags & _ARG_1_AND_2_ARE_WORDS else 2)
        if flags & _WE_HAVE_A_SCALE:
            pos += 2
        elif flags & _WE_HAVE_AN_X_AND_Y_SCALE:
            pos += 4
        elif flags & _WE_HAVE_A_TWO_BY_TWO:
            pos += 8
    return bytes(out)


def _assemble(tables: dict[str, tuple[bytes, int]]) -> bytes:
    """An sfnt file from ``{tag: (bytes, checksum)}``, with head's checkSumAdjustment set."""
    tags = sorted(tables)
    count = len(tags)
    power = 1 << (count.bit_length() - 1)
    directory = [
        struct.pack(
            ">LHHHH", 0x00010000, count, power * 16, power.bit_length() - 1, count * 16 - power * 16
        )
    ]
    offset = 12 + 16 * count
    body: list[bytes] = []
    total = 0
    for tag in tags:
        data, checksum = tables[tag]
        directory.append(struct.pack(">4sLLL", tag.encode("latin-1"), checksum, offset, len(data)))
        padded = data + b"\0" * (-len(data) % 4)
        body.append(padded)
        offset += len(padded)
        total += checksum
    head_dir = b"".join(directory)
    total = (total + _checksum(head_dir)) & _MASK32
    adjustment = (0xB1B0AFBA - total) & _MASK32
    font = bytearray(head_dir + b"".join(body))
    head_at = struct.unpack_from(">L", head_dir, 12 + 16 * tags.index("head") + 8)[0]
    struct.pack_into(">L", font, head_at + 8, adjustment)
    return bytes(font)


# --- a font set -------------------------------------------------------------------------------


class FontSet:
    """A primary font and its fallbacks, choosing a font per character.

    Thread-safe for reading; its caches only grow (they hold text runs and widths of strings
    already drawn, which on certificates repeat a lot: headers, labels, class titles).
    """

    def __init__(self, faces: Sequence[_Face]) -> None:
        self.faces: tuple[_Face, ...] = tuple(faces)
        self._char_face: dict[str, int] = {}
        self._lock = threading.Lock()
        self.runs = functools.lru_cache(maxsize=16384)(self._runs)
        self.width = functools.lru_cache(maxsize=32768)(self._width)

    @property
    def specs(self) -> tuple[FontSpec, ...]:
        return tuple(f.spec for f in self.faces)

    def face_for(self, ch: str, text: str = "") -> int:
        """Index of the first face with a glyph for ``ch``; `MissingGlyphError` if none."""
        index = self._char_face.get(ch)
        if index is not None:
            return index
        for i, face in enumerate(self.faces):
            if face.covers(ch):
                with self._lock:
                    self._char_face[ch] = i
                return i
        raise MissingGlyphError(ch, text or ch, tuple(str(f.spec) for f in self.faces))

    def check(self, text: str) -> None:
        """Raise `MissingGlyphError` if any character of ``text`` cannot be drawn."""
        self._runs(text)

    def _runs(self, text: str) -> tuple[tuple[int, str], ...]:
        """``text`` split into maximal runs drawn with one face: ``((face index, run), …)``."""
        out: list[tuple[int, str]] = []
        start = 0
        current = -1
        face_for = self.face_for
        for i, ch in enumerate(text):
            index = face_for(ch, text)
            if index != current:
                if i > start:
                    out.append((current, text[start:i]))
                start, current = i, index
        if len(text) > start:
            out.append((current, text[start:]))
        return tuple(out)

    def _width(self, text: str, size: float) -> float:
        """Advance width of ``text`` at ``size`` points, each character in its own face."""
        total = 0.0
        faces = self.faces
        for index, run in self.runs(text):
            face = faces[index]
            widths, default = face.widths, face.default_width
            total += sum([widths.get(ord(c), default) for c in run])
        return total * size / 1000.0


_cache_lock = threading.Lock()
_cache: dict[tuple[FontSpec, tuple[FontSpec, ...]], FontSet] = {}


def load_fonts(
    primary: str | Path | FontSpec | None = None,
    fallbacks: Sequence[str | Path | FontSpec] | None = None,
) -> FontSet:
    """The `FontSet` for ``primary`` (default: the first installed of the Debian defaults) and
    ``fallbacks`` (default `DEFAULT_FALLBACKS`, those installed), parsed once per process.

    A configured primary or fallback that is missing or not embeddable raises `FontError`;
    missing *default* fallbacks are skipped (a character they would have covered then raises
    `MissingGlyphError` when drawn, naming it).
    """
    prim = FontSpec.parse(primary) if primary is not None else default_primary()
    if fallbacks is None:
        falls = tuple(s for s in DEFAULT_FALLBACKS if s.path.is_file() and s != prim)
    else:
        falls = tuple(FontSpec.parse(f) for f in fallbacks)
    key = (prim, falls)
    with _cache_lock:
        found = _cache.get(key)
        if found is None:
            found = _cache[key] = FontSet([_Face(s) for s in (prim, *falls)])
        return found


# --- embedding in one document ----------------------------------------------------------------


class _RawObject(PDFObject):  # type: ignore[misc]  # reportlab ships no types
    """Bytes already in PDF syntax (a long array formatted once, not element by element)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def format(self, document: Any) -> bytes:
        return self.data


class _FastFlate:
    """FlateDecode at zlib level 1: font programs are ~100 kB a document, and level 6 would
    cost three times the CPU for 5 % fewer bytes."""

    pdfname = "FlateDecode"

    def encode(self, data: str | bytes) -> bytes:
        return zlib.compress(data.encode("latin-1") if isinstance(data, str) else data, 1)


_FLATE: Final = _FastFlate()


def _to_unicode(mapping: Sequence[tuple[int, str]]) -> bytes:
    """A ToUnicode CMap for 2-byte glyph-id codes; destinations in UTF-16BE (surrogates too)."""
    lines = [
        "/CIDInit /ProcSet findresource begin",
        "12 dict begin",
        "begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def",
        "/CMapType 2 def",
        "1 begincodespacerange",
        "<0000> <FFFF>",
        "endcodespacerange",
    ]
    for start in range(0, len(mapping), 100):  # at most 100 entries per section
        chunk = mapping[start : start + 100]
        lines.append(f"{len(chunk)} beginbfchar")
        lines.extend(f"<{gid:04X}> <{ch.encode('utf-16-be').hex().upper()}>" for gid, ch in chunk)
        lines.append("endbfchar")
    lines += ["endcmap", "CMapName currentdict /CMap defineresource pop", "end", "end"]
    return "\n".join(lines).encode("ascii")


@dataclass(slots=True)
class _UsedFace:
    """What one document uses of one face: CID ``i`` is glyph ``gids[i]`` of the face."""

    gids: list[int] = field(default_factory=lambda: [0])  # CID 0 is .notdef
    cid_of: dict[int, int] = field(default_factory=lambda: {0: 0})  # glyph id → CID
    table: dict[int, str] = field(default_factory=dict)  # code point → chr(CID), for translate
    seen: set[str] = field(default_factory=set)
    chars: dict[int, str] = field(default_factory=dict)  # CID → first character drawn with it


class DocumentFonts:
    """The fonts of one PDF document being written with reportlab.

    `encode` turns a text run into the hex string of a ``Tj`` operand (2-byte CIDs numbered in
    order of first use in this document); `resource` names the font in the page resources.
    The object registers itself in reportlab's delayed-font list, so reportlab calls
    `addObjects` when the document is saved, after all pages are drawn — that is when each used
    face is subset and embedded as one Type 0 font.
    """

    def __init__(self, fonts: FontSet, doc: Any) -> None:
        self.fonts = fonts
        self.doc = doc
        self._used = [_UsedFace() for _ in fonts.faces]
        self._memo: dict[tuple[int, str], str] = {}
        self._registered = False

    def resource(self, index: int) -> str:
        if not self._registered:
            self.doc.delayedFonts.append(self)
            self._registered = True
        return f"/CEL{index}"

    def encode(self, index: int, run: str) -> str:
        """Hex of the 2-byte CIDs of ``run`` (every character already checked by runs)."""
        # Categories, modes, results, base names and labels repeat within a document.
        key = (index, run)
        found = self._memo.get(key)
        if found is not None:
            return found
        used = self._used[index]
        if not used.seen.issuperset(run):
            glyphs = self.fonts.faces[index].glyphs
            for ch in run:
                if ch in used.seen:
                    continue
                used.seen.add(ch)
                gid = glyphs[ord(ch)]
                cid = used.cid_of.get(gid)
                if cid is None:
                    cid = used.cid_of[gid] = len(used.gids)
                    used.gids.append(gid)
                    used.chars[cid] = ch
                used.table[ord(ch)] = chr(cid)
        found = self._memo[key] = run.translate(used.table).encode("utf-16-be").hex()
        return found

    def addObjects(self, doc: Any) -> None:  # reportlab calls it so (delayed fonts)
        font_dict = doc.idToObject["BasicFonts"].dict
        for index, used in enumerate(self._used):
            if len(used.gids) > 1:
                font_dict[f"CEL{index}"] = self._embed(doc, self.fonts.faces[index], used)

    def _embed(self, doc: Any, face: _Face, used: _UsedFace) -> Any:
        program = face.subset_program(used.gids)
        # Subset tag: six capitals derived from the glyph set (PDF 32000-1 §9.6.4).
        digest = hashlib.sha256(struct.pack(f">{len(used.gids)}H", *used.gids)).digest()
        tag = "".join(chr(65 + b % 26) for b in digest[:6])
        base = f"/{tag}+{face.ps_name}"

        def ref(obj: Any) -> str:
            reference = doc.Reference(obj)
            return str(reference.format(doc).decode("ascii"))

        # The dictionaries are written as PDF text directly: a handful of fixed keys, and
        # reportlab's generic formatter would cost more than the rest of the embedding.
        font_file = PDFStream(PDFDictionary({"Length1": len(program)}), program, [_FLATE])
        x0, y0, x1, y1 = face.bbox
        descriptor = _RawObject(
            (
                f"<< /Type /FontDescriptor /FontName {base} /Flags 4 "  # 4: symbolic
                f"/FontBBox [{x0} {y0} {x1} {y1}] /ItalicAngle {face.italic_angle:g} "
                f"/Ascent {round(face.ascent)} /Descent {round(face.descent)} "
                f"/CapHeight {round(face.cap_height)} /StemV {face.stem_v} "
                f"/FontFile2 {ref(font_file)} >>"
            ).encode("ascii")
        )
        widths = " ".join([f"{face.width_of_glyph(g):.6g}" for g in used.gids[1:]])
        cid_font = _RawObject(
            (
                f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont {base} "
                "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
                f"/FontDescriptor {ref(descriptor)} /DW 1000 /W [1 [{widths}]] "
                "/CIDToGIDMap /Identity >>"  # the subset's glyph i is CID i
            ).encode("ascii")
        )
        to_unicode = PDFStream(PDFDictionary({}), _to_unicode(sorted(used.chars.items())), [_FLATE])
        type0 = _RawObject(
            (
                f"<< /Type /Font /Subtype /Type0 /BaseFont {base} /Encoding /Identity-H "
                f"/DescendantFonts [{ref(cid_font)}] /ToUnicode {ref(to_unicode)} >>"
            ).encode("ascii")
        )
        return doc.Reference(type0)
