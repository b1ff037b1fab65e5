"""Domain exceptions of the OCI layer.

Everything the OCI layer raises derives from :class:`OCIError`; the CLI and the gRPC edge map these
once to exit codes and status codes.
"""

from __future__ import annotations


class OCIError(Exception):
    """Base of every error raised by ``catalog.oci``."""


class InvalidReference(OCIError, ValueError):
    """An image reference does not follow the reference grammar."""


class InvalidDigest(OCIError, ValueError):
    """A digest string is malformed or uses an unsupported algorithm."""


class DigestMismatch(OCIError):
    """Content does not hash to the digest it was asked for or announced with."""

    def __init__(self, expected: str, actual: str, what: str = "content") -> None:
        super().__init__(f"{what} digest mismatch: expected {expected}, got {actual}")
        self.expected = expected
        self.actual = actual


class SizeMismatch(OCIError):
    """Content is longer or shorter than its descriptor says."""

    def __init__(self, expected: int, actual: int, what: str = "content") -> None:
        super().__init__(f"{what} size mismatch: expected {expected} bytes, got {actual}")
        self.expected = expected
        self.actual = actual


class ManifestTooLarge(OCIError):
    """A manifest exceeds the configured size limit (checked while reading)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"manifest larger than the {limit}-byte limit")
        self.limit = limit


class InvalidManifest(OCIError, ValueError):
    """A manifest is not valid JSON or breaks the image/distribution spec."""


class UnsupportedMediaType(InvalidManifest):
    """A manifest media type we refuse (schema 1, unknown types)."""


class LayoutError(OCIError):
    """An OCI image-layout directory is missing, malformed, or a path escapes it."""


class AuthError(OCIError):
    """Credentials could not be found, loaded, or exchanged for a token."""


class NotAsked(AuthError):
    """A registry the server may not ask: the catalog does not store it, and it is not on a
    public network (a caller named it). A denial, not a registry's failure."""


class RegistryError(OCIError):
    """A registry answered with an error.

    ``code`` is the first distribution error code of the body (``MANIFEST_UNKNOWN``…) when there is
    one; ``status`` is the HTTP status.
    """

    default_code = "UNKNOWN"

    def __init__(
        self, message: str, *, status: int = 0, code: str | None = None, url: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code or self.default_code
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.url})" if self.url else ""
        status = f"HTTP {self.status} " if self.status else ""
        return f"{status}{self.code}: {self.message}{where}"


class NotInRegistry(RegistryError):
    """The registry does not have the thing asked for (HTTP 404; the catalog's own "not found" is
    :class:`catalog.errors.NotFound`)."""

    default_code = "NOT_FOUND"


class ManifestUnknown(NotInRegistry):
    default_code = "MANIFEST_UNKNOWN"


class BlobUnknown(NotInRegistry):
    default_code = "BLOB_UNKNOWN"


class NameUnknown(NotInRegistry):
    default_code = "NAME_UNKNOWN"


class Unauthorized(RegistryError):
    default_code = "UNAUTHORIZED"


class Denied(RegistryError):
    default_code = "DENIED"


class TooManyRequests(RegistryError):
    default_code = "TOOMANYREQUESTS"


class RegistryUnavailable(RegistryError):
    """The registry could not be reached, timed out, or answered 5xx after every retry."""

    default_code = "UNAVAILABLE"


class BadResponse(RegistryUnavailable):
    """The registry answered what the client refuses: a body over its cap, one that is not JSON,
    a redirect or pagination loop, a trickle, a broken body. A registry misbehaving is, for
    whoever called, a registry not available."""

    default_code = "BAD_RESPONSE"


class Rejected(RegistryError):
    """The registry refused what we pushed (invalid manifest, missing blobs, bad digest)."""

    default_code = "MANIFEST_INVALID"


class Unsupported(RegistryError):
    """The registry does not implement an endpoint (e.g. the referrers API)."""

    default_code = "UNSUPPORTED"


_BY_CODE: dict[str, type[RegistryError]] = {
    "MANIFEST_UNKNOWN": ManifestUnknown,
    "BLOB_UNKNOWN": BlobUnknown,
    "NAME_UNKNOWN": NameUnknown,
    "UNAUTHORIZED": Unauthorized,
    "DENIED": Denied,
    "TOOMANYREQUESTS": TooManyRequests,
    "UNSUPPORTED": Unsupported,
    "MANIFEST_INVALID": Rejected,
    "MANIFEST_BLOB_UNKNOWN": Rejected,
    "DIGEST_INVALID": Rejected,
    "SIZE_INVALID": Rejected,
    "BLOB_UPLOAD_INVALID": Rejected,
}


def error_for(status: int, code: str | None, message: str, url: str) -> RegistryError:
    """Choose the exception class for a registry error answer."""
    cls: type[RegistryError] = RegistryError
    if code in _BY_CODE:
        cls = _BY_CODE[code]
    elif status == 401:
        cls = Unauthorized
    elif status == 403:
        cls = Denied
    elif status == 404:
        cls = NotInRegistry
    elif status == 429:
        cls = TooManyRequests
    elif status >= 500:
        cls = RegistryUnavailable
    return cls(message, status=status, code=code, url=url)
