"""Demos: letter sorting."""
