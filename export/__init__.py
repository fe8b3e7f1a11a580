"""TFLite export: Keras model → folded INT8 ``.tflite``, → hyper ``.tflite`` with a custom op, and back.

Modules, in pipeline order: ``format`` (the custom op's wire format), ``convert`` (Keras → folded
bytes), ``hyper`` (folded → hyper bytes), ``expand`` (hyper → folded bytes on the host),
``c_array`` (bytes → C source), ``api`` (what the CLI calls). Every function takes and returns
bytes; writing files is the caller's job (``api.write_atomic``).
"""
