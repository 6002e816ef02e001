"""A bounded, thread-safe memo for the serving state."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable


class Memo:
    """A bounded, thread-safe LRU map. Keys must name everything the value depends on."""

    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable):
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        return None

    def put(self, key: Hashable, value) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def values(self) -> list:
        """The kept values, least recently used first (a snapshot)."""
        with self._lock:
            return list(self._items.values())

    def __len__(self) -> int:
        return len(self._items)
