"""Dunning's shell: command line, settings, audit store and the embedded local stack.

The domain lives in the top-level packages `schemas`, `workflows` and `activities`;
this package holds everything that connects them to the outside world.
"""
