"""A flow through the openapi-python-client client against the real server (scripts/client-test.sh).

Typed uploads (the generated form sends `file` first), listing, info, download and a byte range
compared byte for byte, a signed link used without a token, typed error bodies, delete and usage.
Raises at the first surprise. The generated package `workspace_client` must be importable.
"""

from __future__ import annotations

import io
import os
import uuid
from typing import TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx

from workspace_client import AuthenticatedClient
from workspace_client.api.files import delete_file, download_file, get_file, list_files, upload_file
from workspace_client.api.links import create_link
from workspace_client.api.usage import get_usage
from workspace_client.models import (
    ErrorBody,
    FileInfoResponse,
    FileListResponse,
    FileSourceName,
    LinkResponse,
    ListOrder,
    ListSort,
    UploadForm,
    UsageResponse,
)
from workspace_client.types import UNSET, File, Response

T = TypeVar("T")
R = TypeVar("R")


def expect(response: Response[R], status: int, kind: type[T], what: str) -> T:
    """The parsed body of `response`, which must have `status` and be a `kind`."""
    assert response.status_code == status, f"{what}: {response.status_code} {response.content!r}"
    parsed = response.parsed
    assert isinstance(parsed, kind), f"{what}: parsed as {type(parsed).__name__}, not {kind.__name__}"
    return parsed


def env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"{name} is not set")
    return value


def main() -> None:
    base_url = env("WORKSPACE_URL")
    client = AuthenticatedClient(base_url=base_url, token=env("WORKSPACE_TOKEN"), raise_on_unexpected_status=True)
    # The download operation allows a bearer token or none (a signed link), but the generator
    # types every operation with security as needing an AuthenticatedClient (its issue #1372):
    # this one sends no Authorization header, through a plain httpx client.
    anonymous = AuthenticatedClient(base_url=base_url, token="").set_httpx_client(httpx.Client(base_url=base_url))

    # 200 KiB: above the inline threshold, so the body streams into a blob while the fields that
    # follow it in the form are still unread.
    data = bytes((i * 31 + 7) % 251 for i in range(200 * 1024))
    form = UploadForm(
        file=File(payload=io.BytesIO(data), file_name="data.bin", mime_type="application/octet-stream"),
        path="flows/data.bin",
        session_id="py-flow",
        overwrite=False,
    )
    created = upload_file.sync_detailed(client=client, body=form)
    info = expect(created, 201, FileInfoResponse, "upload")
    assert info.path == "/sessions/py-flow/flows/data.bin", info.path
    assert info.size_bytes == len(data)
    assert info.source == FileSourceName.UPLOAD
    assert created.headers["location"] == f"/api/workspace/files/{info.id}"

    # A small text file named by its filename (no path), `overwrite` as a typed boolean.
    note_form = UploadForm(
        file=File(payload=io.BytesIO(b"hello from python"), file_name="note.txt", mime_type="text/plain"),
        overwrite=True,
    )
    note = expect(upload_file.sync_detailed(client=client, body=note_form), 201, FileInfoResponse, "upload note")
    assert note.path == "/note.txt" and note.mime_type == "text/plain", note

    # The same path again without overwrite: a typed 409.
    again = UploadForm(file=File(payload=io.BytesIO(b"x"), file_name="x.bin"), path="flows/data.bin", session_id="py-flow")
    conflict = expect(upload_file.sync_detailed(client=client, body=again), 409, ErrorBody, "conflicting upload")
    assert conflict.error == "conflict" and "flows/data.bin" in conflict.message, conflict

    listed = expect(
        list_files.sync_detailed(client=client, include_all_sessions=True, sort=ListSort.SIZE, order=ListOrder.DESC),
        200,
        FileListResponse,
        "list",
    )
    assert [f.id for f in listed.files] == [info.id, note.id], listed.files
    assert listed.next_cursor is None or listed.next_cursor is UNSET

    got = expect(get_file.sync_detailed(info.id, client=client), 200, FileInfoResponse, "info")
    assert got.checksum == info.checksum

    whole = expect(download_file.sync_detailed(info.id, client=client), 200, File, "download")
    assert whole.payload.read() == data, "downloaded bytes equal the upload"
    part_response = download_file.sync_detailed(info.id, client=client, range_="bytes=70000-70099")
    part = expect(part_response, 206, File, "range")
    assert part.payload.read() == data[70000:70100], "range bytes"
    assert part_response.headers["content-range"] == f"bytes 70000-70099/{len(data)}"

    # A signed link works without a token; the same download without it is a typed 401.
    link = expect(create_link.sync_detailed(info.id, client=client, expires_in=120), 200, LinkResponse, "link")
    query = parse_qs(urlsplit(link.url).query)
    signed = download_file.sync_detailed(
        info.id, client=anonymous, w=query["w"][0], exp=int(query["exp"][0]), sig=query["sig"][0]
    )
    assert expect(signed, 200, File, "signed download").payload.read() == data
    unauthorized = expect(download_file.sync_detailed(info.id, client=anonymous), 401, ErrorBody, "no token")
    assert unauthorized.error == "unauthorized", unauthorized

    missing = expect(get_file.sync_detailed(uuid.uuid4(), client=client), 404, ErrorBody, "unknown id")
    assert missing.error == "not_found", missing

    deleted = delete_file.sync_detailed(info.id, client=client)
    assert deleted.status_code == 204, deleted
    expect(get_file.sync_detailed(info.id, client=client), 404, ErrorBody, "deleted file")

    usage = expect(get_usage.sync_detailed(client=client), 200, UsageResponse, "usage")
    assert usage.live_bytes == note.size_bytes and usage.file_count == 1, usage
    assert usage.history_bytes == len(data), "the deleted file is in the trash"
    print("python client flow: ok")


if __name__ == "__main__":
    main()
