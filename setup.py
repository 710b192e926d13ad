"""Shim so `python setup.py develop` and old tooling keep working; metadata lives in pyproject.toml."""
from setuptools import setup

setup()
