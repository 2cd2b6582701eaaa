"""Tests: multipart."""
