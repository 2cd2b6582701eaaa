"""Tests: processing."""
