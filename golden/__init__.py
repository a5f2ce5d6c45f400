"""Bit-exact NumPy model of the integer dataflow graph (imports only NumPy and onnx)."""
