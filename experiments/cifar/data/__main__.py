"""``python -m experiments.cifar.data PATH``: load every split, print sizes and times (fills the cache)."""

import sys

from experiments.cifar.data import main

sys.exit(main())
