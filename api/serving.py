"""How uvicorn serves trlgate, wherever it is started (`python -m api`, `trlgate up`, the image)."""

from __future__ import annotations

from typing import Any

from config import Settings


def proxy_options(settings: Settings) -> dict[str, Any]:
    """uvicorn trusts X-Forwarded-For from 127.0.0.1 unless told otherwise: any local process could
    then claim any address and dodge the per-address sign-in limit. Only the proxies listed in
    TRLGATE_FORWARDED_ALLOW_IPS may say who the client is; none by default."""
    allowed = settings.forwarded_allow_ips.strip()
    if not allowed:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": allowed}
