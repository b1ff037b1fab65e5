"""Registry authentication: challenges, the Docker token flow, and a token cache per scope.

The realm rule: a bearer challenge names the token server (its ``realm``) the client should
ask, and the client's credentials go with that request. A registry could name any server, so
credentials are sent to a realm only when it is

- on the registry's own host and port (``https://ghcr.io/token`` for ``ghcr.io``), or
- listed with the credentials (``token_realms:`` of a named credential in the server's
  ``secrets``, as ``host[:port]``), or
- Docker Hub's token server ``auth.docker.io`` for Docker Hub's hosts;

and never over plain HTTP when the registry itself is reached over HTTPS. Any other realm is
refused with an :class:`AuthError` before a request is made. Without credentials there is
nothing to leak and the token is asked for anonymously, not redirected, of a realm that is an
http(s) URL on a public address or name, or on the registry's kind of network (private,
loopback, link-local: see :func:`network_of`): a registry must not make this server ask its own
network for it (a metadata service), and get the answer back as the token of its next request.
(Hosts as the client sends them, not resolved.) A redirect is followed under the same rule
(:func:`redirect_allowed`), and never from HTTPS to plain HTTP: a registry's answer must not send
the server's next request into its network either.

Identity tokens (docker's ``identitytoken``, a helper's ``<token>`` user) are OAuth2 refresh
tokens: exchanged by ``POST realm`` with the form ``grant_type=refresh_token``, ``service``,
``scope``, ``client_id`` and ``refresh_token``, as docker and go-containerregistry do. A token
server without OAuth2 answers that POST with 404, and then, as go-containerregistry does, the GET
exchange is used with the user name and password only: the refresh token is never sent as Basic.
A refresh token in the answer replaces the one held (in memory only).
"""

import asyncio
import base64
import ipaddress
import re
import socket
import time
from collections.abc import Awaitable, Callable, Collection
from typing import NamedTuple
from urllib.parse import SplitResult, urlencode, urlsplit

from catalog.claims import Claims
from catalog.hostport import IPAddress, ip_literal
from catalog.oci.credentials import Credentials
from catalog.oci.errors import AuthError

# Compiled on first use (re's cache): only a registry that asks for credentials needs it. A
# name is tried only where a word starts: inside a long run of word characters `(\w+)\s*=`
# failed once per position (quadratic in a header the registry controls).
_PARAM = r'(?<!\w)(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))'
# A challenge's parameters (realm, service, scope, error) fit in far less.
_CHALLENGE_MAX = 4096
# Refresh a little before the registry would refuse the token.
_EXPIRY_MARGIN = 5.0
DEFAULT_TOKEN_LIFETIME = 60.0


class Challenge(NamedTuple):
    scheme: str  # "bearer" or "basic"
    params: dict[str, str]

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


def parse_challenge(header: str | None) -> Challenge | None:
    """Parse a ``WWW-Authenticate`` header (the first challenge; registries send one)."""
    if not header or len(header) > _CHALLENGE_MAX:
        return None  # none that can be answered: the 401 stands
    scheme, _, rest = header.strip().partition(" ")
    params = {
        m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3)
        for m in re.finditer(_PARAM, rest)
    }
    return Challenge(scheme.lower(), params)


_HUB_HOSTS = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
_HUB_REALMS = frozenset({"auth.docker.io:443"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _authority(host: str, scheme: str) -> str | None:
    """``host:port`` with the scheme's default port filled in; None when not parseable."""
    try:
        parts = urlsplit(f"{scheme}://{host}")
        port = parts.port or _DEFAULT_PORTS[scheme]
    except (ValueError, KeyError):
        return None
    if not parts.hostname or parts.username is not None or parts.password is not None:
        return None
    return f"{parts.hostname}:{port}"


def _split(realm: str, registry_url: str) -> tuple[SplitResult, SplitResult] | None:
    try:
        return urlsplit(realm), urlsplit(registry_url)
    except ValueError:  # "https://[::1/token"
        return None


def realm_allowed(realm: str, registry_url: str, listed: Collection[str] = ()) -> bool:
    """Whether credentials for the registry at ``registry_url`` (``scheme://host[:port]``) may be
    sent to the token server ``realm`` (see the module's realm rule)."""
    split = _split(realm, registry_url)
    if split is None:
        return False
    target, registry = split
    if target.scheme not in _DEFAULT_PORTS or registry.scheme not in _DEFAULT_PORTS:
        return False
    if target.scheme == "http" and registry.scheme == "https":
        return False  # a downgrade: the password would cross the network in the clear
    where = _authority(target.netloc, target.scheme)
    own = _authority(registry.netloc, registry.scheme)
    if where is None or own is None:
        return False
    if where == own:
        return True
    if where in {_authority(h, target.scheme) for h in listed}:
        return True
    return registry.hostname in _HUB_HOSTS and where in _HUB_REALMS


def anonymous_realm_allowed(realm: str, registry_url: str) -> bool:
    """Whether the token server ``realm`` may be asked for a token without credentials by the
    client of the registry at ``registry_url`` (see the module's realm rule)."""
    split = _split(realm, registry_url)
    if split is None:
        return False
    target, registry = split
    if target.scheme not in _DEFAULT_PORTS or _authority(target.netloc, target.scheme) is None:
        return False  # "/token", "@host/x": not a URL of its own (the client would join it)
    where = network_of(target.hostname)
    return where == "public" or where == network_of(registry.hostname)


def redirect_allowed(target: str, registry_url: str) -> bool:
    """Whether a redirect of the registry at ``registry_url`` (or of a host it sent the request
    to) may be followed to ``target``, an absolute URL: where an anonymous realm may be (a
    registry must not send this server into its own network: a metadata service, this machine's
    ports), and never from HTTPS to plain HTTP."""
    split = _split(target, registry_url)
    if split is None or (split[0].scheme == "http" and split[1].scheme == "https"):
        return False
    return anonymous_realm_allowed(target, registry_url)


# Names only a machine's own network resolves (a cluster's services, a cloud's metadata).
_INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".svc", ".lan", ".home.arpa")
# Clouds' metadata services outside the link-local range, by name and address: reached only by
# a registry on the link-local network, as 169.254.169.254 is.
_METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})
_METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a)
    for a in ("fd00:ec2::254", "100.100.100.200")  # AWS v6, Alibaba
)
# IPv6 addresses carrying an IPv4 address, which a translator or tunnel on the way delivers to:
# 6to4 (``ipaddress``'s ``sixtofour``), and in the last 32 bits NAT64's well-known prefix (an
# IPv6-only cluster's route to IPv4), a /96 of its local-use prefix (the common length),
# IPv4-translated (SIIT) and IPv4-compatible addresses. ``ipaddress`` calls them all global:
# ``[64:ff9b::a9fe:a9fe]`` was a public realm. The rest of the local-use /48 (IPv4 spread over
# other bits) is private, whatever it carries: this network's own translator.
_NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")
_CARRY_LAST_32 = tuple(
    ipaddress.ip_network(prefix)
    for prefix in ("64:ff9b::/96", "64:ff9b:1::/96", "::ffff:0:0:0/96", "::/96")
)


def network_of(host: str | None) -> str:
    """Which network ``host`` (as written, not resolved) is on: "public", "private" (private
    ranges, and names only an internal resolver knows: one label, ``.internal``, ``.svc``…),
    "loopback", "link-local" (a cloud's metadata service) or "other" (unusable)."""
    if not host:
        return "other"
    try:  # as the client will send it: full-width digits are digits, and so on
        host = host.encode("idna").decode("ascii").lower().rstrip(".")
    except UnicodeError:
        return "other"
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    if host in _METADATA_NAMES:
        return "link-local"
    address = ip_literal(host)
    if address is None:
        try:  # "127.1", "2130706433", "0x7f.1": IPv4 as the resolver also reads it
            address = ipaddress.ip_address(socket.inet_aton(host))
        except (OSError, ValueError):  # a name (ValueError: one with a NUL)
            internal = "." not in host or host.endswith(_INTERNAL_SUFFIXES)
            return "private" if internal else "public"
    carried = _carried_ipv4(address) if isinstance(address, ipaddress.IPv6Address) else None
    if carried is None:
        return "private" if address in _NAT64_LOCAL else _address_network(address)
    inner = _address_network(carried)
    # A local-use prefix is this network's own translator: inside, whatever it carries.
    return "private" if inner == "public" and address in _NAT64_LOCAL else inner


def _address_network(address: IPAddress) -> str:
    if address.is_loopback or address.is_unspecified:  # a connect to 0.0.0.0 or :: is local
        return "loopback"
    if address.is_link_local or address in _METADATA_ADDRESSES:
        return "link-local"
    return "public" if address.is_global else "private"


def _carried_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a 6to4, NAT64, IPv4-translated or IPv4-compatible address delivers
    to."""
    if address.sixtofour is not None:
        return address.sixtofour
    # :: and ::1 are themselves, not IPv4-compatible.
    if int(address) > 1 and any(address in prefix for prefix in _CARRY_LAST_32):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


# Who asks, in the OAuth2 form (docker sends "docker", go-containerregistry its name).
CLIENT_ID = "xregistry"


def oauth_refresh_form(challenge: Challenge, scopes: list[str], refresh_token: str) -> bytes:
    """The ``application/x-www-form-urlencoded`` body of the refresh-token POST."""
    form = [("grant_type", "refresh_token")]
    if "service" in challenge.params:
        form.append(("service", challenge.params["service"]))
    form += [("scope", " ".join(scopes)), ("client_id", CLIENT_ID)]
    form.append(("refresh_token", refresh_token))
    return urlencode(form).encode()


def token_query_url(challenge: Challenge, scopes: list[str]) -> str:
    """The GET exchange: ``realm?service=…&scope=…`` (one ``scope`` per scope)."""
    query: list[tuple[str, str]] = []
    if "service" in challenge.params:
        query.append(("service", challenge.params["service"]))
    query.extend(("scope", s) for s in scopes)
    return challenge.realm + ("&" if "?" in challenge.realm else "?") + urlencode(query)


class TokenAnswer(NamedTuple):
    value: str
    lifetime: float
    refresh_token: str | None = None  # a new one from the OAuth2 exchange

    def __repr__(self) -> str:
        return f"TokenAnswer(value=***, lifetime={self.lifetime})"


def basic_header(credentials: Credentials) -> str:
    token = base64.b64encode(f"{credentials.username}:{credentials.password}".encode()).decode()
    return f"Basic {token}"


class Token(NamedTuple):
    value: str
    expires_at: float

    def fresh(self) -> bool:
        return time.monotonic() < self.expires_at - _EXPIRY_MARGIN


class Authenticator:
    """Knows how a registry wants to be authenticated and caches bearer tokens per scope.

    ``fetch_token`` performs the HTTP exchange (the client owns the connection pool).
    """

    def __init__(
        self,
        credentials: Credentials | None,
        fetch_token: Callable[[Challenge, list[str], Credentials | None], Awaitable[TokenAnswer]],
    ) -> None:
        self.credentials = credentials
        self._fetch = fetch_token
        self.challenge: Challenge | None = None
        # One token request per scope, however many requests wait for it; a failed request is
        # tried again by the next one waiting.
        self._tokens: Claims[str, Token] = Claims(failures="retry")
        # A token server may rotate refresh tokens (each used once): exchanges that spend one
        # go one at a time, each with the token the previous answer gave.
        self._refreshing = asyncio.Lock()

    def learn(self, challenge: Challenge) -> None:
        if challenge.scheme not in ("bearer", "basic"):
            raise AuthError(f"unsupported authentication scheme {challenge.scheme!r}")
        creds = self.credentials
        if challenge.scheme == "basic" and (
            creds is None or not (creds.username or creds.password)
        ):
            # An identity token alone is for a token server, never a Basic password.
            raise AuthError("the registry requires a username and password; none are configured")
        self.challenge = challenge

    async def _exchange(self, challenge: Challenge, scopes: list[str]) -> TokenAnswer:
        if self.credentials is None or not self.credentials.identity_token:
            return await self._fetch(challenge, scopes, self.credentials)
        async with self._refreshing:
            answer = await self._fetch(challenge, scopes, self.credentials)
            if answer.refresh_token:
                user, password = self.credentials.username, self.credentials.password
                self.credentials = Credentials(user, password, answer.refresh_token)
            return answer

    def invalidate(self, scope: str) -> None:
        self._tokens.forget(scope)

    async def header(self, scopes: list[str]) -> str | None:
        """The Authorization header for a request needing ``scopes`` (None: send none)."""
        challenge = self.challenge
        if challenge is None:
            return None
        if challenge.scheme == "basic":
            assert self.credentials is not None
            return basic_header(self.credentials)
        key = " ".join(scopes)
        while True:
            async with self._tokens.hold(key) as held:
                if held.owner:
                    answer = await self._exchange(challenge, scopes)
                    held.set(Token(answer.value, time.monotonic() + answer.lifetime))
                    return f"Bearer {held.value.value}"
                token = held.value
            if token.fresh():
                return f"Bearer {token.value}"
            self._tokens.forget(key)  # expired: the next turn fetches a new one
