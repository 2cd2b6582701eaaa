"""Tests: completion."""
