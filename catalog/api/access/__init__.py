"""Access control at the API edge: who is calling (static tokens, OIDC JWTs, mTLS certificates),
what each role may call (one table of every RPC, deny by default), and one interceptor that
runs each call as its caller. Configured by the serve config's ``auth`` section."""

from typing import TYPE_CHECKING

from catalog.lazy import lazy_exports

if TYPE_CHECKING:
    from catalog.api.access.control import Access
    from catalog.api.access.http import access_middleware
    from catalog.api.access.interceptor import AccessInterceptor
    from catalog.api.access.permissions import ENDPOINTS, METHODS, ROLE_PERMISSIONS, Permission

__all__ = [
    "ENDPOINTS",
    "METHODS",
    "ROLE_PERMISSIONS",
    "Access",
    "AccessInterceptor",
    "Permission",
    "access_middleware",
]
__getattr__ = lazy_exports(
    __name__,
    {
        "Access": "control",
        "AccessInterceptor": "interceptor",
        "ENDPOINTS": "permissions",
        "METHODS": "permissions",
        "access_middleware": "http",
        "ROLE_PERMISSIONS": "permissions",
        "Permission": "permissions",
    },
)
