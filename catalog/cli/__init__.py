"""The ``xregistry`` command line."""
