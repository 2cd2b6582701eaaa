"""Tests: events."""
