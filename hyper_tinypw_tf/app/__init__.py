"""The app layer: the ``hyper-tinypw`` commands and the jobs behind them.

It sits above the library (the rest of ``hyper_tinypw_tf``, ``hyper_tinypw_tf.export``) and the TFLM
harness (``tflm_harness``), and may import both; neither imports it (``tests/test_layering.py``).

- ``pipeline``: the run configuration, training with the run's switches, models in and out, TFLM helpers, ``evaluate``;
- ``stages``: train, QAT, export and score, each one cached file (``main`` and ``bench.frontier``);
- ``main_job``: ``hyper-tinypw main``, the hyper model beside the stored CNN of the same budget;
- ``compress``: post-training generation, a trained stored CNN into a hyper file of a byte budget;
- ``cli``: the command line.
"""
