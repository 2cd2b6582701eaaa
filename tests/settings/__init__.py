"""Tests: settings."""
