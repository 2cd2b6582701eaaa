"""A seekable, read-only file object over ranged reads (HTTP ``Range`` GETs).

Parsers such as mutagen need ``read``/``seek``/``tell`` on a file; an object in a
bucket offers ``GET`` with ``Range: bytes=a-b``. This adapter fetches fixed-size
blocks on demand and keeps a few of them, so verifying a 100 MiB clip reads only the
blocks the parser touches (its header, an index at the end), never the whole object.
Pure: the fetch function is injected, nothing here knows S3.
"""

from __future__ import annotations

import io
import time
from collections import OrderedDict
from collections.abc import Callable

#: Block size of each ranged GET, bytes. 64 KiB holds every container's header.
DEFAULT_BLOCK_BYTES = 64 * 1024
#: Blocks kept in memory (LRU), so re-reads near each other cost no request.
DEFAULT_CACHED_BLOCKS = 8


class ReadBudgetExceeded(IOError):
    """The parser wanted more bytes than the reader may fetch."""


class ProbeTooComplex(IOError):
    """The parser made more read/seek calls than allowed, or ran past the deadline.

    Attributes:
        calls: read/seek calls made when it was raised; ``max_calls``: the cap (None when
            the deadline was hit first); ``seconds``: the time allowed (None when the cap
            was hit first).
    """

    def __init__(self, message: str, *, calls: int, max_calls: int | None, seconds: float | None):
        super().__init__(message)
        self.calls = calls
        self.max_calls = max_calls
        self.seconds = seconds


class RangedReader(io.RawIOBase):
    """Read-only, seekable view of ``size`` bytes fetched in blocks.

    Args:
        fetch: ``fetch(start, end)`` returns bytes ``start..end`` inclusive (an HTTP
            Range); it may raise, and the error propagates to the parser's caller.
        size: total size in bytes (from HEAD).
        block_bytes: bytes per fetch.
        max_fetch_bytes: total bytes this reader may fetch before raising
            :class:`ReadBudgetExceeded` (bounds the bytes of one verification).
        max_calls: ``read``/``readinto``/``seek`` calls this reader serves before raising
            :class:`ProbeTooComplex` (bounds the *work*: parsers do a few calls and build
            an object or two per header element, so a file of millions of tiny elements
            within the byte budget is stopped after this many, and the memory they hold
            is bounded with it). None: no cap.
        max_seconds: parsing time (seconds, monotonic clock, from construction, *not*
            counting the time spent in ``fetch``: a slow store is bounded by its own
            timeouts and the byte budget) after which the next call raises
            :class:`ProbeTooComplex`. None: no deadline.

    Attributes:
        bytes_fetched: bytes fetched so far; ``requests``: fetch calls so far; ``calls``:
            read/seek calls so far.
        failure: the first exception raised by ``fetch`` or by a budget check, else None.
            Parsers catch and re-wrap I/O errors freely (mutagen turns them into its own
            errors, enzyme into others), so the caller asks the reader, not the exception,
            whether a failure was the store's (or the budget's) rather than the bytes'.

    Every read is capped at what the budget still allows before anything is allocated: a
    parser asking for the length a crafted header claims (an ID3 tag "of 100 MiB") gets
    :class:`ReadBudgetExceeded` at once instead of a buffer of that size. Once a budget is
    exceeded, every later call raises it again, so a parser that swallows the error cannot
    carry on walking.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        size: int,
        *,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        max_fetch_bytes: int | None = None,
        cached_blocks: int = DEFAULT_CACHED_BLOCKS,
        max_calls: int | None = None,
        max_seconds: float | None = None,
    ):
        super().__init__()
        self._fetch = fetch
        self.size = size
        self.block_bytes = block_bytes
        self.max_fetch_bytes = max_fetch_bytes
        self._cached_blocks = cached_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0
        self.bytes_fetched = 0
        self.requests = 0
        self.failure: BaseException | None = None
        self.calls = 0
        self.max_calls = max_calls
        self.max_seconds = max_seconds
        self._deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self._fetch_seconds = 0.0  # moves the deadline: waiting for the store is not parsing

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def _count_call(self) -> None:
        """Count one read/seek call; raise when a budget is (or was) exceeded."""
        if isinstance(self.failure, ProbeTooComplex | ReadBudgetExceeded):
            raise self.failure
        self.calls += 1
        if self.max_calls is not None and self.calls > self.max_calls:
            self._too_complex(f"more than {self.max_calls} read/seek calls", seconds=None)
        if self._deadline is not None and time.monotonic() - self._fetch_seconds > self._deadline:
            self._too_complex(f"more than {self.max_seconds} s", seconds=self.max_seconds)

    def _too_complex(self, why: str, *, seconds: float | None) -> None:
        max_calls = None if seconds is not None else self.max_calls
        exc = ProbeTooComplex(f"parsing needed {why}", calls=self.calls, max_calls=max_calls, seconds=seconds)
        self.failure = self.failure or exc
        raise exc

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._count_call()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        position = base + offset
        if position < 0:
            raise ValueError("negative seek position")
        self._pos = position
        return position

    def _block(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is not None:
            self._blocks.move_to_end(index)
            return block
        start = index * self.block_bytes
        end = min(start + self.block_bytes, self.size) - 1
        if self.max_fetch_bytes is not None and self.bytes_fetched + (end - start + 1) > self.max_fetch_bytes:
            self._over_budget()
        started = time.monotonic()
        try:
            block = self._fetch(start, end)
        except Exception as exc:
            self.failure = self.failure or exc
            raise
        finally:
            self._fetch_seconds += time.monotonic() - started
        self.requests += 1
        self.bytes_fetched += len(block)
        self._blocks[index] = block
        if len(self._blocks) > self._cached_blocks:
            self._blocks.popitem(last=False)
        return block

    def _over_budget(self) -> None:
        exc = ReadBudgetExceeded(f"reading more than {self.max_fetch_bytes} bytes")
        self.failure = self.failure or exc
        raise exc

    def readable_bytes(self, start: int, length: int) -> int:
        """How many of ``length`` bytes from ``start`` can be read within the budget.

        Cached blocks cost nothing; every other block costs its size. Used to refuse a
        read before allocating for it (no budget means everything up to the end).
        """
        length = max(0, min(length, self.size - start))
        if self.max_fetch_bytes is None or length == 0:
            return length
        remaining = self.max_fetch_bytes - self.bytes_fetched
        first, last = start // self.block_bytes, (start + length - 1) // self.block_bytes
        readable = 0
        for index in range(first, last + 1):
            block_start = index * self.block_bytes
            block_end = min(block_start + self.block_bytes, self.size)
            if index not in self._blocks:
                remaining -= block_end - block_start
                if remaining < 0:
                    break
            readable = min(block_end, start + length) - start
        return readable

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        self._count_call()
        return self._readinto(buffer)

    def _readinto(self, buffer: bytearray | memoryview) -> int:
        if self._pos >= self.size:
            return 0
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), self.size - self._pos)
        done = 0
        while done < wanted:
            index, offset = divmod(self._pos, self.block_bytes)
            block = self._block(index)
            chunk = block[offset : offset + (wanted - done)]
            if not chunk:  # the store returned less than HEAD said: treat as end of data
                break
            view[done : done + len(chunk)] = chunk
            done += len(chunk)
            self._pos += len(chunk)
        return done

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes from the current position (all the rest when negative).

        Raises:
            ReadBudgetExceeded: the read cannot be served within the budget; raised
                before any buffer is allocated, so memory stays bounded by the budget.
            ProbeTooComplex: over the call cap or past the deadline.
        """
        self._count_call()
        if size is None or size < 0:
            size = self.size - self._pos
        wanted = max(0, min(size, self.size - self._pos))
        # Counting blocks costs one loop step per 64 KiB; cap it at the budget's worth first.
        if self.max_fetch_bytes is not None:
            ceiling = self.max_fetch_bytes + (self._cached_blocks + 2) * self.block_bytes
            if wanted > ceiling or self.readable_bytes(self._pos, wanted) < wanted:
                self._over_budget()
        buffer = bytearray(wanted)
        return bytes(memoryview(buffer)[: self._readinto(buffer)])
