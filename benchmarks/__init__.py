"""The asv suite: one module per area (kernel, optimizers, memory, scaling), shared inputs in `common.py`."""
