"""hwcsp stage package: sim."""
