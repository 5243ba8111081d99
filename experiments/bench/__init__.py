"""``clspec bench``: benchmarks of the CIFAR pipeline on this machine (the SimCLR and fine-tuning steps
against a PyTorch reference, the Jacobian Gram, the convolution layout)."""
