"""The CIFAR experiments of the paper (Section 5, Tables 1-3): data loading, label noise, SimCLR pre-training and training on noisy labels.

``data`` reads CIFAR-10/100 (official python folders or their .tar.gz), image folders and the
CIFAR-10N/100N label files; ``noise`` makes seeded noisy labels with their transition matrix and
hash; ``safe_pickle`` is the restricted unpickler that every pickled input goes through.
``models``, ``augment`` and ``steps`` are the networks, SimCLR's augmentations and the SimCLR step;
``train`` holds the training loops, ``configs`` the presets, ``checkpoint`` the atomic checkpoints,
``parallel`` the data-parallel mesh and ``cli`` the ``clspec cifar`` commands. ``methods`` holds the
training methods on noisy labels (cross-entropy, ELR, Mixup, Crust) behind one seam; ``reproduce``
the paper's Tables 1-3 as resumable grids of runs; ``figures`` Fig. 1, 2c-d and 3 from saved runs.
"""
