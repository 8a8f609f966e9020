"""Who may use the service: a token (header, login URL or signed cookie), and which Host
names it answers to.  Pure functions, so they are tested without a server.

The model is Jupyter Server's: a token on by default, kept 0600 in the state folder and
printed as a login URL; browsers then carry a signed cookie (SameSite=Lax, HttpOnly) and
Tornado's XSRF token on every form; API clients send ``Authorization: token TOKEN``.  The
Host check stops DNS rebinding: a page on attacker.example whose name now points at
127.0.0.1 still sends ``Host: attacker.example``, which the service does not answer.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import secrets
import socket

from ..errors import UsageError

TOKEN_FILE = "token"
TOKEN_ENV = "SNHOO_TOKEN"
COOKIE = "snhoo-auth"
MIN_TOKEN = 16  # a shorter token can be guessed over the network
LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"})


class AuthError(UsageError):
    """The token cannot be set up; the message is one line for the user."""


def load_token(state_dir: str, given: str | None) -> tuple[str, bool]:
    """The service's token and whether it came from the state folder (so may be printed).

    ``given`` (``--token`` or ``$SNHOO_TOKEN``) wins; otherwise STATE_DIR/token is reused, or
    created with mode 0600 on the first start, so a login URL stays valid across restarts.
    """
    if given is not None:
        given = given.strip()
        if len(given) < MIN_TOKEN or not given.isprintable() or " " in given:
            raise AuthError(f"the token must be at least {MIN_TOKEN} printable characters without spaces")
        return given, False
    path = os.path.join(state_dir, TOKEN_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_token(path), True
    except OSError as e:
        raise AuthError(f"cannot create the token file {path}: {e.strerror or e}") from None
    token = secrets.token_hex(24)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token, True


def _read_token(path: str) -> str:
    try:
        st = os.stat(path)
        if st.st_mode & 0o077:
            # Someone loosened it: the token is readable by others, so it guards nothing.
            os.chmod(path, 0o600)
        with open(path, encoding="ascii") as f:
            token = f.read().strip()
    except (OSError, UnicodeDecodeError) as e:
        raise AuthError(f"cannot read the token file {path}: {getattr(e, 'strerror', None) or e}") from None
    if len(token) < MIN_TOKEN:
        raise AuthError(f"the token file {path} holds no usable token; delete it to make a new one")
    return token


def cookie_secret(token: str) -> str:
    """Signs the login cookie and the XSRF token: a new token logs every browser out."""
    return hmac.new(token.encode(), b"snhoo-dask cookie secret", hashlib.sha256).hexdigest()


def token_matches(token: str, offered: str | None) -> bool:
    return offered is not None and hmac.compare_digest(token.encode(), offered.encode("utf-8", "replace"))


def header_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: token TOKEN`` header (``Bearer`` also accepted)."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not value.strip():
        return None
    return value.strip()


def is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(bind: str, extra: list[str]) -> frozenset[str]:
    """The Host names the service answers to (IP addresses are always answered: DNS
    rebinding needs a name).  Loopback names always; the machine's own names and the bound
    name when it listens beyond loopback; plus every ``--allowed-host``."""
    names = set(LOOPBACK_NAMES)
    names.update(n.strip().lower().rstrip(".") for n in extra if n.strip())
    if not is_loopback(bind):
        for n in (bind, socket.gethostname(), socket.getfqdn()):
            if n and not _is_ip(n):
                names.add(n.lower().rstrip("."))
    return frozenset(names)


def split_host(header: str) -> str | None:
    """The name of a Host header without its port (``[::1]:8888`` -> ``::1``); None when it
    is not a host and an optional port (``[::1]evil``, ``name:port:x``, ``name:abc``)."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        if end < 0 or not _port_ok(header[end + 1 :]):
            return None
        return header[1:end]
    if header.count(":") == 1:
        header, port = header.split(":", 1)
        if not _port_ok(":" + port):
            return None
    return header.rstrip(".")


def _port_ok(rest: str) -> bool:
    """What may follow a host: nothing, or ``:`` and a port number."""
    return rest == "" or (
        rest.startswith(":") and rest[1:].isascii() and rest[1:].isdigit() and len(rest) <= 6
    )


def host_allowed(header: str | None, allowed: frozenset[str]) -> bool:
    if not header:
        return False
    name = split_host(header)
    return name is not None and (_is_ip(name) or name in allowed)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
        return True
    except ValueError:
        return False


def login_url(bind: str, port: int, token: str | None) -> str:
    """What to open in a browser; a wildcard bind is shown as this machine's name."""
    host = bind
    if bind in ("", "0.0.0.0", "::"):
        host = socket.getfqdn() or socket.gethostname()
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{port}/"
    return f"{url}?token={token}" if token else url
