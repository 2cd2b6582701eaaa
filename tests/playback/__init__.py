"""Tests: playback."""
