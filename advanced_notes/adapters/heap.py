"""Give freed heap memory back to the operating system after a costly, rare piece of work.

CPython frees an object's memory to the C allocator, and glibc's allocator keeps freed
chunks in the process for reuse: RSS stays at the high-water mark of the work. That is
right for the steady request path (its memory is reused at once) and wrong after a rare
spike, such as verifying a crafted file whose parser built thousands of objects before
the read/seek cap stopped it: each web worker that met one would carry megabytes of free
heap until it is recycled. glibc's ``malloc_trim(0)`` (``man 3 malloc_trim``) returns
every free page of its heaps to the kernel. ``ctypes``, which calls it, is imported on the
first call: loading it costs a web worker megabytes that the clean request path never needs.
"""

from __future__ import annotations

import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes.util  # see the module's docstring

    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to call
        return None
    return trim


def release_free_heap() -> bool:
    """Return the C heap's free pages to the operating system (glibc ``malloc_trim(0)``).

    It walks every free chunk of the heap: call it after rare work that allocated much and
    freed it, not per request.

    Returns:
        True when memory was released; False when nothing was or the C library has no
        ``malloc_trim`` (anything but glibc).
    """
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False
