"""Typed msgspec views of the HAR fields etagwatch reads; everything else is skipped in C.

Decoding into these structs is the fast path; entries with unexpected types fall back to a
lenient conversion in analysis.readers.har.
"""

from __future__ import annotations

from typing import Any

import msgspec


class NameValue(msgspec.Struct):
    name: str = ""
    value: str = ""


class Content(msgspec.Struct):
    size: int | None = None
    text: str | None = None
    encoding: str | None = None
    mimeType: str | None = None


class Request(msgspec.Struct):
    method: str = ""
    url: str = ""
    httpVersion: str = ""
    headers: list[NameValue] = []
    cookies: list[NameValue] = []
    postData: Any = None


class Response(msgspec.Struct):
    status: int | None = None
    httpVersion: str = ""
    headers: list[NameValue] = []
    cookies: list[NameValue] = []
    content: Content | None = None
    bodySize: int | None = None
    error: str | None = msgspec.field(default=None, name="_error")


class Timings(msgspec.Struct):
    send: float | None = None
    wait: float | None = None
    receive: float | None = None


class Entry(msgspec.Struct):
    startedDateTime: str | None = None
    pageref: str | None = None
    request: Request | None = None
    response: Response | None = None
    serverIPAddress: str | None = None
    time: float | None = None
    timings: Timings | None = None
    fromCache: str | None = msgspec.field(default=None, name="_fromCache")
    fetchType: str | None = msgspec.field(default=None, name="_fetchType")
    error: str | None = msgspec.field(default=None, name="_error")


class Page(msgspec.Struct):
    id: Any = None
    title: Any = None
