"""The one place that picks Keras for this package.

tfmot only works with tf_keras objects, so every module takes ``keras`` from here
instead of importing ``tensorflow.keras`` (which is Keras 3 on TF >= 2.16).
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tf_keras as keras  # noqa: E402

__all__ = ["keras"]
