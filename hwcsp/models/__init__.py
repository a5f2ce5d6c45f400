"""Registered architectures; importing a module registers its models."""
