"""Runnable jobs of clspec: the command line, configs, data loading, saving results.

`theory/` holds the mathematics; this package turns it into checks, runs and files.
"""
