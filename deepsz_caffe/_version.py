"""The package version, in one place (pyproject reads it; the .dsz header records it)."""
__version__ = "0.1.0"
