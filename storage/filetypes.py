"""A file's type told from its content (magic bytes), never from its name or the browser's word.

`sniff(file)` recognises the kinds attachments may have and returns None for anything else:

    kind   how it is recognised
    PDF    starts with `%PDF-`
    JPEG   starts with FF D8 FF
    PNG    starts with the 8-byte PNG signature
    DOC    an OLE2 compound file (D0 CF 11 E0 ...) holding a `WordDocument` stream
    XLS    an OLE2 compound file holding a `Workbook` (Excel 97+) or `Book` (Excel 5) stream
    DOCX   a zip whose `[Content_Types].xml` declares a Word main document and that has `word/` parts
    XLSX   a zip whose `[Content_Types].xml` declares an Excel workbook and that has `xl/` parts

So a plain zip renamed .docx, an .msi renamed .doc, a macro-enabled .xlsm and an HTML page
named .pdf are all unknown. The file must be seekable (the zip directory sits at its end);
reading it is blocking, so callers on the event loop run `sniff` in a worker thread.
"""

from __future__ import annotations

import enum
import struct
import zipfile
from typing import BinaryIO


class FileKind(enum.StrEnum):
    PDF = "pdf"
    DOC = "doc"
    DOCX = "docx"
    XLS = "xls"
    XLSX = "xlsx"
    JPEG = "jpeg"
    PNG = "png"


CONTENT_TYPES: dict[FileKind, str] = {
    FileKind.PDF: "application/pdf",
    FileKind.DOC: "application/msword",
    FileKind.DOCX: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    FileKind.XLS: "application/vnd.ms-excel",
    FileKind.XLSX: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    FileKind.JPEG: "image/jpeg",
    FileKind.PNG: "image/png",
}

_WORD = frozenset({".doc", ".docx"})
_EXCEL = frozenset({".xls", ".xlsx"})

# The file-name extensions (lower case) a kind may carry: those of its family, so a DOCX saved
# as .doc still passes (Word opens either), while a PDF named .xlsx does not.
EXTENSIONS: dict[FileKind, frozenset[str]] = {
    FileKind.PDF: frozenset({".pdf"}),
    FileKind.DOC: _WORD,
    FileKind.DOCX: _WORD,
    FileKind.XLS: _EXCEL,
    FileKind.XLSX: _EXCEL,
    FileKind.JPEG: frozenset({".jpg", ".jpeg"}),
    FileKind.PNG: frozenset({".png"}),
}

IMAGES = frozenset({FileKind.JPEG, FileKind.PNG})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_OLE2_SIGNATURE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ZIP_SIGNATURE = b"PK\x03\x04"

_OOXML_MAIN_TYPES: dict[bytes, tuple[FileKind, str]] = {
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml": (
        FileKind.DOCX,
        "word/",
    ),
    b"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml": (FileKind.XLSX, "xl/"),
}
_MAX_CONTENT_TYPES_SIZE = 1024 * 1024  # uncompressed; a real one is a few KB (zip-bomb guard)

# OLE2 directory entries are 128 bytes, aligned to 128 in the file (sectors are 512 or 4096
# bytes after a header of the same size): a UTF-16LE name in 64 bytes, its byte length with the
# terminating NUL at +64, the entry type at +66 (2 = stream).
_OLE_STREAMS: dict[str, FileKind] = {
    "WordDocument": FileKind.DOC,
    "Workbook": FileKind.XLS,
    "Book": FileKind.XLS,
}
_OLE_ENTRY = 128
_OLE_STREAM_TYPE = 2
_SCAN_BLOCK = 1024 * 1024


def sniff(file: BinaryIO) -> FileKind | None:
    """The kind of the file's content, or None when it is none of the known kinds."""
    file.seek(0)
    head = file.read(8)
    if head.startswith(b"%PDF-"):
        return FileKind.PDF
    if head.startswith(b"\xff\xd8\xff"):
        return FileKind.JPEG
    if head == _PNG_SIGNATURE:
        return FileKind.PNG
    if head == _OLE2_SIGNATURE:
        return _ole2_kind(file)
    if head.startswith(_ZIP_SIGNATURE):
        return _ooxml_kind(file)
    return None


def _ooxml_kind(file: BinaryIO) -> FileKind | None:
    try:
        with zipfile.ZipFile(file) as archive:
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size > _MAX_CONTENT_TYPES_SIZE:
                return None
            declared = archive.read(info)
            names = archive.namelist()
    except (zipfile.BadZipFile, KeyError, OSError, EOFError, NotImplementedError, RuntimeError):
        return None
    for main_type, (kind, folder) in _OOXML_MAIN_TYPES.items():
        if main_type in declared and any(name.startswith(folder) for name in names):
            return kind
    return None


def _ole2_kind(file: BinaryIO) -> FileKind | None:
    """Find a Word or Excel stream among the compound file's directory entries."""
    needles = {name.encode("utf-16-le"): kind for name, kind in _OLE_STREAMS.items()}
    offset = 0
    carry = b""
    file.seek(0)
    while block := file.read(_SCAN_BLOCK):
        data = carry + block
        base = offset - len(carry)
        for needle, kind in needles.items():
            start = data.find(needle)
            while start != -1:
                if (base + start) % _OLE_ENTRY == 0 and _is_stream_entry(data, start, len(needle)):
                    return kind
                start = data.find(needle, start + 1)
        offset += len(block)
        carry = data[-_OLE_ENTRY:]
    return None


def _is_stream_entry(data: bytes, start: int, name_bytes: int) -> bool:
    entry = data[start : start + _OLE_ENTRY]
    if len(entry) < 68:
        return False
    name_length, entry_type = struct.unpack_from("<HB", entry, 64)
    return name_length == name_bytes + 2 and entry_type == _OLE_STREAM_TYPE
