"""Test doubles shared across test folders: the fake Asterisk (FastAGI) and its fixtures."""
