"""Adapters to deployment targets; `registry.py` maps a target type to its class."""
