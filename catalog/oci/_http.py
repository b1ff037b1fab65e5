"""What every HTTP transport of the registry client shares, whatever library carries the bytes:
authentication and the token flow, retries, the concurrency limit, and every bound on an answer
(byte caps, JSON limits, pagination, the throughput floor, one-line errors without secrets).

A transport (:class:`HTTPTransport`) sends one attempt with :meth:`HTTPTransport._request`, the one
step that touches an HTTP library: aiohttp's for servers and long runs (``_transport``), the
standard library's for one-shot commands (``_stdlib``), which start without aiohttp's import.
Both hand back an :class:`Answer`, the shape of aiohttp's response the endpoints read.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from typing import Any, Protocol, TypeVar, overload
from urllib.parse import urljoin, urlsplit

from catalog.hostport import is_loopback_host
from catalog.oci import boundedjson
from catalog.oci.auth import (
    DEFAULT_TOKEN_LIFETIME,
    Authenticator,
    Challenge,
    TokenAnswer,
    anonymous_realm_allowed,
    basic_header,
    oauth_refresh_form,
    parse_challenge,
    realm_allowed,
    redirect_allowed,
    token_query_url,
)
from catalog.oci.credentials import Credentials, CredentialStore
from catalog.oci.digest import OFF_LOOP, Digest
from catalog.oci.errors import (
    AuthError,
    BadResponse,
    InvalidDigest,
    NotInRegistry,
    OCIError,
    RegistryUnavailable,
    error_for,
)
from catalog.oci.options import RegistryOptions
from catalog.oci.retry import RETRY_STATUSES, parse_retry_after

READ_CHUNK = 4 * 1024 * 1024
_ERROR_BODY_LIMIT = 64 * 1024
# A token answer may carry the token twice (``token`` and ``access_token``), and a little more.
_TOKEN_BODY_EXTRA = 4096
# What a registry's error body may add to a message: one line, this long at most.
_MESSAGE_LIMIT = 300
# Characters of a secret that a message may not show even as a piece of it (a secret shorter
# than this is not looked for at all).
_SECRET_PIECE = 4
_INNER_PIECE = 16  # the same, for a piece from inside a secret (cut at both ends)
# Bounds of every JSON answer (lists, referrers, tokens, errors): json.loads alone spends ~20
# bytes of objects per input byte on ``[],[],…`` (181 MiB and 1.6 s for 8 MiB) and recurses
# once per level. A real page of 1,000 tags is ~1,000 values.
JSON_DEPTH = 64
JSON_VALUES = 1_000_000
# Redirects followed before an answer is a loop (aiohttp's default, which the other keeps).
MAX_REDIRECTS = 10
_R = TypeVar("_R")
_D = TypeVar("_D")


class Headers(Protocol):
    """Answer headers, looked up without regard to case."""

    @overload
    def get(self, key: str, /) -> str | None: ...
    @overload
    def get(self, key: str, default: _D, /) -> str | _D: ...


class Body(Protocol):
    """An answer's body as it arrives."""

    async def read(self, n: int = -1, /) -> bytes:
        """Up to ``n`` bytes (at least one unless the body has ended)."""

    async def readany(self) -> bytes:
        """What has arrived (waiting for something); ``b""`` at the end."""


class Sent(Protocol):
    @property
    def headers(self) -> Mapping[str, str]: ...


class Answer(Protocol):
    """A registry's answer, as the endpoints read it (aiohttp's ``ClientResponse`` is one)."""

    @property
    def status(self) -> int: ...
    @property
    def reason(self) -> str | None: ...
    @property
    def headers(self) -> Headers: ...
    @property
    def url(self) -> object: ...
    @property
    def content_length(self) -> int | None: ...
    @property
    def content(self) -> Body: ...
    @property
    def request_info(self) -> Sent: ...
    def release(self) -> Any: ...


class Unreachable(Exception):
    """One attempt failed on the way (connect, reset, a silent socket): worth another."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(describe(cause))


def decode_json(raw: bytes) -> Any:
    """A registry's JSON answer, under :data:`JSON_DEPTH` and :data:`JSON_VALUES`; a
    :class:`~catalog.oci.boundedjson.JSONRefused` line otherwise."""
    return boundedjson.loads(raw, max_depth=JSON_DEPTH, max_values=JSON_VALUES)


async def off_loop(size: int, work: Callable[..., _R], *args: Any) -> _R:
    """``work(*args)``, on a worker thread when it handles more than :data:`OFF_LOOP` bytes."""
    if size > OFF_LOOP:
        return await asyncio.to_thread(work, *args)
    return work(*args)


def next_link(header: str | None, base: str) -> str | None:
    """The ``rel="next"`` target of a ``Link`` header, absolute."""
    if not header:
        return None
    for part in header.split(","):
        if 'rel="next"' in part or "rel=next" in part:
            target = part[part.find("<") + 1 : part.find(">")]
            return urljoin(base, target)
    return None


def repository_scopes(repository: str | None, actions: str) -> list[str]:
    return [f"repository:{repository}:{actions}"] if repository else []


class Trickle(TimeoutError):
    """A body arriving slower than the throughput floor: dropped like a timed-out read."""


def describe(exc: BaseException) -> str:
    """A transport failure in a few words (a bare timeout has no message of its own)."""
    if isinstance(exc, TimeoutError) and not str(exc):
        return "timed out"
    return f"{exc.__class__.__name__}: {exc}"


def one_line(text: str, secrets: list[str] | None = None) -> str:
    """``text`` on one line, cut short, with every secret in ``secrets`` blanked out, and every
    piece of one: a library's message may quote an answer cut where a read ended, in the middle
    of a secret it echoed."""
    if secrets := [secret for secret in secrets or [] if len(secret) >= _SECRET_PIECE]:
        text = text[: 2 * _MESSAGE_LIMIT]  # only what may be shown is searched
        for secret in secrets:
            text = _blank_pieces(text.replace(secret, "***"), secret)
    text = " ".join(text.split())
    return text if len(text) <= _MESSAGE_LIMIT else text[: _MESSAGE_LIMIT - 1] + "…"


def _blank_pieces(text: str, secret: str) -> str:
    """``text`` with the pieces of ``secret`` a cut echo shows blanked out: a run of at least
    :data:`_SECRET_PIECE` characters that begins or ends the secret (an echo cut where a read
    ended), or of at least :data:`_INNER_PIECE` from inside it (cut at both ends). Shorter
    inner runs are left: in a long token nearly every 4 characters of a message would match
    (a digest, a date), and looking for them cost a search of the whole secret a character."""
    spans = [*_runs_from(text, secret), *_runs_from(text[::-1], secret[::-1], reverse=True)]
    step = _INNER_PIECE // 2  # a run of _INNER_PIECE holds a whole window of this many
    for i in range(0, len(text) - step + 1, step):
        if (at := secret.find(text[i : i + step])) >= 0:
            start, end = i, i + step
            while start > 0 and at > 0 and text[start - 1] == secret[at - 1]:
                start, at = start - 1, at - 1
            while end < len(text) and at + end - start < len(secret):
                if text[end] != secret[at + end - start]:
                    break
                end += 1
            if end - start >= _INNER_PIECE:
                spans.append((start, end))
    out: list[str] = []
    shown = 0
    for start, end in sorted(spans):
        if end > shown:
            if start > shown or not out:  # else it goes on from the last one blanked
                out += (text[shown:start], "***")
            shown = end
    out.append(text[shown:])
    return "".join(out)


def _runs_from(text: str, secret: str, *, reverse: bool = False) -> Iterator[tuple[int, int]]:
    """Where in ``text`` a run of at least :data:`_SECRET_PIECE` characters begins as
    ``secret`` does (``reverse``: both given reversed, spans of the unreversed text)."""
    head = secret[:_SECRET_PIECE]
    at = text.find(head)
    while at >= 0:
        end = at + _SECRET_PIECE
        while end < len(text) and end - at < len(secret) and text[end] == secret[end - at]:
            end += 1
        yield (len(text) - end, len(text) - at) if reverse else (at, end)
        at = text.find(head, end)


def sent_secrets(headers: Mapping[str, str]) -> list[str]:
    """What an ``Authorization`` header gave away: the token, or the user's password."""
    scheme, _, value = headers.get("Authorization", "").partition(" ")
    if not value:
        return []
    if scheme.lower() != "basic":
        return [value]
    with contextlib.suppress(ValueError):
        return [value, base64.b64decode(value).decode(errors="replace").partition(":")[2]]
    return [value]


class HTTPTransport(ABC):
    """The HTTP side of one registry host: the token cache, the limit, the bounds; a subclass
    carries the bytes (:meth:`_request`)."""

    # What a broken connection or body raises (a download is resumed after one).
    broken: tuple[type[BaseException], ...] = (TimeoutError,)

    def __init__(
        self,
        host: str,
        options: RegistryOptions,
        credential_store: CredentialStore | None = None,
    ) -> None:
        self.host = host
        self.options = options
        creds = options.credentials
        if creds is None:
            creds = (credential_store or CredentialStore()).lookup(host)
        self._auth = Authenticator(creds, self._fetch_token)
        secure = options.ca_file is not None or not (is_loopback_host(host) or options.insecure)
        self.base_url = f"{'https' if secure else 'http'}://{host}"
        self._semaphore = asyncio.Semaphore(options.max_concurrency)

    @abstractmethod
    async def close(self) -> None: ...

    @abstractmethod
    async def _request(
        self,
        method: str,
        url: str,
        headers: dict[str, str],
        body: bytes | AsyncIterable[bytes] | None,
        *,
        total: float | None,
        until_headers: float | None,
        redirects: bool,
    ) -> Answer:
        """One attempt, up to the answer's headers, following redirects when asked.

        ``total`` bounds the whole exchange, body included (None: unbounded, a blob's body
        being held to the throughput floor instead); ``until_headers`` the wait for the
        headers. Raises :class:`Unreachable` for a failure another attempt may cure, else
        :class:`RegistryUnavailable` (see :meth:`_no_answer`, :meth:`_untrusted`) or
        :class:`BadResponse` (an unusable answer, :meth:`_redirect_loop`).
        """

    def _no_answer(self, until_headers: float | None, url: str) -> RegistryUnavailable:
        # The registry answers, too slowly: another attempt would only wait as long again.
        # (A silent socket is a read timeout, and retried.)
        return RegistryUnavailable(f"{self.host}: no answer within {until_headers:g} s", url=url)

    def _untrusted(self, detail: object, url: str) -> RegistryUnavailable:
        return RegistryUnavailable(
            f"{self.host}: TLS certificate verification failed ({detail}); trust the"
            " registry's CA with --ca-file",
            url=url,
        )

    def _redirect_loop(self, redirects: int, url: str) -> BadResponse:
        return BadResponse(
            f"{self.host}: redirected {redirects} times without an answer (a redirect loop?)",
            url=url,
        )

    def located(self, url: str, location: str, sent: Mapping[str, str] | None = None) -> str:
        """``location`` (the answer to ``url`` names it: a redirect, where an upload goes on)
        joined to ``url``, where the redirect rule allows it: the next request carries the
        credentials, and an upload's bytes. ``sent``: the headers whose secrets an error must
        not quote."""
        try:
            target = urljoin(url, location)
        except ValueError:  # "http://[::1": refused as it is
            target = location
        self._check_redirect(target, url, sent or {})
        return target

    def _check_redirect(self, target: str, url: str, sent: Mapping[str, str]) -> None:
        """Refuse (:class:`BadResponse`) to follow the answer to ``url`` to ``target`` where the
        redirect rule forbids it (:func:`~catalog.oci.auth.redirect_allowed`), before any
        request is made there. Only the target's host is named: the rest of a URL of the
        registry's making may echo what it was sent."""
        if not target.lower().startswith(("http://", "https://")):
            raise self._unusable(f"redirected to {target[:200]!r}, not an HTTP URL", url, sent)
        if not redirect_allowed(target, self.base_url):
            try:
                where = urlsplit(target).netloc
            except ValueError:
                where = "a URL that cannot be parsed"
            raise self._unusable(
                f"redirected to {where[:200]!r}: refused, a redirect may go only to a public"
                " host or within the registry's own kind of network, never from https to http",
                url,
                sent,
            )

    def _unusable(self, why: str, url: str, sent: Mapping[str, str]) -> BadResponse:
        """``why`` may quote the answer, and ``url`` be a ``Location`` of its, either echoing
        what was ``sent``: its secrets go."""
        secrets = sent_secrets(sent)
        why = one_line(why, secrets)
        return BadResponse(f"{self.host}: unusable answer: {why}", url=one_line(url, secrets))

    async def _fetch_token(
        self, challenge: Challenge, scopes: list[str], creds: Credentials | None
    ) -> TokenAnswer:
        if not challenge.realm:
            raise AuthError(f"{self.host}: bearer challenge without a realm")
        if creds is None and not anonymous_realm_allowed(challenge.realm, self.base_url):
            raise AuthError(
                f"{self.host}: its token server {challenge.realm[:200]!r} is not an http(s) URL,"
                " or is on an internal address the registry is not on: not asked"
            )
        if creds is not None and not realm_allowed(
            challenge.realm, self.base_url, self.options.token_realms
        ):
            # Checked here, where the request is made: nothing reaches a realm it names.
            raise AuthError(
                f"{self.host}: its token server {challenge.realm[:200]!r} is not on the "
                "registry's host, so its credentials are not sent there (list the token "
                "server in the credentials' token_realms if it is the registry's own)"
            )
        if creds is not None and creds.identity_token:
            form = oauth_refresh_form(challenge, scopes, creds.identity_token)
            try:
                return await self._exchange_token(
                    challenge, "POST", challenge.realm, form, {}, redirects=False
                )
            except NotInRegistry:
                pass  # no OAuth2 at this token server: its GET, without the refresh token
        headers = {}
        if creds is not None and (creds.username or creds.password):
            headers["Authorization"] = basic_header(creds)
        url = token_query_url(challenge, scopes)
        # Anonymously, not redirected: the realm rule holds for the URL the registry named,
        # not for wherever that points next (a metadata service).
        redirects = creds is not None
        return await self._exchange_token(challenge, "GET", url, None, headers, redirects=redirects)

    async def _exchange_token(
        self,
        challenge: Challenge,
        method: str,
        url: str,
        form: bytes | None,
        headers: dict[str, str],
        *,
        redirects: bool,
    ) -> TokenAnswer:
        server = one_line(challenge.realm)
        if form is not None:
            headers = {**headers, "Content-Type": "application/x-www-form-urlencoded"}
        # A redirect would carry the form (and its refresh token) to wherever it points.
        async with self.send(
            method, url, headers=headers, body=form, authenticate=False, redirects=redirects
        ) as resp:
            # OAuth2 (RFC 6749 5.2) refuses a grant with 400 invalid_grant.
            if resp.status in (401, 403) or (form is not None and resp.status == 400):
                raise AuthError(
                    f"{self.host}: the token server at {server} refused the credentials"
                    f" (HTTP {resp.status})"
                )
            if resp.status != 200:
                # Typed like any answer, but without its body: a realm may be any URL the
                # registry chose, and its answer must not come back through error messages.
                raise error_for(
                    resp.status, None, f"the token server answered HTTP {resp.status}", url[:200]
                )
            raw = await self.read(
                resp,
                f"token server's answer ({server})",
                2 * self.options.token_limit + _TOKEN_BODY_EXTRA,
                lambda limit: AuthError(
                    f"{self.host}: the token server at {server} answered more than {limit}"
                    " bytes; refused"
                ),
            )
        # Neither the answer nor the token is ever quoted: it is a secret however malformed.
        try:
            answer = decode_json(raw)
        except boundedjson.JSONRefused:
            raise AuthError(
                f"{self.host}: the token server at {server} answered non-JSON"
            ) from None
        if not isinstance(answer, dict):
            raise AuthError(f"{self.host}: the token server at {server} answered without a token")
        token = answer.get("token") or answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthError(f"{self.host}: the token server at {server} answered without a token")
        if len(token) > self.options.token_limit:
            raise AuthError(
                f"{self.host}: the token server at {server} answered a token of {len(token)}"
                f" characters, over the {self.options.token_limit} limit; refused"
            )
        if not (token.isascii() and token.isprintable()) or " " in token:
            raise AuthError(
                f"{self.host}: the token server at {server} answered a token that cannot be"
                " sent in a header; refused"
            )
        lifetime = answer.get("expires_in")
        if not isinstance(lifetime, int | float) or lifetime <= 0:
            lifetime = DEFAULT_TOKEN_LIFETIME
        refresh = answer.get("refresh_token") if form is not None else None
        if not isinstance(refresh, str) or not refresh or len(refresh) > self.options.token_limit:
            refresh = None  # keep the one held
        return TokenAnswer(token, float(lifetime), refresh)

    @contextlib.asynccontextmanager
    async def send(
        self,
        method: str,
        url: str,
        *,
        scopes: list[str] | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        stream: AsyncIterable[bytes] | None = None,
        authenticate: bool = True,
        retry: bool = True,
        long_answer: bool = False,
        redirects: bool = True,
    ) -> AsyncIterator[Answer]:
        """Send one request with auth, retries and the concurrency limit; yield the final answer.

        Answers with a retryable status are retried; any other status is the caller's to judge.
        A streamed body cannot be replayed, so such requests are sent once. Every transport
        failure ends as a :class:`~catalog.oci.errors.RegistryUnavailable`.

        The whole exchange, body included, has ``request_timeout`` (plus time for the bytes of
        an upload); a ``long_answer`` (a blob) only until its headers, its body being held to
        the throughput floor by :meth:`chunks` instead.
        """
        if not url.startswith(("http://", "https://")):
            url = self.base_url + url
        policy = self.options.retry
        retry = retry and stream is None
        total: float | None = None
        if not (long_answer or stream is not None):
            total = self.options.request_timeout
            if body:
                total += len(body) / self.options.min_throughput
        # Until the headers: what the whole exchange may take, or, for a blob, the plain limit.
        until_headers = total or (None if stream else self.options.request_timeout)
        attempt = 0
        reauthenticated = False
        async with self._semaphore:
            while True:
                attempt += 1
                request_headers = dict(headers or {})
                # Anonymous until a 401 teaches a challenge: no token step per request till then.
                if authenticate and self._auth.challenge is not None:
                    auth = await self._auth.header(scopes or [])
                    if auth:
                        request_headers["Authorization"] = auth
                try:
                    resp = await self._request(
                        method,
                        url,
                        request_headers,
                        stream or body,
                        total=total,
                        until_headers=until_headers,
                        redirects=redirects,
                    )
                except Unreachable as exc:
                    if not retry or attempt >= policy.attempts:
                        raise RegistryUnavailable(
                            f"{self.host} unreachable after {attempt} attempt(s): "
                            + one_line(str(exc)),
                            url=url,
                        ) from exc.__cause__
                    await asyncio.sleep(policy.backoff(attempt))
                    continue
                if resp.status == 401 and authenticate and not reauthenticated and stream is None:
                    challenge = parse_challenge(resp.headers.get("WWW-Authenticate"))
                    if challenge is not None:
                        resp.release()
                        self._auth.learn(challenge)
                        self._auth.invalidate(" ".join(scopes or []))
                        reauthenticated = True
                        attempt -= 1
                        continue
                if resp.status in RETRY_STATUSES and retry and attempt < policy.attempts:
                    wait = parse_retry_after(resp.headers.get("Retry-After"))
                    if wait is None or wait <= policy.max_retry_after:
                        resp.release()
                        await asyncio.sleep(policy.backoff(attempt, wait))
                        continue
                try:
                    yield resp
                finally:
                    resp.release()
                return

    def _canonical(self, url: str) -> str:
        """``url`` as an answer's ``url`` spells it (pagination compares the two)."""
        return url

    def announced_digest(self, resp: Answer) -> Digest | None:
        """The ``Docker-Content-Digest`` of ``resp``; one that does not parse is the
        registry's fault (a :class:`BadResponse`), not the caller's."""
        header = resp.headers.get("Docker-Content-Digest")
        if not header:
            return None
        try:
            return Digest.parse(header)
        except InvalidDigest:
            raise BadResponse(
                f"{self.host}: Docker-Content-Digest {one_line(header)[:100]!r} is not a digest",
                url=str(resp.url),
            ) from None

    def next_page(self, resp: Answer, seen: set[str], what: str) -> str | None:
        """The URL of the page after ``resp`` (its ``Link`` header), None after the last.

        ``seen`` holds the pages read so far: a link back to one of them (a loop), or more than
        ``max_pages`` pages, is a :class:`BadResponse` rather than a listing without end.
        """
        here = str(resp.url)
        seen.add(here)
        link = next_link(resp.headers.get("Link"), here)
        if link is None:
            return None
        self._check_redirect(link, here, {})  # the next page is asked with the credentials
        link = self._canonical(link)
        if link in seen:
            raise BadResponse(
                f"{self.host}: the {what} pages loop (Link points back at a page already read)",
                url=link,
            )
        if len(seen) >= self.options.max_pages:
            raise BadResponse(
                f"{self.host}: the {what} goes on past {self.options.max_pages} pages; refused",
                url=link,
            )
        return link

    async def read(
        self,
        resp: Answer,
        what: str,
        limit: int | None = None,
        too_large: Callable[[int], OCIError] | None = None,
    ) -> bytes:
        """The body of ``resp``, read as a stream and refused past ``limit`` bytes (the
        ``json_limit`` by default) with ``too_large(limit)`` or a :class:`BadResponse`."""
        limit = self.options.json_limit if limit is None else limit

        def refuse() -> OCIError:
            if too_large is not None:
                return too_large(limit)
            return BadResponse(
                f"{self.host}: the {what} is larger than the {limit}-byte limit",
                url=str(resp.url),
            )

        if resp.content_length is not None and resp.content_length > limit:
            raise refuse()
        body = bytearray()  # not a list of pieces: a piece may be a byte or two
        try:
            while piece := await resp.content.read(min(limit + 1 - len(body), READ_CHUNK)):
                body += piece
                if len(body) > limit:
                    raise refuse()
        except self.broken as exc:
            raise RegistryUnavailable(
                f"{self.host}: the {what} broke off after {len(body)} bytes: "
                + one_line(describe(exc), sent_secrets(resp.request_info.headers)),
                url=str(resp.url),
            ) from exc
        return bytes(body)

    async def read_json(self, resp: Answer, what: str) -> Any:
        """The JSON body of ``resp``, under the ``json_limit`` (see :meth:`read`); one that
        does not decode is a :class:`BadResponse`, however it fails (bad UTF-8, nesting too
        deep…)."""
        raw = await self.read(resp, what)
        try:
            return await off_loop(len(raw), decode_json, raw)
        except boundedjson.JSONRefused as exc:
            raise BadResponse(
                f"{self.host}: the {what} is refused: {exc}", url=str(resp.url)
            ) from None

    async def chunks(self, resp: Answer) -> AsyncIterator[bytes]:
        """A long body in pieces of about ``READ_CHUNK`` bytes, dropped with :class:`Trickle`
        once it arrives slower than ``min_throughput`` over a ``throughput_window``.

        Only the time spent waiting for bytes counts: a consumer slow to ask for the next piece
        does not make the registry look slow.
        """
        floor, window = self.options.min_throughput, self.options.throughput_window
        loop = asyncio.get_running_loop()
        waited, received = 0.0, 0
        held = bytearray()  # not a list of pieces: a piece may be a byte or two
        first: bytes | None = None
        while True:
            began = loop.time()
            deadline = asyncio.timeout(window - waited)
            piece: bytes | None = None
            try:
                async with deadline:
                    piece = await resp.content.readany()
            except TimeoutError:
                if not deadline.expired():
                    raise
            waited += loop.time() - began
            received += len(piece or b"")
            if waited >= window:
                if received < floor * window:
                    raise Trickle(
                        f"{received} bytes in {window:g} s, under the floor of {floor} bytes/s"
                    )
                waited, received = 0.0, 0
            if piece is None:
                continue
            if not piece:
                break
            if first is None and not held:
                if len(piece) >= READ_CHUNK:
                    yield piece  # a whole block as it came: no copy
                else:
                    first = piece  # kept as it came: a body in one small piece is not copied
                continue
            if first is not None:
                held += first
                first = None
            held += piece
            if len(held) >= READ_CHUNK:
                yield bytes(held)
                held.clear()
        if first is not None:
            yield first
        elif held:
            yield bytes(held)

    async def raise_for(self, resp: Answer) -> None:
        """Raise the typed error a failed answer stands for.

        The registry's message is quoted on one line, cut short, and without whatever secret
        the request carried (a hostile registry may echo the Authorization header).
        """
        body = b""
        with contextlib.suppress(*self.broken):
            body = await resp.content.read(_ERROR_BODY_LIMIT)
        code: str | None = None
        message = body.decode(errors="replace").strip() or resp.reason or "no message"
        try:
            errors = decode_json(body).get("errors")
            if isinstance(errors, list) and errors and isinstance(errors[0], dict):
                code = errors[0].get("code")
                message = errors[0].get("message") or message
        except (boundedjson.JSONRefused, AttributeError):
            pass
        secrets = sent_secrets(resp.request_info.headers)
        code = one_line(code, secrets) if isinstance(code, str) else None
        message = one_line(str(message), secrets)
        raise error_for(resp.status, code, message, str(resp.url))

    async def expect(self, resp: Answer, *statuses: int) -> None:
        if resp.status not in statuses:
            await self.raise_for(resp)
