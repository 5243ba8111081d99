"""``clspec cache list|clear``: the entries of the decoded-image cache (:mod:`experiments.cifar.data.cache`),
their sizes and last use, or remove them all."""

from __future__ import annotations

import time

from experiments.cifar.data.cache import DEFAULT_MAX_MB, cache_dir, clear, entries, max_bytes


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "cache", help="list or clear the cache of decoded image folders",
        description=f"Decoded image folders are cached in $CLSPEC_CACHE (default ~/.cache/clspec), keyed by "
                    f"content and bounded by $CLSPEC_CACHE_MAX_MB megabytes (default {DEFAULT_MAX_MB}); the "
                    "least recently used entries go first.",
    )
    p.add_argument("action", choices=("list", "clear"), help="list: show the entries; clear: remove them all")
    p.set_defaults(func=main)


def main(args) -> int:
    if args.action == "clear":
        removed = clear()
        print(f"removed {len(removed)} files from {cache_dir()}")
        return 0
    items = entries()
    total = sum(e["bytes"] for e in items)
    for e in items:
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e["used"]))
        print(f"{e['bytes'] / 2**20:8.1f} MB  last used {used}  {e['file'].name}  <- {e['source']}")
    print(f"{len(items)} entries, {total / 2**20:.1f} MB of {max_bytes() / 2**20:.0f} MB in {cache_dir()}")
    return 0
