"""The figures of the check modules, pure functions of the measurements a check saved (one module
per check module that draws more than one figure)."""
