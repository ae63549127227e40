"""Reference evictors for the model-based tests: the algorithms as their papers state
them, on plain lists, with no care for speed. The store's evictors must pick the same
victims, in the same order.

- SIEVE: Zhang et al., "SIEVE is Simpler than LRU", NSDI '24, Algorithm 1.
- S3-FIFO: Yang et al., "FIFO queues are all you need for cache eviction", SOSP '23,
  Algorithm 1 (small queue 10 %, ghost as large as main, move to main at 2 reads), with
  libCacheSim's one change: a new key goes to main while small is full and the cache not.
- W-TinyLFU: Einziger, Friedman and Manes, "TinyLFU", ACM ToS 2017, section 4 (window
  1 %, segmented main with 80 % protected), with lapse's own frequency sketch.
"""

from __future__ import annotations

from lapse.policies import FrequencySketch


class RefLRU:
    def __init__(self, capacity: int) -> None:
        self.capacity, self.keys = capacity, []  # type: ignore[var-annotated]

    def add(self, key: str) -> None:
        if key in self.keys:
            self.keys.remove(key)
        self.keys.append(key)

    def use(self, key: str) -> None:
        self.add(key)

    def remove(self, key: str) -> None:
        self.keys.remove(key)

    def victim(self) -> str | None:
        return self.keys[0] if len(self.keys) > self.capacity else None


class RefSieve:
    """queue[0] is the tail (oldest); the hand moves towards the head and wraps."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.queue: list[str] = []
        self.visited: set[str] = set()
        self.hand: str | None = None

    def add(self, key: str) -> None:
        if key in self.queue:
            self.visited.add(key)
        else:
            self.queue.append(key)

    def use(self, key: str) -> None:
        self.visited.add(key)

    def remove(self, key: str) -> None:
        i = self.queue.index(key)
        if self.hand == key:
            self.hand = self.queue[i + 1] if i + 1 < len(self.queue) else None
        self.queue.pop(i)
        self.visited.discard(key)

    def victim(self) -> str | None:
        if len(self.queue) <= self.capacity:
            return None
        i = 0 if self.hand is None else self.queue.index(self.hand)
        while self.queue[i] in self.visited:
            self.visited.discard(self.queue[i])
            i = (i + 1) % len(self.queue)
        self.hand = self.queue[i]
        return self.hand


class RefS3FIFO:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.small: list[str] = []
        self.main: list[str] = []
        self.ghost: list[str] = []
        self.freq: dict[str, int] = {}
        self.evicting: str | None = None

    def add(self, key: str) -> None:
        if key in self.freq:
            self.use(key)
        elif key in self.ghost or (
            len(self.small) >= max(self.capacity // 10, 1) and len(self.freq) < self.capacity
        ):  # libCacheSim's variant: to main while the cache is not yet full
            if key in self.ghost:
                self.ghost.remove(key)
            self.main.append(key)
            self.freq[key] = 0
        else:
            self.small.append(key)
            self.freq[key] = 0

    def use(self, key: str) -> None:
        self.freq[key] = min(self.freq[key] + 1, 3)

    def remove(self, key: str) -> None:
        if key in self.small:
            self.small.remove(key)
            if key == self.evicting:
                self.ghost.append(key)
                if len(self.ghost) > max(self.capacity * 9 // 10, 1):
                    self.ghost.pop(0)
        else:
            self.main.remove(key)
        self.evicting = None
        del self.freq[key]

    def victim(self) -> str | None:
        if len(self.freq) <= self.capacity:
            return None
        while True:
            if self.small and (len(self.small) >= max(self.capacity // 10, 1) or not self.main):
                key = self.small[0]
                if self.freq[key] >= 2:
                    self.small.pop(0)
                    self.main.append(key)
                    self.freq[key] = 0
                    continue
                self.evicting = key
                return key
            key = self.main[0]
            if self.freq[key] > 0:
                self.freq[key] -= 1
                self.main.append(self.main.pop(0))
                continue
            return key


class RefWTinyLFU:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.window: list[str] = []
        self.probation: list[str] = []
        self.protected: list[str] = []
        self.sketch = FrequencySketch(capacity)

    def size(self) -> int:
        return len(self.window) + len(self.probation) + len(self.protected)

    def add(self, key: str) -> None:
        if key in self.window or key in self.probation or key in self.protected:
            self.use(key)
            return
        self.sketch.increment(key)
        self.window.append(key)
        target = max(self.capacity // 100, 1)
        while len(self.window) > target and self.size() <= self.capacity and len(self.window) > 1:
            self.probation.append(self.window.pop(0))

    def use(self, key: str) -> None:
        self.sketch.increment(key)
        if key in self.window:
            self.window.remove(key)
            self.window.append(key)
        elif key in self.probation:
            self.probation.remove(key)
            self.protected.append(key)
            limit = self.capacity * 99 // 100 * 4 // 5
            while len(self.protected) > limit and len(self.protected) > 1:
                self.probation.append(self.protected.pop(0))
        else:
            self.protected.remove(key)
            self.protected.append(key)

    def remove(self, key: str) -> None:
        for queue in (self.window, self.probation, self.protected):
            if key in queue:
                queue.remove(key)

    def victim(self) -> str | None:
        if self.size() <= self.capacity:
            return None
        main = self.probation or self.protected
        if not main:
            return self.window[0]
        if self.window and len(self.window) > max(self.capacity // 100, 1):
            candidate, victim = self.window[0], main[0]
            if self.sketch.frequency(candidate) > self.sketch.frequency(victim):
                self.window.pop(0)
                self.probation.append(candidate)
                return victim
            return candidate
        return main[0]
