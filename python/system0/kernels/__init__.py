"""Triton kernels of system0. They ship in the wheel and import as ``system0.kernels``.

Each kernel has a torch reference beside it; tests run them under ``TRITON_INTERPRET=1`` on
the CPU. Importing this package never requires triton or torch: each kernel module imports
them itself.
"""
