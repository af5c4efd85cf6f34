"""The ``dropout-lab`` command line."""
