"""S3 multipart upload arithmetic (pure: no boto3, no Flask).

S3's limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html): every
part but the last is 5 MiB to 5 GiB, the last may be smaller, at most 10,000 parts per
upload, part numbers 1..10,000. The server chooses the part size from the declared total
and derives every part's exact length from it, so a presigned part URL can bind its
``Content-Length`` without trusting the client.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
#: S3's smallest part (all but the last).
MIN_PART_BYTES = 5 * MIB
#: S3's largest part.
MAX_PART_BYTES = 5 * 1024 * MIB
#: S3's most parts per upload.
MAX_PARTS = 10_000


@dataclass(frozen=True)
class PartPlan:
    """How ``total_bytes`` is cut: ``part_count`` parts of ``part_size`` bytes, the last shorter or equal."""

    total_bytes: int
    part_size: int
    part_count: int

    def part_length(self, part_number: int) -> int:
        """Exact length in bytes of part ``part_number`` (1-based).

        Raises:
            ValueError: ``part_number`` is outside 1..part_count.
        """
        if not 1 <= part_number <= self.part_count:
            raise ValueError(f"part number must be between 1 and {self.part_count}")
        if part_number < self.part_count:
            return self.part_size
        return self.total_bytes - self.part_size * (self.part_count - 1)

    def part_range(self, part_number: int) -> tuple[int, int]:
        """``(start, end_exclusive)`` byte offsets of part ``part_number`` in the file."""
        start = (part_number - 1) * self.part_size
        return start, start + self.part_length(part_number)


def plan_parts(total_bytes: int, preferred_part_size: int) -> PartPlan:
    """Cut ``total_bytes`` into parts of ``preferred_part_size``, grown when 10,000 would not do.

    Args:
        total_bytes: the declared object size (>= 1).
        preferred_part_size: the configured part size (MULTIPART_PART_SIZE_BYTES), bytes,
            5 MiB..5 GiB.
    Returns:
        the plan; the part size is the preferred one, or the smallest whole MiB that fits
        the object in 10,000 parts when the preferred one does not.
    Raises:
        ValueError: a size outside S3's limits (total over 10,000 x 5 GiB, part size
            under 5 MiB or over 5 GiB).
    """
    if not MIN_PART_BYTES <= preferred_part_size <= MAX_PART_BYTES:
        raise ValueError(f"part size must be between {MIN_PART_BYTES} and {MAX_PART_BYTES} bytes")
    if total_bytes < 1 or total_bytes > MAX_PARTS * MAX_PART_BYTES:
        raise ValueError(f"a multipart object is 1 to {MAX_PARTS * MAX_PART_BYTES} bytes")
    smallest = -(-total_bytes // MAX_PARTS)  # ceil: the part size that fits exactly 10,000 parts
    part_size = max(preferred_part_size, -(-smallest // MIB) * MIB)
    return PartPlan(total_bytes, part_size, max(1, -(-total_bytes // part_size)))
