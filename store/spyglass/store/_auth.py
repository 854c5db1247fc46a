"""Bearer-token authentication shared by the HTTP app and the gRPC receiver.

A token is either the global one (every tenant) or scoped to one tenant. With no token configured the
store is open (it then binds loopback only unless the user passes ``--insecure``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Final

from spyglass.store._errors import Forbidden, Unauthorized

ALL_TENANTS: Final = None
COOKIE: Final = "spyglass_token"
"""Cookie the web UI may set after a token login (browsers cannot send a bearer header on links)."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: ``tenant`` is ``None`` for access to every tenant."""

    tenant: str | None


class Authenticator:
    def __init__(self, token: str | None, tenant_tokens: dict[str, str]) -> None:
        self._token = token
        self._tenant_tokens = dict(tenant_tokens)

    @property
    def enabled(self) -> bool:
        return bool(self._token or self._tenant_tokens)

    def check(self, presented: str | None) -> Principal:
        """The principal of a presented token; raises :class:`Unauthorized` when it is missing or wrong."""
        if not self.enabled:
            return Principal(ALL_TENANTS)
        if not presented:
            raise Unauthorized("authentication required: send Authorization: Bearer <token>")
        # Compare against every token in constant time, so timing does not say which one nearly matched.
        found: Principal | None = None
        if self._token and hmac.compare_digest(presented.encode(), self._token.encode()):
            found = Principal(ALL_TENANTS)
        for token, tenant in self._tenant_tokens.items():
            if hmac.compare_digest(presented.encode(), token.encode()) and found is None:
                found = Principal(tenant)
        if found is None:
            raise Unauthorized("invalid token")
        return found

    @staticmethod
    def bearer(header: str | None) -> str | None:
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" and value.strip() else None


def effective_tenant(principal: Principal, requested: str | None) -> str | None:
    """The tenant a request acts as: a scoped token's own tenant; another one is :class:`Forbidden`."""
    if principal.tenant is None:
        return requested or None
    if requested and requested != principal.tenant:
        raise Forbidden(f"this token may only use tenant {principal.tenant!r}")
    return principal.tenant
