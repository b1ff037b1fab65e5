"""A process's access control, built once from the serve config's ``auth`` section and shared
by the gRPC interceptor and every HTTP listener: one OIDC key cache and one cache of verified
tokens, so a token verified on one port is not fetched for or verified again on another.

    access = Access(config.auth)
    AccessInterceptor(access); access_middleware(access)
"""

from __future__ import annotations

from catalog.api.access.authenticate import Authenticator
from catalog.api.access.authorize import Authorizer
from catalog.app.auth_config import AuthSettings


class Access:
    """With ``settings`` None (no ``auth`` section) there is nothing to check: every call runs
    as the anonymous principal (the listeners' exposure rule keeps that to loopback)."""

    def __init__(self, settings: AuthSettings | None) -> None:
        self.settings = settings
        self.authenticator = Authenticator(settings) if settings is not None else None
        self.authorizer = Authorizer(settings.bindings) if settings is not None else None
