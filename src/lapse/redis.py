"""`RedisStore`: lapse on a Redis server or Redis Cluster (``pip install 'lapse[redis]'``)."""

from __future__ import annotations

from ._redis import JSON, JSONSerializer, PickleSerializer, RedisStore, Serializer
from ._redis_sync import SyncRedisStore


__all__ = [
    "JSON",
    "JSONSerializer",
    "PickleSerializer",
    "RedisStore",
    "Serializer",
    "SyncRedisStore",
]
