"""Tests: sweeper."""
