"""hwcsp stage package: quant."""
