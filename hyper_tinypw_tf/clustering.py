"""tfmot weight clustering of a stored model: the first peer a TFLM user reaches for.

Clustering replaces each pointwise kernel's values by ``n_clusters`` shared centroids. After
BatchNorm folding and per-channel INT8 quantization, every output channel of such a kernel holds
at most ``n_clusters`` distinct int8 values, which is what lets TFLM's LUT compression
(``export.peers.lut_compress``) store ``ceil(log2(n_clusters))``-bit indices in the file.

Only stored 1×1 convolutions (the PW layers and the 1×1 classifier) are clustered: they are the
bytes the generated mixers replace, so the comparison is like for like. In a hyper model the
same holds for the 1×1 layers it still stores (PW1, the classifier): its ``HyperPWConv2D`` layers
are no ``Conv2D`` and pass through unwrapped, still sharing their one generator (``clone_model``
rebuilds them through ``generators.resolve``), so hyper + LUT is clustered the same way.
"""

from __future__ import annotations

from hyper_tinypw_tf._keras import keras

CLUSTERABLE = "pointwise"


def is_pointwise(layer: keras.layers.Layer) -> bool:
    """A stored 1×1 ``Conv2D`` (not depthwise): the layers the comparison is about."""
    return (
        isinstance(layer, keras.layers.Conv2D)
        and not isinstance(layer, keras.layers.DepthwiseConv2D)
        and tuple(layer.kernel_size) == (1, 1)
    )


def cluster_pointwise(model: keras.Model, n_clusters: int) -> keras.Model:
    """A copy of ``model`` whose 1×1 convolutions are wrapped for clustered fine-tuning.

    Raises:
      ValueError: if ``n_clusters`` is outside [2, 256] or the model has no stored 1×1 conv
        (a hyper model's generated layers are never wrapped; its stored ones are).
    """
    import tensorflow_model_optimization as tfmot

    if not isinstance(n_clusters, int) or not 2 <= n_clusters <= 256:
        raise ValueError(f"cluster_pointwise: n_clusters must be an integer in [2, 256], received {n_clusters!r}")
    if not any(is_pointwise(layer) for layer in model.layers):
        raise ValueError(f"cluster_pointwise: model {model.name!r} has no stored 1x1 Conv2D to cluster")
    init = tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS

    private = keras.models.clone_model(model)  # the caller's model is never trained through shared layers
    private.set_weights(model.get_weights())

    def wrap(layer: keras.layers.Layer) -> keras.layers.Layer:
        # The wrapper takes the trained layer itself, so its centroids start from the trained weights.
        if is_pointwise(layer):
            return tfmot.clustering.keras.cluster_weights(
                layer, number_of_clusters=n_clusters, cluster_centroids_init=init
            )
        return layer

    return keras.models.clone_model(private, clone_function=wrap)


def strip(clustered: keras.Model) -> keras.Model:
    """The plain Keras model of a clustered one (centroids baked into the kernels), as a fresh graph.

    ``strip_clustering`` reuses the unwrapped layers, whose inbound nodes then belong to two models;
    the exporter refuses such graphs, so the result is cloned once more with its weights.
    """
    import tensorflow_model_optimization as tfmot

    stripped = tfmot.clustering.keras.strip_clustering(clustered)
    fresh = keras.models.clone_model(stripped)
    fresh.set_weights(stripped.get_weights())
    return fresh
