"""What every room of Entropy Atlas shares: the error base (:mod:`entropy_atlas.errors`)."""
