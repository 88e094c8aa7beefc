"""Readers and writers of SAE file formats."""
