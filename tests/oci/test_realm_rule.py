"""The realm rule: a registry's credentials go to its own host and to the token servers listed
with them, nowhere else, whatever its challenge or its redirects say."""

from __future__ import annotations

import base64

import pytest

from catalog.oci.auth import anonymous_realm_allowed, realm_allowed, redirect_allowed
from catalog.oci.credentials import Credentials
from catalog.oci.errors import AuthError, NotInRegistry, RegistryError
from catalog.oci.retry import RetryPolicy
from tests.conftest import ClientFactory
from tests.harness.hostile import hostile_pair

ROBOT = Credentials("robot", "s3cret-password")
BASIC = "Basic " + base64.b64encode(b"robot:s3cret-password").decode()


async def test_a_realm_on_another_server_gets_no_credentials(make_client: ClientFactory) -> None:
    async with hostile_pair() as (hostile, recorder):
        client = make_client(hostile.host, credentials=ROBOT)
        with pytest.raises(AuthError, match="credentials are not sent there"):
            await client.ping()
        assert recorder.seen == []  # refused before a request was made
        assert all(auth is None for _, auth in hostile.seen)


async def test_the_same_exchange_delivers_them_where_the_rule_allows(
    make_client: ClientFactory,
) -> None:
    """The control: listed with the credentials, the same realm receives them."""
    async with hostile_pair() as (hostile, recorder):
        client = make_client(hostile.host, credentials=ROBOT, token_realms={recorder.host})
        await client.ping()
        assert recorder.authorizations() == [BASIC]
    async with hostile_pair() as (hostile, recorder):
        hostile.challenge = f'Bearer realm="http://{hostile.host}/token"'  # its own host
        client = make_client(hostile.host, credentials=ROBOT)
        await client.ping()
        assert ("/token", BASIC) in [(p.split("?")[0], a) for p, a in hostile.seen]
        assert recorder.seen == []


async def test_without_credentials_a_token_is_asked_for_anonymously(
    make_client: ClientFactory,
) -> None:
    async with hostile_pair() as (hostile, recorder):
        client = make_client(hostile.host)
        await client.ping()
        assert recorder.seen
        assert recorder.authorizations() == []


async def test_a_realm_that_is_not_a_url_of_its_own_is_not_asked(
    make_client: ClientFactory,
) -> None:
    """The client would join a realm without a scheme to the registry's URL: ``@host/x`` would
    become ``http://registry@host/x``, a request to ``host``."""
    async with hostile_pair() as (hostile, recorder):
        hostile.challenge = f'Bearer realm="@{recorder.host}/token"'
        client = make_client(hostile.host)
        with pytest.raises(AuthError, match="not asked"):
            await client.ping()
        assert recorder.seen == []


async def test_an_anonymous_token_request_is_not_redirected(make_client: ClientFactory) -> None:
    """The rule holds for the realm the registry named, not for wherever that points next (a
    metadata service): anonymously, a token server's redirect is an error, never followed."""
    async with hostile_pair() as (hostile, recorder):
        hostile.challenge = f'Bearer realm="http://{hostile.host}/token"'
        hostile.token_redirect = f"http://{recorder.host}/latest/meta-data"
        client = make_client(hostile.host, retry=RetryPolicy(attempts=1))
        with pytest.raises(RegistryError, match="HTTP 307"):
            await client.ping()
        assert recorder.seen == []


@pytest.mark.parametrize(
    ("realm", "registry", "allowed"),
    [
        ("https://auth.example/token", "https://registry.example", True),
        ("https://gitlab.com/jwt/auth", "https://registry.gitlab.com", True),  # another host
        ("http://169.254.169.254/latest/meta-data", "https://registry.example", False),
        ("http://127.0.0.1:8080/token", "https://registry.example", False),
        ("http://10.0.0.5/token", "https://registry.example", False),
        ("http://[::1]/token", "https://registry.example", False),
        ("http://[fe80::1]/token", "https://registry.example", False),
        ("http://[::ffff:127.0.0.1]/token", "https://registry.example", False),
        ("http://2130706433/token", "https://registry.example", False),  # 127.0.0.1
        ("http://127.1/token", "https://registry.example", False),
        ("http://0x7f.1/token", "https://registry.example", False),
        ("http://localhost/token", "https://registry.example", False),
        ("http://api.localhost./token", "https://registry.example", False),
        ("http://10.0.0.5/token", "http://10.0.0.7:5000", True),  # the registry is inside too
        ("http://127.0.0.1:5001/token", "http://127.0.0.1:5000", True),
        ("http://auth.svc/token", "http://registry.svc:5000", True),
        # Inside, but not where the registry is: a private registry's realm on its host's
        # loopback or on the metadata service.
        ("http://127.0.0.1:8080/token", "http://10.0.0.7:5000", False),
        ("http://169.254.169.254/latest", "http://10.0.0.7:5000", False),
        # The same written as IPv4-mapped IPv6, where a dual-stack socket connects.
        ("http://[::ffff:169.254.169.254]/latest", "http://10.0.0.7:5000", False),
        ("http://[::ffff:a9fe:a9fe]/latest", "http://10.0.0.7:5000", False),
        ("http://[::ffff:127.0.0.1]:8080/token", "http://10.0.0.7:5000", False),
        ("http://[::ffff:127.0.0.1]:5001/token", "http://127.0.0.1:5000", True),
        # IPv4 carried in IPv6, where a translator or tunnel delivers it: NAT64 (well-known and
        # local-use prefixes), 6to4, IPv4-compatible. Read as the IPv4 address's network.
        ("http://[64:ff9b::a9fe:a9fe]/latest", "http://10.0.0.7:5000", False),
        ("http://[64:ff9b::169.254.169.254]/latest", "https://registry.example", False),
        ("http://[64:ff9b::7f00:1]:8080/token", "http://10.0.0.7:5000", False),
        ("http://[64:ff9b:1::a9fe:a9fe]/latest", "http://10.0.0.7:5000", False),
        ("http://[2002:a9fe:a9fe::1]/latest", "http://10.0.0.7:5000", False),
        ("http://[2002:7f00:1::1]:8080/token", "https://registry.example", False),
        ("http://[::a9fe:a9fe]/latest", "http://10.0.0.7:5000", False),
        ("http://[::127.0.0.1]:8080/token", "https://registry.example", False),
        ("http://[64:ff9b::a00:5]/token", "https://registry.example", False),  # 10.0.0.5
        ("http://[64:ff9b::a00:5]/token", "http://10.0.0.7:5000", True),  # inside too
        ("https://[64:ff9b::808:808]/token", "https://registry.example", True),  # 8.8.8.8
        ("https://[2002:808:808::1]/token", "https://registry.example", True),
        # A local-use prefix is this network's own translator: inside, whatever it carries.
        ("https://[64:ff9b:1::808:808]/token", "https://registry.example", False),
        ("https://[64:ff9b:1::808:808]/token", "http://10.0.0.7:5000", True),
        ("https://[64:ff9b:1:a9fe:a9:fe00::]/token", "http://10.0.0.7:5000", True),  # a /48
        ("https://[64:ff9b:1:a9fe:a9:fe00::]/token", "https://registry.example", False),
        ("http://[::ffff:0:a9fe:a9fe]/latest", "http://10.0.0.7:5000", False),  # SIIT
        # A connect to the unspecified address is local; metadata services outside 169.254/16.
        ("http://0.0.0.0:8080/token", "http://10.0.0.7:5000", False),
        ("http://0/token", "http://10.0.0.7:5000", False),
        ("http://[::]:8080/token", "http://10.0.0.7:5000", False),
        ("http://[fd00:ec2::254]/latest", "http://10.0.0.7:5000", False),
        ("http://100.100.100.200/latest", "http://10.0.0.7:5000", False),
        ("http://metadata.google.internal/x", "http://10.0.0.7:5000", False),
        ("http://metadata/x", "http://10.0.0.7:5000", False),
        ("http://metadata.goog/x", "https://registry.example", False),
        ("http://auth.internal/token", "http://10.0.0.7:5000", True),  # still a private realm
        ("https://\uff11\uff12\uff17.0.0.1/token", "https://registry.example", False),  # wide
        ("http://metadata.google.internal/x", "https://registry.example", False),
        ("http://kubernetes.default.svc/x", "https://registry.example", False),
        ("http://metadata/x", "https://registry.example", False),  # one label: an internal name
        ("http://a\x00b/token", "https://registry.example", False),
        ("/token", "https://registry.example", False),
        ("@evil.example/token", "https://registry.example", False),
        ("ftp://auth.example/token", "https://registry.example", False),
        ("https://user@auth.example/token", "https://registry.example", False),
        ("https://[::1/token", "https://registry.example", False),
    ],
)
def test_anonymous_realm_rule(realm: str, registry: str, allowed: bool) -> None:
    """Without credentials, any realm that is a URL of its own, but not one inside this
    server's network (a metadata service) when the registry is not there too."""
    assert anonymous_realm_allowed(realm, registry) is allowed


@pytest.mark.parametrize(
    ("target", "registry", "allowed"),
    [
        ("https://storage.example/blobs/x?sig=1", "https://registry.example", True),
        ("https://registry.example/v2/other", "https://registry.example", True),
        ("http://storage.example/blobs/x", "http://127.0.0.1:5000", True),  # public, from http
        ("http://10.0.0.5:9000/bucket/x", "http://10.0.0.7:5000", True),  # its own network
        ("http://localhost:9000/x", "http://127.0.0.1:5000", True),
        # Never from HTTPS to plain HTTP, even on the registry's own host.
        ("http://storage.example/blobs/x", "https://registry.example", False),
        ("http://registry.example/v2/x", "https://registry.example", False),
        ("http://10.0.0.5/x", "https://10.0.0.7:5000", False),
        # Into a network the registry is not on: this machine, a metadata service, inside.
        ("https://127.0.0.1:8443/x", "https://registry.example", False),
        ("https://169.254.169.254/latest", "https://registry.example", False),
        ("http://169.254.169.254/latest", "http://10.0.0.7:5000", False),
        ("https://[64:ff9b::a9fe:a9fe]/latest", "https://registry.example", False),
        ("https://10.0.0.5/x", "https://registry.example", False),
        ("https://minio.svc/x", "https://registry.example", False),
        ("http://127.0.0.1:6379/", "http://10.0.0.7:5000", False),
        ("file:///etc/passwd", "http://127.0.0.1:5000", False),
        ("https://[::1/x", "https://registry.example", False),
    ],
)
def test_redirect_rule(target: str, registry: str, allowed: bool) -> None:
    """A redirect goes where an anonymous realm may, and never from HTTPS to plain HTTP."""
    assert redirect_allowed(target, registry) is allowed


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (404, b"instance-secret-from-a-metadata-service", NotInRegistry),
        (500, b"instance-secret-from-a-metadata-service", RegistryError),
        (200, b"instance-secret-from-a-metadata-service", AuthError),
        (200, b'{"token": "' + b"x" * (2 * 1024 * 1024) + b'"}', AuthError),
    ],
)
async def test_what_a_realm_answers_does_not_come_back_in_errors(
    make_client: ClientFactory, status: int, body: bytes, error: type[Exception]
) -> None:
    """A realm may be any URL the registry chose (a metadata service, say): its answer is
    read up to 1 MiB and never quoted."""
    async with hostile_pair() as (hostile, recorder):
        recorder.answer = (status, body)
        client = make_client(hostile.host, retry=RetryPolicy(attempts=1))
        with pytest.raises(error) as caught:
            await client.ping()
        assert "instance-secret" not in str(caught.value)
        assert len(str(caught.value)) < 500


async def test_redirects_carry_no_credentials_to_another_server(
    make_client: ClientFactory,
) -> None:
    async with hostile_pair() as (hostile, recorder):
        # Basic credentials legitimately go to the registry's own host; its redirect elsewhere
        # must not take them along.
        hostile.challenge = 'Basic realm="hostile"'
        hostile.redirect = f"http://{recorder.host}/stolen"
        client = make_client(hostile.host, credentials=ROBOT)
        await client.ping()
        assert ("/v2/", BASIC) in hostile.seen
        assert recorder.seen == [("/stolen", None)]


@pytest.mark.parametrize(
    ("realm", "registry", "listed", "allowed"),
    [
        ("https://ghcr.io/token", "https://ghcr.io", (), True),
        ("https://GHCR.io:443/token", "https://ghcr.io", (), True),
        ("https://ghcr.io:8443/token", "https://ghcr.io", (), False),  # another port
        ("http://ghcr.io/token", "https://ghcr.io", (), False),  # a downgrade
        ("http://127.0.0.1:5000/token", "http://127.0.0.1:5000", (), True),
        ("http://127.0.0.1:5001/token", "http://127.0.0.1:5000", (), False),
        ("http://127.0.0.1:5001/token", "http://127.0.0.1:5000", ("127.0.0.1:5001",), True),
        ("https://gitlab.com/jwt/auth", "https://registry.gitlab.com", ("gitlab.com",), True),
        ("https://evil.example/jwt", "https://registry.gitlab.com", ("gitlab.com",), False),
        ("https://auth.docker.io/token", "https://registry-1.docker.io", (), True),
        ("https://auth.docker.io/token", "https://ghcr.io", (), False),
        ("https://user@ghcr.io/token", "https://ghcr.io", (), False),
        ("https://ghcr.io.evil.example/token", "https://ghcr.io", (), False),
        ("ftp://ghcr.io/token", "https://ghcr.io", (), False),
        ("/token", "https://ghcr.io", (), False),
        ("https://[::1/token", "https://ghcr.io", (), False),
    ],
)
def test_realm_rule(realm: str, registry: str, listed: tuple[str, ...], allowed: bool) -> None:
    assert realm_allowed(realm, registry, listed) is allowed
