"""Shared fixtures and builders for the golden-model tests (FINN is imported only here and in tests)."""
