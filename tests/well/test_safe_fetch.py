from __future__ import annotations

import hashlib
import time
from urllib.parse import quote, unquote

import pytest

from sandbox.server import serve_in_thread
from well import safe_fetch
from well.safe_fetch import DownloadFailed, FileTooLarge, UnsafeURL, fetch_file

PDF = b"%PDF-1.4\n" + b"x" * 5000 + b"\n%%EOF\n"
LOCAL = ["127.0.0.1"]


def app(environ, start_response):
    """A tiny download server with one route per hostile behaviour."""
    path = environ["PATH_INFO"]
    query = environ.get("QUERY_STRING", "")
    if path == "/ok.pdf":
        start_response("200 OK", [("Content-Type", "application/pdf")])
        return [PDF]
    if path == "/host":
        body = environ.get("HTTP_HOST", "").encode()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [body]
    if path == "/declared-big":
        start_response("200 OK", [("Content-Length", str(50 * 1024 * 1024))])
        return [b"x" * 1024]
    if path == "/streamed-big":
        start_response("200 OK", [("Content-Type", "application/pdf")])
        return (b"y" * 65536 for _ in range(400))
    if path == "/slow-body":
        start_response("200 OK", [("Content-Type", "application/pdf")])

        def trickle():
            for _ in range(100):
                time.sleep(0.1)
                yield b"z"

        return trickle()
    if path == "/slow-headers":
        time.sleep(5)
        start_response("200 OK", [])
        return [b"late"]
    if path == "/to-ok":
        start_response("302 Found", [("Location", "/ok.pdf")])
        return [b""]
    if path == "/to-metadata":
        start_response("302 Found", [("Location", "http://169.254.169.254/latest/meta-data/")])
        return [b""]
    if path == "/to-elsewhere":
        start_response("302 Found", [("Location", "https://evil.example/steal")])
        return [b""]
    if path == "/to":  # a redirect to whatever the query says
        start_response("302 Found", [("Location", unquote(query))])
        return [b""]
    if path == "/loop":
        n = int(query or "0")
        start_response("302 Found", [("Location", f"/loop?{n + 1}")])
        return [b""]
    if path == "/expired":
        start_response("403 Forbidden", [])
        return [b"<Error>Request has expired</Error>"]
    if path == "/broken":
        start_response("500 Internal Server Error", [])
        return [b"oops"]
    start_response("404 Not Found", [])
    return [b""]


@pytest.fixture(scope="module")
def server():
    running = serve_in_thread(app)
    yield running
    running.stop()


def local_fetch(url: str, **kwargs):
    kwargs.setdefault("allowed_hosts", LOCAL)
    kwargs.setdefault("allow_loopback_for_tests", True)
    kwargs.setdefault("timeout", 5.0)
    return fetch_file(url, **kwargs)


def test_a_file_from_an_allowed_host_is_downloaded_with_its_hash(server):
    fetched = local_fetch(f"{server.base_url}/ok.pdf")
    assert fetched.content == PDF
    assert fetched.content_type == "application/pdf"
    assert fetched.sha256 == hashlib.sha256(PDF).hexdigest()
    assert fetched.final_url == f"{server.base_url}/ok.pdf"


def test_loopback_is_refused_unless_explicitly_allowed(server, settings):
    settings.WELL_ALLOW_LOOPBACK_DOWNLOADS = False
    with pytest.raises(UnsafeURL, match="unusual port"):
        fetch_file(f"{server.base_url}/ok.pdf", allowed_hosts=LOCAL)
    with pytest.raises(UnsafeURL, match="this server itself"):
        fetch_file("http://127.0.0.1/ok.pdf", allowed_hosts=LOCAL)


def test_the_loopback_setting_enables_the_local_sandbox_on_its_own_port(server, settings):
    settings.WELL_ALLOW_LOOPBACK_DOWNLOADS = True
    port = int(server.base_url.rsplit(":", 1)[1])
    fetched = fetch_file(
        f"{server.base_url}/ok.pdf", allowed_hosts=LOCAL, timeout=5, allowed_ports=(80, 443, port)
    )
    assert fetched.content == PDF


def test_the_loopback_setting_does_not_lift_the_port_check(server, settings):
    # Issue 19: in the demo a hostile link reached another local service's port.
    settings.WELL_ALLOW_LOOPBACK_DOWNLOADS = True
    with pytest.raises(UnsafeURL, match="unusual port"):
        fetch_file(f"{server.base_url}/ok.pdf", allowed_hosts=LOCAL, timeout=5)


def test_a_declared_oversized_file_is_refused_before_reading(server):
    started = time.monotonic()
    with pytest.raises(FileTooLarge, match=r"50\.0 MB") as caught:
        local_fetch(f"{server.base_url}/declared-big")
    assert caught.value.permanent is True
    assert time.monotonic() - started < 2


def test_a_streamed_oversized_file_is_cut_off_at_the_limit(server):
    with pytest.raises(FileTooLarge, match="larger than 10 MB"):
        local_fetch(f"{server.base_url}/streamed-big")
    with pytest.raises(FileTooLarge):
        local_fetch(f"{server.base_url}/ok.pdf", max_bytes=1000)


def test_a_trickling_server_is_stopped_at_the_overall_deadline(server):
    started = time.monotonic()
    with pytest.raises(DownloadFailed, match="took too long") as caught:
        local_fetch(f"{server.base_url}/slow-body", timeout=1.0)
    assert caught.value.permanent is False
    assert time.monotonic() - started < 3


def test_a_server_that_never_answers_is_stopped_at_the_deadline(server):
    started = time.monotonic()
    with pytest.raises(DownloadFailed):
        local_fetch(f"{server.base_url}/slow-headers", timeout=1.0)
    assert time.monotonic() - started < 3


def test_a_redirect_to_an_allowed_public_location_is_followed(server):
    fetched = local_fetch(f"{server.base_url}/to-ok")
    assert fetched.content == PDF
    assert fetched.final_url.endswith("/ok.pdf")


def test_a_redirect_to_the_metadata_service_is_refused(server):
    with pytest.raises(UnsafeURL):
        local_fetch(f"{server.base_url}/to-metadata", allowed_hosts=[*LOCAL, "169.254.169.254"])


def test_a_redirect_to_a_host_off_the_allow_list_is_refused(server):
    with pytest.raises(UnsafeURL, match=r"evil\.example"):
        local_fetch(f"{server.base_url}/to-elsewhere")


def test_redirects_stop_after_three(server):
    with pytest.raises(UnsafeURL, match="more than 3"):
        local_fetch(f"{server.base_url}/loop")


def test_an_expired_link_asks_for_a_fresh_one(server):
    with pytest.raises(DownloadFailed, match="fresh link") as caught:
        local_fetch(f"{server.base_url}/expired")
    assert caught.value.status == 403
    assert caught.value.permanent is False


def test_a_server_error_is_transient(server):
    with pytest.raises(DownloadFailed) as caught:
        local_fetch(f"{server.base_url}/broken")
    assert caught.value.status == 500
    assert caught.value.permanent is False


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(server):
    # "files.intuit.test" exists only in our resolver: a second, system lookup would fail, and
    # a rebinding DNS could not swap the address between check and connect.
    port = int(server.base_url.rsplit(":", 1)[1])
    lookups: list[str] = []

    def resolver(host, _port):
        lookups.append(host)
        return ["127.0.0.1"]

    fetched = fetch_file(
        f"http://files.intuit.test:{port}/host",
        allowed_hosts=[".intuit.test"],
        allow_loopback_for_tests=True,
        resolver=resolver,
        timeout=5,
    )
    assert fetched.content == f"files.intuit.test:{port}".encode()
    assert lookups == ["files.intuit.test"]


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["10.0.0.5"], "private network"),
        (["192.168.1.10"], "private network"),
        (["172.16.3.4"], "private network"),
        (["127.0.0.1"], "this server itself"),
        (["::1"], "this server itself"),
        (["169.254.169.254"], "cloud metadata"),
        (["169.254.10.10"], "link-local"),
        (["fd00:ec2::254"], "cloud metadata"),
        (["100.100.100.200"], "cloud metadata"),
        (["100.64.1.1"], "not on the public internet"),
        (["0.0.0.0"], "reserved|private"),
        (["224.0.0.1"], "multicast"),
        (["fe80::1"], "link-local"),
        (["fc00::1"], "private"),
        (["::ffff:169.254.169.254"], "cloud metadata"),
        (["::ffff:10.1.2.3"], "private network"),
        (["64:ff9b::a9fe:a9fe"], "cloud metadata"),
        (["2002:a00:1::"], "private network"),
        (["93.184.216.34", "10.0.0.1"], "private network"),
        (["240.0.0.1"], "reserved|not on the public"),
    ],
)
def test_hosts_resolving_to_internal_addresses_are_refused(monkeypatch, addresses, reason):
    monkeypatch.setattr(safe_fetch, "resolve", lambda host, port: addresses)

    def no_connect(*args, **kwargs):
        raise AssertionError("must not connect")

    monkeypatch.setattr(safe_fetch, "_connect", no_connect)
    with pytest.raises(UnsafeURL, match=reason) as caught:
        fetch_file("https://files.intuit.com/a.pdf", allowed_hosts=[".intuit.com"])
    assert "not a public address" in str(caught.value)


def test_loopback_permission_never_opens_private_or_metadata_addresses(monkeypatch):
    monkeypatch.setattr(safe_fetch, "resolve", lambda host, port: ["169.254.169.254"])
    with pytest.raises(UnsafeURL, match="metadata"):
        fetch_file(
            "https://files.intuit.com/a.pdf",
            allowed_hosts=[".intuit.com"],
            allow_loopback_for_tests=True,
        )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("file:///etc/passwd", "scheme"),
        ("ftp://files.intuit.com/a.pdf", "scheme"),
        ("gopher://files.intuit.com/", "scheme"),
        ("javascript:alert(1)", "scheme"),
        ("https://user:pw@files.intuit.com/a.pdf", "user name or password"),
        ("https://files.intuit.com@evil.example/a.pdf", "user name or password"),
        ("https://evil.example/a.pdf", "not a known QuickBooks download host"),
        ("https://intuit.com.evil.example/a.pdf", "not a known"),
        ("https://evilintuit.com/a.pdf", "not a known"),
        ("https://169.254.169.254/latest/meta-data/", "not a known"),
        ("https://files.intuit.com:8443/a.pdf", "unusual port"),
        ("https:///a.pdf", "no host"),
        ("http://[::1", "malformed"),
    ],
)
def test_unsafe_links_are_refused_before_any_lookup(monkeypatch, url, reason):
    def no_lookup(host, port):
        raise AssertionError("must not resolve")

    monkeypatch.setattr(safe_fetch, "resolve", no_lookup)
    with pytest.raises(UnsafeURL, match=reason):
        fetch_file(url, allowed_hosts=[".intuit.com"])


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("files.intuit.com", True),
        ("a.b.intuit.com", True),
        ("FILES.INTUIT.COM.", True),
        ("intuit.com", False),
        ("evilintuit.com", False),
        ("intuit.com.evil.example", False),
        ("bucket.s3.amazonaws.com", True),
        ("127.0.0.1", True),
        ("127.0.0.2", False),
    ],
)
def test_allow_list_matching(host, allowed):
    assert safe_fetch.host_allowed(host, [".intuit.com", ".amazonaws.com", "127.0.0.1"]) is allowed


def test_public_addresses_pass_the_address_check():
    assert safe_fetch.address_refusal("93.184.216.34") is None
    assert safe_fetch.address_refusal("2606:2800:220:1:248:1893:25c8:1946") is None


def test_an_unknown_host_is_a_transient_failure(monkeypatch):
    def fail(host, port):
        raise OSError("Name or service not known")

    monkeypatch.setattr(safe_fetch, "resolve", fail)
    with pytest.raises(DownloadFailed, match="could not be found") as caught:
        fetch_file("https://files.intuit.com/a.pdf", allowed_hosts=[".intuit.com"])
    assert caught.value.permanent is False


# --- The security sweep (issue #9): loopback in disguise, redirects into private ranges ------


@pytest.mark.parametrize(
    "host",
    ["2130706433", "0177.0.0.1", "0x7f.0.0.1", "127.1", "[::1]", "[::ffff:127.0.0.1]", "[0::1]"],
)
def test_loopback_written_as_decimal_octal_hex_short_or_ipv6_is_refused(host):
    # Even were the allow-list to name it, the address behind it is this server.
    name = host.strip("[]")
    with pytest.raises(UnsafeURL, match="this server itself"):
        fetch_file(f"http://{host}/a.pdf", allowed_hosts=[name])


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f000001", "[::1]", "localhost"])
def test_numeric_and_local_hosts_are_off_the_allow_list(host):
    with pytest.raises(UnsafeURL, match="not a known QuickBooks download host"):
        fetch_file(f"https://{host}/a.pdf", allowed_hosts=[".intuit.com", ".amazonaws.com"])


@pytest.mark.parametrize(
    ("target", "allowed", "reason"),
    [
        ("http://10.0.0.1/a.pdf", ["10.0.0.1"], "private network"),
        ("http://192.168.0.10/a.pdf", ["192.168.0.10"], "private network"),
        ("http://[fd00:ec2::254]/a.pdf", ["fd00:ec2::254"], "cloud metadata"),
        ("http://[fe80::1]/a.pdf", ["fe80::1"], "link-local"),
        ("http://2130706433/a.pdf", [], "not a known"),
        ("http://0177.0.0.1/a.pdf", [], "not a known"),
        ("file:///etc/passwd", [], "scheme"),
        ("gopher://127.0.0.1:70/_GET%20/", [], "scheme"),
        ("dict://127.0.0.1:11211/stat", [], "scheme"),
    ],
)
def test_a_redirect_into_a_private_range_or_another_scheme_is_refused(
    server, target, allowed, reason
):
    with pytest.raises(UnsafeURL, match=reason):
        local_fetch(
            f"{server.base_url}/to?{quote(target, safe='')}", allowed_hosts=[*LOCAL, *allowed]
        )


def test_a_redirect_to_a_name_that_resolves_to_a_private_address_is_refused(server):
    port = int(server.base_url.rsplit(":", 1)[1])
    addresses = {"files.intuit.test": ["127.0.0.1"], "rebind.intuit.test": ["10.1.2.3"]}
    target = quote(f"http://rebind.intuit.test:{port}/ok.pdf", safe="")

    with pytest.raises(UnsafeURL, match="private network"):
        fetch_file(
            f"http://files.intuit.test:{port}/to?{target}",
            allowed_hosts=[".intuit.test"],
            allow_loopback_for_tests=True,
            resolver=lambda host, _port: addresses[host],
            timeout=5,
        )


def test_a_name_that_resolves_to_loopback_is_refused_without_the_test_permission(monkeypatch):
    monkeypatch.setattr(safe_fetch, "resolve", lambda host, port: ["127.0.0.1", "::1"])
    with pytest.raises(UnsafeURL, match="this server itself"):
        fetch_file("https://localhost.intuit.com/a.pdf", allowed_hosts=[".intuit.com"])
