"""What every job of clspec stands on: run folders and atomic writes (``runs``), typed command-line
options (``argtypes``), one plot style (``plotting``), timers and the matmul rate (``timing``)."""
