"""SSRF-safe download of attachment files from allow-listed public hosts (reliability #22)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import ipaddress
import logging
import socket
import ssl
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi
from django.conf import settings

from well.http import USER_AGENT, PermanentError, ProviderError, redact_url

logger = logging.getLogger("well.safe_fetch")

MAX_BYTES = 10 * 1024 * 1024
DEFAULT_TIMEOUT = 30.0
MAX_REDIRECTS = 3
_CHUNK = 64 * 1024

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata endpoints, named so the refusal reason says what was attempted. Most are also
# caught by "not globally routable"; 100.100.100.200 (Alibaba) sits in shared address space.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS DNS resolver
        "fd00:ec2::254",  # AWS IMDS over IPv6
        "fd00:ec2::23",
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class UnsafeURL(PermanentError):
    """The link points somewhere Well must not download from."""


class FileTooLarge(PermanentError):
    """The file is bigger than the limit."""


class DownloadFailed(ProviderError):
    """The download did not complete (timeout, refused link, server error)."""


@dataclass(frozen=True)
class FetchedFile:
    """A downloaded file and where it finally came from."""

    content: bytes
    content_type: str | None
    sha256: str
    final_url: str


Resolver = Callable[[str, int], Sequence[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (tests monkeypatch this)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [info[4][0] for info in infos]


def _loopback_allowed(flag: bool) -> bool:
    """Loopback only for the local sandbox: the explicit flag or a setting production never sets."""
    if flag:
        return True
    try:
        return bool(getattr(settings, "WELL_ALLOW_LOOPBACK_DOWNLOADS", False))
    except Exception:  # Django not configured: stay strict.
        return False


def _embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address hidden inside an IPv6 one (mapped, 6to4, Teredo, NAT64), if any."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped:
        return ip.ipv4_mapped
    if ip.sixtofour:
        return ip.sixtofour
    if ip.teredo:
        return ip.teredo[1]
    if ip in _NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def address_refusal(address: str, *, allow_loopback: bool = False) -> str | None:
    """Why Well will not connect to `address`, or None when it is a public address."""
    try:
        ip: IPAddress = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return f"it resolved to something that is not an IP address ({address!r})"
    inner = _embedded_ipv4(ip)
    if inner is not None:
        reason = address_refusal(str(inner), allow_loopback=allow_loopback)
        return f"{reason} (inside {ip})" if reason else None
    if ip in METADATA_ADDRESSES:
        return f"it points at a cloud metadata service ({ip})"
    if ip.is_loopback:
        return None if allow_loopback else f"it points at this server itself ({ip})"
    if ip.is_link_local:
        return f"it points at a link-local address ({ip})"
    if ip.is_multicast:
        return f"it points at a multicast address ({ip})"
    if ip.is_unspecified or ip.is_reserved:
        return f"it points at a reserved address ({ip})"
    if ip.is_private:
        return f"it points at a private network address ({ip})"
    if not ip.is_global:
        return f"it points at an address that is not on the public internet ({ip})"
    return None


def host_allowed(host: str, allowed_hosts: Sequence[str]) -> bool:
    """True when `host` equals an entry, or ends with an entry that starts with a dot."""
    host = host.lower().rstrip(".")
    for entry in allowed_hosts:
        entry = entry.lower().rstrip(".")
        if not entry:
            continue
        if entry.startswith("."):
            if host.endswith(entry) and len(host) > len(entry):
                return True
        elif host == entry:
            return True
    return False


@dataclass(frozen=True)
class _Target:
    scheme: str
    host: str
    port: int
    path: str
    addresses: list[str]


STANDARD_PORTS = (80, 443)


def _check_url(
    url: str,
    allowed_hosts: Sequence[str],
    *,
    allow_loopback: bool,
    resolver: Resolver,
    allowed_ports: Collection[int] = STANDARD_PORTS,
) -> _Target:
    """Parse and vet one URL; every address the host resolves to must be acceptable."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise UnsafeURL("The attachment link is malformed.") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise UnsafeURL(
            f"The attachment link uses {scheme or 'no'} scheme; only web links are downloaded."
        )
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise UnsafeURL("The attachment link embeds a user name or password; it was not opened.")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise UnsafeURL("The attachment link has no host name.")
    if not host_allowed(host, allowed_hosts):
        raise UnsafeURL(
            f"The attachment link points at {host}, which is not a known QuickBooks "
            "download host, so Well did not open it."
        )
    if port is None:
        port = 443 if scheme == "https" else 80
    # Public download links use the standard ports; anything else smells of port scanning.
    # Allowing loopback (the demo) does not open other ports: the caller names the one
    # sandbox port it may use, so a hostile link cannot reach another local service.
    if port not in allowed_ports:
        raise UnsafeURL(f"The attachment link uses an unusual port ({port}); it was not opened.")
    try:
        addresses = list(dict.fromkeys(resolver(host, port)))
    except (OSError, UnicodeError):
        raise DownloadFailed(
            f"The download host {host} could not be found; Well will try again later."
        ) from None
    if not addresses:
        raise DownloadFailed(f"The download host {host} has no address; Well will try again.")
    for address in addresses:
        reason = address_refusal(address, allow_loopback=allow_loopback)
        if reason:
            raise UnsafeURL(
                f"The attachment link was not opened because {host} is not a public address: "
                f"{reason}."
            )
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return _Target(scheme=scheme, host=host, port=port, path=path, addresses=addresses)


def _ssl_context() -> ssl.SSLContext:
    """Verify certificates against certifi's bundle, the one requests uses."""
    return ssl.create_default_context(cafile=certifi.where())


def _connect(target: _Target, deadline: float, timeout: float) -> socket.socket:
    """Open a socket to one of the vetted addresses (never re-resolving the name)."""
    last: OSError | None = None
    for address in target.addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(min(timeout, remaining))
        try:
            sock.connect((address, target.port))
        except OSError as exc:
            sock.close()
            last = exc
            continue
        if target.scheme == "https":
            try:
                # SNI and certificate checks use the host name; the socket stays on the vetted IP.
                return _ssl_context().wrap_socket(sock, server_hostname=target.host)
            except (ssl.SSLError, OSError) as exc:
                sock.close()
                raise DownloadFailed(
                    f"The secure connection to {target.host} failed ({type(exc).__name__}).",
                    permanent=isinstance(exc, ssl.SSLCertVerificationError),
                ) from None
        return sock
    raise DownloadFailed(
        f"Could not connect to {target.host} ({type(last).__name__ if last else 'timed out'}); "
        "Well will try again later."
    )


def _get_once(
    target: _Target, *, max_bytes: int, deadline: float, timeout: float
) -> tuple[int, str | None, str | None, bytes]:
    """One GET: (status, content type, Location, body), stopping at the size or time limit."""
    sock = _connect(target, deadline, timeout)
    timed_out = threading.Event()

    def abort() -> None:
        # A server that trickles bytes never trips the per-read timeout; the deadline does.
        timed_out.set()
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(max(0.0, deadline - time.monotonic()), abort)
    watchdog.daemon = True
    watchdog.start()
    conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
    conn.sock = sock
    try:
        host_header = target.host if target.port in (80, 443) else f"{target.host}:{target.port}"
        conn.putrequest("GET", target.path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host_header)
        conn.putheader("User-Agent", USER_AGENT)
        # Identity only: a compressed body could expand past max_bytes after our count.
        conn.putheader("Accept-Encoding", "identity")
        conn.putheader("Accept", "application/pdf, image/jpeg, image/png, */*;q=0.5")
        conn.endheaders()
        response = conn.getresponse()
        status = response.status
        content_type = response.getheader("Content-Type")
        location = response.getheader("Location")
        if status >= 300:
            return status, content_type, location, b""
        declared = response.getheader("Content-Length")
        if declared and declared.strip().isdigit() and int(declared) > max_bytes:
            raise FileTooLarge(_too_large_message(int(declared), max_bytes))
        body = bytearray()
        while True:
            chunk = response.read1(_CHUNK)
            if not chunk:
                break
            body.extend(chunk)
            if len(body) > max_bytes:
                raise FileTooLarge(_too_large_message(None, max_bytes))
            if time.monotonic() > deadline:
                raise TimeoutError
        # A shutdown by the watchdog reads as a clean end of file: never take it for success.
        if timed_out.is_set():
            raise TimeoutError
        if declared and declared.strip().isdigit() and len(body) != int(declared):
            raise http.client.IncompleteRead(bytes(body[:0]), int(declared) - len(body))
        return status, content_type, location, bytes(body)
    except (OSError, http.client.HTTPException) as exc:
        if timed_out.is_set() or isinstance(exc, TimeoutError):
            raise DownloadFailed(
                f"The download from {target.host} took too long and was stopped; "
                "Well will try again later."
            ) from None
        raise DownloadFailed(
            f"The download from {target.host} was interrupted ({type(exc).__name__}); "
            "Well will try again later."
        ) from None
    finally:
        watchdog.cancel()
        conn.close()


def _too_large_message(size: int | None, max_bytes: int) -> str:
    """An accountant-readable size refusal."""
    limit = f"{max_bytes / (1024 * 1024):.0f} MB"
    if size is None:
        return f"The attachment is larger than {limit}, the most Qonto accepts; it was skipped."
    return (
        f"The attachment is {size / (1024 * 1024):.1f} MB, more than the {limit} "
        "Qonto accepts; it was skipped."
    )


def fetch_file(
    url: str,
    *,
    allowed_hosts: Sequence[str],
    max_bytes: int = MAX_BYTES,
    timeout: float = DEFAULT_TIMEOUT,
    allow_loopback_for_tests: bool = False,
    max_redirects: int = MAX_REDIRECTS,
    resolver: Resolver | None = None,
    allowed_ports: Collection[int] = STANDARD_PORTS,
) -> FetchedFile:
    """Download `url` from an allow-listed public host, within `max_bytes` and `timeout` overall.

    Only `allowed_ports` (80 and 443 unless the caller names more) are ever connected to;
    `allow_loopback_for_tests` (unit tests of this module only) also lifts the port check.
    """
    allow_loopback = _loopback_allowed(allow_loopback_for_tests)
    if allow_loopback_for_tests:
        allowed_ports = range(1, 65536)
    resolver = resolver or resolve
    deadline = time.monotonic() + timeout
    current = url
    for hop in range(max_redirects + 1):
        target = _check_url(
            current,
            allowed_hosts,
            allow_loopback=allow_loopback,
            resolver=resolver,
            allowed_ports=allowed_ports,
        )
        status, content_type, location, body = _get_once(
            target, max_bytes=max_bytes, deadline=deadline, timeout=timeout
        )
        if 200 <= status < 300:
            logger.info(
                "downloaded %s (%d bytes, %d redirects)", redact_url(current), len(body), hop
            )
            return FetchedFile(
                content=body,
                content_type=content_type,
                sha256=hashlib.sha256(body).hexdigest(),
                final_url=current,
            )
        if status in (301, 302, 303, 307, 308) and location:
            nxt = urljoin(current, location)
            if target.scheme == "https" and urlsplit(nxt).scheme.lower() == "http":
                raise UnsafeURL("The download link redirected from a secure to an insecure link.")
            # The next hop goes through every check again (allow-list, DNS, addresses).
            current = nxt
            continue
        if 400 <= status < 500:
            # Pre-signed links expire (15 minutes for QuickBooks, quickbooks-api.md §4.12).
            raise DownloadFailed(
                f"The download link was refused (HTTP {status}); it may have expired. "
                "Well will ask QuickBooks for a fresh link.",
                status=status,
                permanent=status not in (403, 404, 408, 410, 429),
            )
        raise DownloadFailed(
            f"The download server answered HTTP {status}; Well will try again later.",
            status=status,
        )
    raise UnsafeURL(f"The download link redirected more than {max_redirects} times; stopped.")
