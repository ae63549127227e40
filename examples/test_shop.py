"""The shop's test, as the FastAPI tutorial writes it: pytest and httpx, over https."""

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
    # https: the session cookie is Secure, and a client on http would never send it back.
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        assert (await client.post("/cart/apple")).status_code == 401
        await client.post("/login", params={"name": "alice"})
        for _ in range(5):
            assert (await client.get("/price/apple")).json()["price"] == 7.5
        assert Prices.lookups == 1  # five requests, five repositories, one slow call
        cart = (await client.post("/cart/apple")).json()
        assert cart == {"cart": ["apple"], "total": 7.5}
        await client.post("/logout")
        assert (await client.post("/cart/apple")).status_code == 401
