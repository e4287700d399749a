"""Attachments through the API, on the local folder and on S3 (moto's HTTP server via the minio
SDK) alike: streamed upload with size and type checks, download after the access check, delete,
the purge of unreferenced uploads, and the audit trail."""

from __future__ import annotations

import hashlib
import io
import re
import struct
import tracemalloc
import zipfile
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import msgspec
import openpyxl
import pytest
from litestar import Litestar

from storage import attachments
from storage.objects import ObjectStore
from storage.tables import Attachment, AuditEntry, Person
from tests.s3 import ACCESS_KEY, SECRET_KEY, fresh_bucket, s3_endpoint, stored_keys  # noqa: F401
from tests.web.session import Client, sign_in
from web.app import create_app
from web.settings import load_settings

MB = 1024 * 1024
UPLOAD = "/api/v1/attachments"
GENERATED_KEY = re.compile(r"att/\d{4}/\d{2}/[0-9a-f]{32}")
CHINESE_NAME = "2024Q3新品推广会策划案_市场部_20240701.pdf"


# --- sample files, built here -----------------------------------------------------------------


def pdf_parts(size: int) -> tuple[bytes, int, bytes]:
    """A valid one-page PDF of exactly `size` bytes as (head, filler length, tail): the filler is
    the body of an unused stream object, so it can be streamed without being held."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
    ]
    head = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n"
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(head))
        head += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    offsets.append(len(head))

    def tail(filler: int) -> bytes:
        xref_at = offsets[-1] + len(b"4 0 obj\n<< /Length %010d >>\nstream\n" % filler) + filler + 18
        xref = b"xref\n0 5\n0000000000 65535 f \n" + b"".join(b"%010d 00000 n \n" % o for o in offsets)
        trailer = b"trailer\n<< /Size 5 /Root 1 0 R >>\nstartxref\n%010d\n%%%%EOF\n" % xref_at
        return b"\nendstream\nendobj\n" + xref + trailer

    fixed = len(head) + len(b"4 0 obj\n<< /Length 0000000000 >>\nstream\n") + len(tail(0))
    filler = size - fixed
    return head + b"4 0 obj\n<< /Length %010d >>\nstream\n" % filler, filler, tail(filler)


def pdf(size: int = 2048) -> bytes:
    head, filler, tail = pdf_parts(size)
    return head + b" " * filler + tail


def png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def jpeg() -> bytes:
    app0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    return b"\xff\xd8" + app0 + b"\xff\xd9"


def zip_of(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def content_types(main: str, part: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        f'<Override PartName="/{part}" ContentType="{main}"/></Types>'
    ).encode()


def docx() -> bytes:
    main = "application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
    document = (
        b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
        b"<w:body><w:p><w:r><w:t>plan</w:t></w:r></w:p></w:body></w:document>"
    )
    return zip_of(
        {
            "[Content_Types].xml": content_types(main, "word/document.xml"),
            "_rels/.rels": b"<Relationships/>",
            "word/document.xml": document,
        }
    )


def xlsx() -> bytes:
    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "quote"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def xlsm() -> bytes:
    main = "application/vnd.ms-excel.sheet.macroEnabled.main+xml"
    return zip_of({"[Content_Types].xml": content_types(main, "xl/workbook.xml"), "xl/workbook.xml": b"<x/>"})


def ole2(stream: str) -> bytes:
    """A compound file (the DOC/XLS container) whose directory holds one stream named `stream`."""
    header = bytearray(512)
    header[:8] = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
    struct.pack_into("<HHHHH", header, 0x18, 0x3E, 3, 0xFFFE, 9, 6)
    struct.pack_into("<II", header, 0x2C, 1, 1)  # one FAT sector; the directory starts at sector 1
    fat = struct.pack("<4I", 0xFFFFFFFD, 0xFFFFFFFE, 0xFFFFFFFE, 0xFFFFFFFE) + b"\xff" * 496

    def entry(name: str, kind: int) -> bytes:
        encoded = name.encode("utf-16-le")
        return encoded.ljust(64, b"\x00") + struct.pack("<HB", len(encoded) + 2, kind).ljust(64, b"\x00")

    directory = entry("Root Entry", 5) + entry(stream, 2) + bytes(256)
    return bytes(header) + fat + directory + b"\x00" * 512


def exe() -> bytes:
    return b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 54 + b"This program cannot be run in DOS mode."


HTML = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture()
async def app(db: None, backend: str, request: pytest.FixtureRequest, tmp_path: Path) -> Litestar:
    settings = msgspec.structs.replace(load_settings(), storage_path=str(tmp_path / "attachments"))
    if backend == "s3":
        settings = msgspec.structs.replace(
            settings,
            storage_backend="s3",
            s3_endpoint=request.getfixturevalue("s3_endpoint"),
            s3_access_key=ACCESS_KEY,
            s3_secret_key=SECRET_KEY,
            s3_bucket=fresh_bucket(),
        )
    return create_app(settings)


@pytest.fixture()
def client(client: Client) -> Client:
    """The shared client, reading messages in English."""
    client.cookies.set("lang", "en")
    return client


@pytest.fixture()
def other_client(other_client: Client) -> Client:
    other_client.cookies.set("lang", "en")
    return other_client


def store_of(app: Litestar) -> ObjectStore:
    store: ObjectStore = app.state.object_store
    return store


async def upload(client: Client, token: str, name: str, content: bytes) -> httpx.Response:
    """Upload as a browser would; the declared type is always PDF, to show it is not believed."""
    return await client.post(
        UPLOAD, files={"file": (name, content, "application/pdf")}, headers={"x-csrftoken": token}
    )


async def uploaded(client: Client, token: str, name: str = "plan.pdf", content: bytes | None = None) -> str:
    response = await upload(client, token, name, pdf() if content is None else content)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def person_id(employee_no: str) -> int:
    row = await Person.select(Person.id).where(Person.employee_no == employee_no).first()
    return int(row["id"])


async def audit_trail() -> list[dict[str, Any]]:
    rows = (
        await AuditEntry.select()
        .where(AuditEntry.action.like("attachment.%"))
        .order_by(AuditEntry.id)
        .output(load_json=True)
    )
    return list(rows)


async def issue_token(client: Client, username: str) -> str:
    response = await client.post("/api/v1/auth/token", json={"username": username, "password": "formflow"})
    assert response.status_code == 201, response.text
    return str(response.json()["token"])


# --- upload: size --------------------------------------------------------------------------------


async def test_a_9_9_mb_pdf_is_accepted_under_a_generated_key(app: Litestar, client: Client) -> None:
    token = await sign_in(client, "e1001")
    content = pdf(int(9.9 * MB))
    response = await upload(client, token, "plan.pdf", content)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body == {
        "id": body["id"],
        "name": "plan.pdf",
        "size": len(content),
        "content_type": "application/pdf",
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    row = await Attachment.select().where(Attachment.uid == body["id"]).first()
    assert row["uploader"] == await person_id("e1001")
    assert row["instance_id"] is None
    assert GENERATED_KEY.fullmatch(row["object_key"])
    assert stored_keys(store_of(app)) == [row["object_key"]]


async def test_a_10_1_mb_pdf_is_refused_with_413_and_nothing_is_left(app: Litestar, client: Client) -> None:
    token = await sign_in(client, "e1001")
    response = await upload(client, token, "plan.pdf", pdf(int(10.1 * MB)))
    assert response.status_code == 413
    assert response.json()["detail"] == "The file is larger than 10 MB; nothing was stored."
    assert stored_keys(store_of(app)) == []
    assert await Attachment.count() == 0
    assert await audit_trail() == []


async def multipart_stream(boundary: str, name: str, size: int) -> AsyncIterator[bytes]:
    """A multipart body carrying a PDF of `size` bytes, made 64 KiB at a time."""
    head, filler, tail = pdf_parts(size)
    yield (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
        f"Content-Type: application/pdf\r\n\r\n"
    ).encode() + head
    for start in range(0, filler, 64 * 1024):
        yield b" " * min(64 * 1024, filler - start)
    yield tail + f"\r\n--{boundary}--\r\n".encode()


async def streamed_upload(app: Litestar, token: str, size: int) -> httpx.Response:
    """Upload without a Content-Length (chunked), the body produced while it is sent."""
    boundary = "formflow-test-boundary"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://testserver.local"
    ) as raw:
        return await raw.post(
            UPLOAD,
            content=multipart_stream(boundary, "big.pdf", size),
            headers={
                "authorization": f"Bearer {token}",
                "content-type": f"multipart/form-data; boundary={boundary}",
            },
        )


async def test_the_limit_holds_while_streaming_a_body_of_unknown_length(
    app: Litestar, client: Client
) -> None:
    token = await issue_token(client, "e1001")
    response = await streamed_upload(app, token, int(10.1 * MB))
    assert response.status_code == 413
    assert "larger than 10 MB" in response.json()["detail"]
    assert stored_keys(store_of(app)) == []
    assert await Attachment.count() == 0


async def test_uploading_10_mb_takes_far_less_memory_than_the_file(app: Litestar, client: Client) -> None:
    token = await issue_token(client, "e1001")
    warm_up = await streamed_upload(app, token, 100 * 1024)  # imports, connections, caches
    assert warm_up.status_code == 201, warm_up.text
    tracemalloc.start()
    try:
        response = await streamed_upload(app, token, 10 * MB)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 201, response.text
    assert response.json()["size"] == 10 * MB
    assert peak < 1 * MB, f"peak {peak / MB:.1f} MB while uploading a 10 MB file"


# --- upload: type by content, name ------------------------------------------------------------------

ACCEPTED = [
    ("plan.pdf", pdf(), "application/pdf"),
    ("contract-scan.JPG", jpeg(), "image/jpeg"),
    ("site-photo.png", png(), "image/png"),
    ("proposal.docx", docx(), "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ("quote.xlsx", xlsx(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("legacy.doc", ole2("WordDocument"), "application/msword"),
    ("legacy.xls", ole2("Workbook"), "application/vnd.ms-excel"),
    (
        "saved-as-old-name.doc",
        docx(),
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ),
]


@pytest.mark.parametrize(("name", "content", "content_type"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
async def test_allowed_kinds_are_told_by_their_content(
    client: Client, name: str, content: bytes, content_type: str
) -> None:
    token = await sign_in(client, "e1001")
    response = await upload(client, token, name, content)
    assert response.status_code == 201, response.text
    assert response.json()["content_type"] == content_type


ONLY = "Only these kinds of file are accepted: PDF, DOC, DOCX, XLS, XLSX, JPEG, PNG."
REFUSED = [
    ("exe renamed .pdf", "invoice.pdf", exe(), ONLY),
    ("zip renamed .docx", "plan.docx", zip_of({"readme.txt": b"hello"}), ONLY),
    ("HTML named .pdf", "plan.pdf", HTML, ONLY),
    ("OLE2 without a Word stream", "setup.doc", ole2("SummaryInformation"), ONLY),
    ("macro-enabled workbook named .xlsx", "quote.xlsx", xlsm(), ONLY),
    ("an .exe name", "tool.exe", exe(), ONLY),
    ("no extension", "plan", pdf(), ONLY),
    (
        "PDF named .xlsx",
        "quote.xlsx",
        pdf(),
        "The name quote.xlsx does not fit the file's content, which is PDF",
    ),
    ("PNG named .jpg", "photo.jpg", png(), "which is PNG: name it *.png."),
]


@pytest.mark.parametrize(
    ("name", "content", "message"), [r[1:] for r in REFUSED], ids=[r[0] for r in REFUSED]
)
async def test_disguised_files_are_refused_with_415(
    app: Litestar, client: Client, name: str, content: bytes, message: str
) -> None:
    token = await sign_in(client, "e1001")
    response = await upload(client, token, name, content)
    assert response.status_code == 415, response.text
    assert message in response.json()["detail"]
    assert stored_keys(store_of(app)) == []
    assert await Attachment.count() == 0


async def test_a_path_in_the_name_is_dropped_and_the_key_is_generated(app: Litestar, client: Client) -> None:
    token = await sign_in(client, "e1001")
    response = await upload(client, token, "../../etc/passwd.pdf", pdf())
    assert response.status_code == 201, response.text
    assert response.json()["name"] == "passwd.pdf"
    [key] = stored_keys(store_of(app))
    assert GENERATED_KEY.fullmatch(key)
    assert "passwd" not in key


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("C:\\Users\\zhang\\报价单.pdf", "报价单.pdf"),
        ("invoice\u202efdp.pdf", "invoicefdp.pdf"),  # no right-to-left override
        ("  plan\t\tfinal .pdf ", "plan final .pdf"),
        ("e\u0301te\u0301.pdf", "\u00e9t\u00e9.pdf"),  # NFC
        ("a" * 300 + ".pdf", "a" * 251 + ".pdf"),
    ],
)
def test_names_are_normalised_for_display(raw: str, shown: str) -> None:
    assert attachments.normalise_name(raw) == shown


# --- upload: request shape and CSRF -------------------------------------------------------------


async def test_a_cookie_session_must_send_the_csrf_token_in_the_header(app: Litestar, client: Client) -> None:
    token = await sign_in(client, "e1001")
    response = await client.post(UPLOAD, files={"file": ("plan.pdf", pdf())}, data={"_csrf_token": token})
    assert response.status_code == 403
    assert "x-csrftoken header" in response.json()["detail"]
    no_token = await client.post(UPLOAD, files={"file": ("plan.pdf", pdf())})
    assert no_token.status_code == 403
    assert stored_keys(store_of(app)) == []


async def test_a_bearer_token_needs_no_csrf_token(client: Client, other_client: Client) -> None:
    token = await issue_token(client, "e1001")
    response = await other_client.post(
        UPLOAD, files={"file": ("plan.pdf", pdf())}, headers={"authorization": f"Bearer {token}"}
    )
    assert response.status_code == 201, response.text


async def test_a_form_without_a_file_part_is_a_bad_request(client: Client) -> None:
    token = await sign_in(client, "e1001")
    response = await client.post(
        UPLOAD, files={"attachment": ("plan.pdf", pdf())}, headers={"x-csrftoken": token}
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "The form has no `file` part."


async def test_a_json_body_is_not_an_upload(client: Client) -> None:
    token = await sign_in(client, "e1001")
    response = await client.post(UPLOAD, json={"file": "x"}, headers={"x-csrftoken": token})
    assert response.status_code == 415
    assert "multipart/form-data" in response.json()["detail"]


# --- download --------------------------------------------------------------------------------------


async def fetch(client: Client, backend: str, uid: str) -> httpx.Response:
    """Download as a browser would: follow S3's redirect to the presigned URL."""
    response = await client.get(f"{UPLOAD}/{uid}", follow_redirects=False)
    if backend == "local":
        return response
    assert response.status_code == 307, response.text
    async with httpx.AsyncClient() as http:
        return await http.get(response.headers["location"])


async def test_the_uploader_downloads_the_same_bytes(client: Client, backend: str) -> None:
    token = await sign_in(client, "e1001")
    content = pdf(300 * 1024)
    uid = await uploaded(client, token, content=content)
    response = await fetch(client, backend, uid)
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"].startswith("application/pdf")


async def test_s3_answers_with_a_short_lived_presigned_url(client: Client, backend: str) -> None:
    token = await sign_in(client, "e1001")
    uid = await uploaded(client, token)
    response = await client.get(f"{UPLOAD}/{uid}", follow_redirects=False)
    if backend == "local":
        assert response.status_code == 200, "the local folder streams"
        return
    assert response.status_code == 307
    assert "X-Amz-Expires=300" in response.headers["location"]
    assert response.headers["cache-control"] == "private, no-store"
    await Attachment.update({Attachment.sensitive: True}, force=True)
    sensitive = await client.get(f"{UPLOAD}/{uid}", follow_redirects=False)
    assert "X-Amz-Expires=60" in sensitive.headers["location"]


async def test_a_chinese_name_downloads_with_rfc_5987_content_disposition(
    client: Client, backend: str
) -> None:
    token = await sign_in(client, "e1001")
    uid = await uploaded(client, token, name=CHINESE_NAME)
    response = await fetch(client, backend, uid)
    assert response.status_code == 200
    disposition = response.headers["content-disposition"]
    assert disposition.startswith('attachment; filename="2024Q3_20240701.pdf"; ')
    encoded = disposition.split("filename*=UTF-8''")[1]
    assert unquote(encoded, encoding="utf-8") == CHINESE_NAME
    assert encoded.isascii()


async def test_images_open_inline_and_nothing_is_sniffed(client: Client, backend: str) -> None:
    token = await sign_in(client, "e1001")
    uid = await uploaded(client, token, name="site-photo.png", content=png())
    direct = await client.get(f"{UPLOAD}/{uid}", follow_redirects=False)
    assert direct.headers["x-content-type-options"] == "nosniff"
    response = await fetch(client, backend, uid)
    assert response.headers["content-disposition"].startswith('inline; filename="site-photo.png"')
    assert response.headers["content-type"] == "image/png"


async def test_another_employee_gets_403_and_no_url(client: Client, other_client: Client) -> None:
    token = await sign_in(client, "e1001")
    uid = await uploaded(client, token)
    await sign_in(other_client, "e1002")
    response = await other_client.get(f"{UPLOAD}/{uid}", follow_redirects=False)
    assert response.status_code == 403
    assert response.json()["detail"] == "You may not download this attachment."
    assert "location" not in response.headers
    assert [e["action"] for e in await audit_trail()] == ["attachment.uploaded"]


async def test_an_admin_may_download_any_upload(client: Client, other_client: Client, backend: str) -> None:
    token = await sign_in(client, "e1001")
    uid = await uploaded(client, token)
    await sign_in(other_client, "admin")
    response = await other_client.get(f"{UPLOAD}/{uid}", follow_redirects=False)
    assert response.status_code == (307 if backend == "s3" else 200)


@pytest.mark.parametrize("uid", ["0" * 32, "not-a-uid", "../../etc/passwd"])
async def test_unknown_attachments_are_not_found(client: Client, uid: str) -> None:
    await sign_in(client, "e1001")
    response = await client.get(f"{UPLOAD}/{uid}", follow_redirects=False)
    assert response.status_code == 404


# --- delete, link, purge ------------------------------------------------------------------------


async def test_the_uploader_deletes_an_unlinked_upload(app: Litestar, client: Client) -> None:
    token = await sign_in(client, "e1001")
    uid = await uploaded(client, token)
    response = await client.delete(f"{UPLOAD}/{uid}", headers={"x-csrftoken": token})
    assert response.status_code == 204
    assert stored_keys(store_of(app)) == []
    assert await Attachment.count() == 0
    again = await client.get(f"{UPLOAD}/{uid}")
    assert again.status_code == 404


async def test_nobody_else_deletes_it(app: Litestar, client: Client, other_client: Client) -> None:
    token = await sign_in(client, "e1001")
    uid = await uploaded(client, token)
    for who in ("e1002", "admin"):
        other_token = await sign_in(other_client, who)
        response = await other_client.delete(f"{UPLOAD}/{uid}", headers={"x-csrftoken": other_token})
        assert response.status_code == 403
    assert len(stored_keys(store_of(app))) == 1


async def test_a_linked_upload_cannot_be_deleted(app: Litestar, client: Client) -> None:
    token = await sign_in(client, "e1001")
    uid = await uploaded(client, token)
    await attachments.link([uid], instance_id=42, owner_id=await person_id("e1001"), now=datetime.now(UTC))
    response = await client.delete(f"{UPLOAD}/{uid}", headers={"x-csrftoken": token})
    assert response.status_code == 409
    assert "can no longer be changed" in response.json()["detail"]
    assert len(stored_keys(store_of(app))) == 1


async def test_linking_checks_owner_and_instance(client: Client) -> None:
    token = await sign_in(client, "e1001")
    uid = await uploaded(client, token)
    owner = await person_id("e1001")
    now = datetime.now(UTC)
    with pytest.raises(attachments.AttachmentNotFound):
        await attachments.link([uid], instance_id=1, owner_id=await person_id("e1002"), now=now)
    await attachments.link([uid], instance_id=1, owner_id=owner, now=now)
    await attachments.link([uid], instance_id=1, owner_id=owner, now=now)  # again: harmless
    with pytest.raises(attachments.AttachmentLinked):
        await attachments.link([uid], instance_id=2, owner_id=owner, now=now)
    row = await Attachment.select().where(Attachment.uid == uid).first()
    assert row["instance_id"] == 1 and row["linked_at"] is not None


async def test_unreferenced_uploads_older_than_a_day_are_purged(app: Litestar, client: Client) -> None:
    token = await sign_in(client, "e1001")
    old, fresh, linked = [await uploaded(client, token) for _ in range(3)]
    now = datetime.now(UTC)
    await Attachment.update({Attachment.created_at: now - timedelta(days=2)}).where(
        Attachment.uid.is_in([old, linked])
    )
    await attachments.link([linked], instance_id=7, owner_id=await person_id("e1001"), now=now)
    assert await attachments.purge_unreferenced(store_of(app), now) == 1
    remaining = await Attachment.select(Attachment.uid, Attachment.object_key).order_by(Attachment.uid)
    assert sorted(r["uid"] for r in remaining) == sorted([fresh, linked])
    assert stored_keys(store_of(app)) == sorted(r["object_key"] for r in remaining)
    [purged] = [e for e in await audit_trail() if e["action"] == "attachment.purged"]
    assert purged["target_id"] == old and purged["actor_name"] == "formflow scheduler"


# --- audit ------------------------------------------------------------------------------------------


async def test_upload_download_and_delete_are_audited(client: Client, backend: str) -> None:
    token = await sign_in(client, "e1001")
    content = pdf()
    uid = await uploaded(client, token, content=content)
    await client.get(f"{UPLOAD}/{uid}", follow_redirects=False)
    await client.delete(f"{UPLOAD}/{uid}", headers={"x-csrftoken": token})
    uploader = await person_id("e1001")
    trail = await audit_trail()
    assert [(e["action"], e["actor_id"], e["target_type"], e["target_id"]) for e in trail] == [
        ("attachment.uploaded", uploader, "attachment", uid),
        ("attachment.downloaded", uploader, "attachment", uid),
        ("attachment.deleted", uploader, "attachment", uid),
    ]
    view = {
        "name": "plan.pdf",
        "size": len(content),
        "content_type": "application/pdf",
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    assert trail[0]["after"] == view
    assert trail[1]["after"] == {"name": "plan.pdf", "via": "redirect" if backend == "s3" else "stream"}
    assert trail[2]["before"] == view
