"""Fakes, seeds and servers that more than one test package uses."""
