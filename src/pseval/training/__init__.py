"""Activation streams and the SAE trainer."""
