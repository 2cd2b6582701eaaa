"""Tests: foundation."""
