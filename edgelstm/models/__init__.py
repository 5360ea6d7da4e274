"""Torch models: loading users' files and the built-in zoo."""
