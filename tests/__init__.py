"""Tests of rxtasks, mirroring the package."""
