"""What a principal may do: the roles its bindings give it (by name or by group), as permissions."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from catalog.api.access.permissions import METHODS, ROLE_PERMISSIONS, Permission
from catalog.app.auth_config import Binding
from catalog.principals import Principal


class Authorizer:
    def __init__(self, bindings: Sequence[Binding]) -> None:
        self._by_principal: dict[str, set[Permission]] = defaultdict(set)
        self._by_group: dict[str, set[Permission]] = defaultdict(set)
        for binding in bindings:
            granted = ROLE_PERMISSIONS[binding.role]
            for name in binding.principals:
                self._by_principal[name] |= granted
            for group in binding.groups:
                self._by_group[group] |= granted

    def permissions(self, principal: Principal) -> frozenset[Permission]:
        granted = set(self._by_principal.get(str(principal), ()))
        for group in principal.groups:
            granted |= self._by_group.get(group, set())
        return frozenset(granted)

    def allows(self, principal: Principal, method: str) -> bool:
        """Deny by default: a method without a table entry is allowed to no one."""
        return self.grants(principal, METHODS.get(method))

    def grants(self, principal: Principal, needed: Permission | None) -> bool:
        """Whether ``principal`` holds ``needed`` (None, no table entry: never)."""
        return needed is not None and (
            needed is Permission.OPEN or needed in self.permissions(principal)
        )
