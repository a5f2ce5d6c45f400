"""hwcsp: the CSPNet model zoo in Brevitas (integer-only, ReLU, power-of-two scales).

Heavy imports (torch, brevitas) happen on first use, so ``hwcsp --help`` stays fast.
"""

from hwcsp.registry import UnknownModelError, create_model, get_entry, list_models, model_graph

__all__ = ["UnknownModelError", "create_model", "get_entry", "list_models", "model_graph"]
__version__ = "0.1.0"
