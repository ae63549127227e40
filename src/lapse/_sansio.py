"""Drivers for operations written once, as generators (sans-I/O).

An operation yields the I/O it needs (a step), gets each result sent back, or the
exception it raised thrown in, and returns its own result. `drive` runs one with a
plain function for the steps, `adrive` with a coroutine function: the Redis store and
the session manager each have one operation per method and two faces on top.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Generator
from typing import Any, TypeVar


T = TypeVar("T")
Op = Generator[Any, Any, T]


def drive(op: Op[T], run: Callable[[Any], Any], catch: type[Exception]) -> T:
    """Run *op*, doing each step with ``run(step)``; a *catch* error goes back into *op*."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = op.send(reply) if error is None else op.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        reply = error = None
        try:
            reply = run(step)
        except catch as e:
            error = e


async def adrive(op: Op[T], run: Callable[[Any], Awaitable[Any]], catch: type[Exception]) -> T:
    """`drive`, with each step awaited: ``await run(step)``."""
    reply: Any = None
    error: Exception | None = None
    while True:
        try:
            step = op.send(reply) if error is None else op.throw(error)
        except StopIteration as done:
            return done.value  # type: ignore[no-any-return]
        reply = error = None
        try:
            reply = await run(step)
        except catch as e:
            error = e
