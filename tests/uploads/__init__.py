"""Tests: uploads."""
