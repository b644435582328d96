"""Checks that an artifact still computes what the PyTorch model computes."""
