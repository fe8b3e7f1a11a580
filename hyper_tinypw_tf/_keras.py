"""The one place that picks Keras for this package.

tfmot only works with tf_keras objects, so every module takes ``keras`` from here
instead of importing ``tensorflow.keras`` (which is Keras 3 on TF >= 2.16).
``LEGACY_PROCESS`` records what the user's process chose before this package set anything:
TensorFlow's own switch, ``TF_USE_LEGACY_KERAS``. The package's top-level names follow it
(tf_keras's classes when set, Keras 3's otherwise; see ``hyper_tinypw_tf/__init__.py``).
"""

import os

LEGACY_PROCESS = os.environ.get("TF_USE_LEGACY_KERAS") in ("1", "true", "True")  # TensorFlow's spelling

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tf_keras as keras  # noqa: E402

__all__ = ["LEGACY_PROCESS", "keras"]
