"""Tests of packaging/: bundle, desktop files, least-privilege policies."""
