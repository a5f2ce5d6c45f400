"""hwcsp stage package: hls."""
