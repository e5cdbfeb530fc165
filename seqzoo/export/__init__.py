"""Exporting models for serving. TensorFlow only: TensorFlow is imported when an export runs."""

from seqzoo.export.savedmodel import export_savedmodel

__all__ = ["export_savedmodel"]
