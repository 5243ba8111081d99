"""The claim ledger: ``clspec verify`` (``verify``) runs the checks (``checks/``), judges their rows by
the rules of ``claims``, draws their figures (``plots/``) and writes ``paper_checks.md`` (``render``)."""
