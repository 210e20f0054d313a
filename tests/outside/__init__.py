"""A package of optimizers of its own, as a researcher's would be: the tests give them to
adamgen by their import paths (outside.signum:Signum, ...)."""
