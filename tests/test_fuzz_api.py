"""The HTTP API under generated requests: a 4xx (or a 200 on a read route),
a JSON error naming the problem, and a sidecar that keeps serving.

One real ``torrentds sidecar`` process on 127.0.0.1 with no dataset. The
generated sources never name a real torrent (no 40-hex info-hash, no valid
magnet), so nothing is ever added and nothing is announced anywhere; a POST
that did add one would fail the test (it expects 4xx).
"""

from __future__ import annotations

import http.client
import io
import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.test_sidecar import idle_sidecar

FUZZ = settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
METHODS = ["GET", "POST", "DELETE", "PUT", "PATCH", "HEAD", "OPTIONS"]
ROUTES = ["/", "/status", "/shards", "/metrics", "/torrents", "/torrents/" + "ab" * 20]
READ_ROUTES = {("GET", "/"), ("GET", "/status"), ("GET", "/shards"), ("GET", "/metrics")}
# Header values http.client accepts (no CR/LF) and a path without spaces or controls.
header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)
path_text = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=80)
# JSON values for the body's fields; a source is never a valid magnet or info-hash.
json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=10,
)
bad_source = st.one_of(
    st.text(max_size=60).filter(lambda s: not s.startswith("magnet:") and len(s) != 40),
    st.sampled_from(
        [
            "magnet:?xt=urn:btih:zz",
            "magnet:?dn=x",
            "0" * 39,
            "g" * 40,
            "../../etc/passwd",
            "/etc/passwd",
            "inside.txt",
        ]
    ),
)
body_doc = st.dictionaries(
    st.sampled_from(
        [
            *("source", "dir", "seed_hours", "seed_ratio", "rank", "world_size", "window"),
            *("slice", "bogus"),
        ]
    ),
    json_value,
    max_size=6,
).flatmap(
    lambda doc: st.builds(
        lambda src, d: {**doc, "source": src, **({"dir": d} if d is not None else {})},
        bad_source,
        st.none() | st.text(max_size=40) | st.sampled_from(["", ".", "..", "/", "/etc", "x/../.."]),
    )
)


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, Path]]:
    base = tmp_path_factory.mktemp("fuzzapi")
    with idle_sidecar(base) as (proc, port, _):
        yield port, base
        assert proc.proc.poll() is None, "the sidecar died under fuzzing"
        status, body, _ = request(port, "GET", "/status", {"Host": f"127.0.0.1:{port}"}, None)
        assert status == 200 and json.loads(body) == {"torrents": []}, "something was added"


def request(
    port: int, method: str, target: str, headers: dict[str, str], body: bytes | None
) -> tuple[int, bytes, str]:
    """One request sent as raw bytes, exactly as given (a Content-Length that
    lies included); the write side is closed after it, so a server waiting for
    more body sees the end at once."""
    head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + b"\r\n" + (body or b""))
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    resp = http.client.HTTPResponse(_Replay(reply), method=method)  # type: ignore[arg-type]
    resp.begin()
    return resp.status, resp.read(), resp.getheader("Content-Type") or ""


class _Replay:
    """The bytes of a finished reply, as the socket ``HTTPResponse`` reads from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def makefile(self, mode: str) -> io.BytesIO:
        return io.BytesIO(self.data)


def check_answer(status: int, body: bytes, ctype: str, method: str, route: str) -> None:
    """Reads may succeed; anything else is a 4xx with a one-line JSON error."""
    assert status < 500, (method, route, status, body[:300])
    assert b"SECRET" not in body and b"INSIDE-THE-ROOT" not in body
    if status < 300:
        # "/?" and "/#x" are the route "/": the query and fragment are not the path.
        path = urlsplit(route).path
        assert (method, path) in READ_ROUTES and status == 200, (method, route, status)
        return
    assert 400 <= status < 500, (method, route, status, body[:300])
    assert ctype == "application/json", ctype
    if method != "HEAD":
        doc: Any = json.loads(body)
        assert set(doc) == {"error", "detail"} and doc["detail"], doc
        assert "\n" not in doc["detail"] and "Traceback" not in doc["detail"], doc


def still_serving(port: int) -> None:
    """The API still answers (``/`` does not wait for the engine's thread the
    way ``/status`` does; the fixture asks ``/status`` once at the end)."""
    status, body, _ = request(port, "GET", "/", {"Host": f"127.0.0.1:{port}"}, None)
    assert status == 200 and "routes" in json.loads(body)


@FUZZ
@example(  # found: "/?" is the route "/", a read
    method="GET",
    route="/?",
    query=None,
    doc=None,
    raw=None,
    ctype="application/json",
    extra={},
)
@given(
    method=st.sampled_from(METHODS),
    route=st.sampled_from(ROUTES) | path_text.map(lambda p: "/" + p),
    query=st.none() | path_text,
    doc=st.none() | body_doc,
    raw=st.none() | st.binary(max_size=300),
    ctype=st.sampled_from(["application/json", "application/json; charset=utf-8", "text/plain"])
    | header_text,
    extra=st.dictionaries(
        st.sampled_from(["Authorization", "Content-Length", "Transfer-Encoding", "Host", "X-A"]),
        header_text,
        max_size=2,
    ),
)
def test_generated_requests(
    api: tuple[int, Path],
    method: str,
    route: str,
    query: str | None,
    doc: dict[str, Any] | None,
    raw: bytes | None,
    ctype: str,
    extra: dict[str, str],
) -> None:
    port, base = api
    body = json.dumps(doc).encode() if doc is not None else raw
    headers = {"Host": f"127.0.0.1:{port}", "Content-Type": ctype}
    if body is not None:
        headers["Content-Length"] = str(len(body))
    headers.update(extra)
    target = route + (f"?{query}" if query is not None else "")
    status, answer, got_type = request(port, method, target, headers, body)
    check_answer(status, answer, got_type, method, route)
    # Nothing was created or added, wherever the request pointed.
    assert sorted(p.name for p in (base / "data").iterdir()) == ["inside.txt"]
    still_serving(port)


@FUZZ
@given(
    body=body_doc.map(lambda d: json.dumps(d).encode())
    | st.binary(max_size=300)
    | json_value.map(lambda v: json.dumps(v).encode())
)
@example(body=b'{"source": "\\u0000", "dir": ""}')  # found: a NUL reached realpath (500)
def test_generated_post_bodies(api: tuple[int, Path], body: bytes) -> None:
    """POST /torrents with every other part right: only the body varies."""
    port, base = api
    headers = {
        "Host": f"127.0.0.1:{port}",
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
    }
    status, answer, got_type = request(port, "POST", "/torrents", headers, body)
    check_answer(status, answer, got_type, "POST", "/torrents")
    assert sorted(p.name for p in (base / "data").iterdir()) == ["inside.txt"]


@FUZZ
@given(st.binary(min_size=1, max_size=600))
def test_raw_bytes_on_the_socket(api: tuple[int, Path], blob: bytes) -> None:
    """Not even HTTP: the server answers 4xx or hangs up, and keeps serving."""
    port, _ = api
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(blob + b"\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            answer = sock.recv(200)
        except ConnectionError:
            answer = b""
    if answer.startswith(b"HTTP/"):
        assert 200 <= int(answer.split(b" ", 2)[1]) < 500, answer
    elif answer:  # an HTTP/0.9 request ("GET /") gets a bare body
        assert answer.startswith(b"{"), answer
    still_serving(port)
