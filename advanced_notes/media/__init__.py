"""The media engine of the processing stage: PyAV (FFmpeg) in, renditions and measurements out.

Only the worker and tools import this package (import-linter keeps PyAV and numpy out of
the web workers). See docs/processing.md.
"""

from advanced_notes.media.engine import process_file
from advanced_notes.media.results import Loudness, MediaError, MediaLimits, MediaResult, PeaksFile, Rendition

__all__ = ["Loudness", "MediaError", "MediaLimits", "MediaResult", "PeaksFile", "Rendition", "process_file"]
