"""Bundles: collect, pack, verify and unpack an artifact set for a device."""
