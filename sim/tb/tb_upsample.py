"""cocotb tests of sim/rtl/upsample.sv: the shared stream tests, driven by the golden-derived config."""

from sim.tb.stream_tests import reset_mid_frame, stall_patterns, timing

__all__ = ["reset_mid_frame", "stall_patterns", "timing"]
