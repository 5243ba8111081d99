"""``clspec spectrum`` and ``clspec jacobian``: the theory's quantities measured on real networks
(Theorem 4.3, Eq. 25, Theorem 4.5 on representations; App. C's Jacobian spectra, Fig. 2, Table 4)."""
