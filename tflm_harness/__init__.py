"""The device side of the ``HyperTinyPW`` op: C core, TFLM kernel, runners, and their build.

``build`` compiles a TFLM library (only the framework and the kernels our models use) plus our
kernel and core into a cache outside the checkout; ``run`` drives the host runner from Python.
"""
