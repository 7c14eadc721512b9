"""Tests of the cache backend."""
