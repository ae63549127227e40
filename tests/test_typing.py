"""Type checkers see through @cached and get_or_set: the original signatures are kept."""

from __future__ import annotations

import textwrap

from pathlib import Path

from mypy import api


SNIPPET = textwrap.dedent(
    """
    from lapse import MemoryStore, cached

    store = MemoryStore()

    @cached(store)
    async def fetch(user_id: int, *, verbose: bool = False) -> str:
        return str(user_id)

    @cached(store)
    def square(x: int) -> int:
        return x * x

    class Repo:
        @cached(store)
        async def name(self, user_id: int) -> str:
            return str(user_id)

    async def main() -> None:
        reveal_type(await fetch(1))
        reveal_type(square(2))
        reveal_type(await Repo().name(3))
        await fetch("one")
        square(2, 3)
        await Repo().name(user="x")
        n: int = await store.get_or_set("k", lambda: "text")
    """
)


def test_mypy_sees_the_signatures(tmp_path: Path) -> None:
    """Revealed types are the functions' own; wrong calls are errors."""
    path = tmp_path / "snippet.py"
    path.write_text(SNIPPET)
    out, _, _ = api.run([str(path), "--strict", "--no-incremental", "--no-error-summary"])
    found: dict[int, list[str]] = {}
    for line in out.splitlines():
        _, number, message = line.split(":", 2)
        found.setdefault(int(number), []).append(message.strip())
    source = SNIPPET.splitlines()

    def at(text: str) -> list[str]:
        return found.get(next(i for i, s in enumerate(source, 1) if text in s), [])

    assert at("reveal_type(await fetch(1))") == ['note: Revealed type is "str"']
    assert at("reveal_type(square(2))") == ['note: Revealed type is "int"']
    assert at("reveal_type(await Repo().name(3))") == ['note: Revealed type is "str"']
    assert 'incompatible type "str"; expected "int"' in at('await fetch("one")')[0]
    assert "Too many arguments" in at("square(2, 3)")[0]
    assert 'Unexpected keyword argument "user"' in at('Repo().name(user="x")')[0]
    assert any("error" in e for e in at('lambda: "text"'))
    assert all(
        "error" not in message
        for number, messages in found.items()
        for message in messages
        if number < next(i for i, s in enumerate(source, 1) if "reveal_type" in s)
    )
