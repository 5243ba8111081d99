"""CIFAR pipeline: data, label noise, networks, SimCLR pre-training and training on noisy labels."""
