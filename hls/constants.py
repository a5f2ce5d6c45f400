"""Constants of the FINN target that several hls modules share, defined here once.

The ONNX domain of FINN's HW layers is golden's (``golden.node.HW_DOMAIN``); the MAC budget's
default is the build configuration's (``hwcsp.buildcfg.DEFAULT_MACS``).
"""

from __future__ import annotations

FPGA_PART = "xczu7ev-ffvc1156-2-e"  # only used for resource-estimate formulas and HLS scripts
MAX_STREAM_BITS = 8191  # finn.util.basic.MAX_ALLOWED_AP_INT_W: the widest HLS stream
MVAU_MAX_SIMD_FOLD = 1024  # MVAU_hls: MW / SIMD <= 1024 (checked by FINN's code generation)
FINN_MVAU_WWIDTH_MAX = 36  # SetFolding's default limit on an MVAU's weight-stream width (bits)
