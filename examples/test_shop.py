"""The shop's test, as the FastAPI tutorial writes it: pytest and httpx."""

from __future__ import annotations

import httpx
import pytest

from shop import Prices, app


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # the event loop lapse's stores run on


@pytest.mark.anyio
async def test_cart_and_cached_prices() -> None:
    transport = httpx.ASGITransport(app=app)
    # https: the session cookie is Secure, a client on http never sends it
    url = "https://testserver"
    async with httpx.AsyncClient(transport=transport, base_url=url) as client:
        assert (await client.post("/cart/apple")).status_code == 401
        await client.post("/login", params={"name": "alice"})
        for _ in range(5):
            assert (await client.get("/price/apple")).json()["price"] == 7.5
        assert Prices.lookups == 1  # 5 requests, 5 repositories, 1 slow call
        cart = (await client.post("/cart/apple")).json()
        assert cart == {"cart": ["apple"], "total": 7.5}
        await client.post("/logout")
        assert (await client.post("/cart/apple")).status_code == 401
