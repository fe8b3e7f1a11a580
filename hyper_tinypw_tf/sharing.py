"""How layers share one generator across serialization, for tf_keras's and Keras 3's generators alike.

Sharing is explicit: pass one generator instance to several layers. A generator's config carries
a ``shared_name``; when layers are rebuilt from config (``from_config``, ``clone_model``, model
loading, tfmot's ``quantize_apply``, ``to_tf_keras``) :meth:`Family.resolve` hands every layer of
the rebuilt model the same new instance, so a model always holds exactly one set of generator
variables. Each Keras has its own :class:`Family` (its strategy classes and its live generators),
so a tf_keras layer never resolves to a Keras 3 generator of the same ``shared_name``.
"""

from __future__ import annotations

import weakref
from typing import Any


def structure(config: dict[str, Any]) -> dict[str, Any]:
    """A generator config without the Keras layer's keys: what must agree for two layers to share."""
    return {k: v for k, v in config.items() if k not in ("name", "trainable", "dtype")}


class Family:
    """The strategies of one Keras by name, and every live generator with the layers that use it.

    The live list is process-global because tf_keras offers no per-rebuild scope that would carry a
    shared non-layer object from one layer's from_config to the next: clone_model runs under
    DisableSharedObjectScope (tf_keras/src/models/cloning.py), tfmot's quantize_apply rebuilds
    through clone_model, and ObjectSharingScope / SharedObjectLoadingScope exist only inside the
    .keras / legacy H5 loaders. Weak references keep it from holding models alive.
    """

    def __init__(self, keras_name: str) -> None:
        self.keras_name = keras_name
        self.strategies: dict[str, type] = {}
        self.live: list[tuple[weakref.ref, set[str]]] = []

    def register(self, cls: type) -> type:
        """Make a strategy class known by its ``strategy`` name."""
        if not cls.strategy or cls.strategy in self.strategies:
            raise ValueError(f"strategy name {cls.strategy!r} of {cls.__name__} is empty or taken")
        self.strategies[cls.strategy] = cls
        return cls

    def track(self, generator: Any) -> None:
        """Record a new generator (its constructor calls this)."""
        self.live.append((weakref.ref(generator), set()))

    def get(self, identifier: Any) -> Any:
        """A new generator from a strategy name or config dict, or the instance itself."""
        family = getattr(identifier, "family", None)
        if family is self:
            return identifier
        if isinstance(family, Family):
            raise ValueError(
                f"generator must be a {self.keras_name} generator for a {self.keras_name} layer, received a "
                f"{family.keras_name} generator ({type(identifier).__name__}); build the model with one Keras"
            )
        if isinstance(identifier, str):
            if identifier not in self.strategies:
                raise ValueError(
                    f"generator must be one of {sorted(self.strategies)}, received generator={identifier!r}")
            return self.strategies[identifier]()
        if isinstance(identifier, dict):
            return self.deserialize(identifier)
        raise ValueError(
            "generator must be a strategy name, a config dict or a HyperGenerator, "
            f"received generator={identifier!r}"
        )

    @staticmethod
    def serialize(generator: Any) -> dict[str, Any]:
        """``{"strategy": ..., "config": ...}``, the form stored in a layer's config."""
        return {"strategy": generator.strategy, "config": generator.get_config()}

    def deserialize(self, spec: dict[str, Any]) -> Any:
        """A new generator from :meth:`serialize`'s output (no sharing lookup)."""
        if not isinstance(spec, dict) or spec.get("strategy") not in self.strategies:
            raise ValueError(
                f"generator config must name a strategy in {sorted(self.strategies)}, received generator={spec!r}"
            )
        return self.strategies[spec["strategy"]].from_config(dict(spec.get("config", {})))

    def _claims(self, generator: Any) -> set[str]:
        for ref, names in self.live:
            if ref() is generator:
                return names
        raise RuntimeError(f"generator {generator.shared_name!r} is not registered")

    def claim(self, generator: Any, layer_name: str) -> None:
        """Record that the layer ``layer_name`` uses ``generator``."""
        self._claims(generator).add(layer_name)

    def resolve(self, identifier: Any, layer_name: str) -> Any:
        """The generator a layer named ``layer_name`` uses, sharing by ``shared_name``.

        A config dict resolves to the newest live generator of the same ``shared_name`` that no
        layer of this name uses yet: rebuilding a model layer by layer (clone, load, quantize)
        thus puts all of its layers on one new instance, never on the original model's. A config
        that disagrees with that generator raises, naming both.
        """
        if not isinstance(identifier, dict):
            generator = self.get(identifier)
            self.claim(generator, layer_name)
            return generator
        config = identifier.get("config", {})
        self.live[:] = [(ref, names) for ref, names in self.live if ref() is not None]
        candidates = [
            ref() for ref, names in self.live
            if layer_name not in names and ref().shared_name == config.get("shared_name")
        ]
        if not candidates:
            generator = self.deserialize(identifier)
        else:
            generator = candidates[-1]
            if generator.strategy != identifier.get("strategy") or generator.structure() != structure(config):
                raise ValueError(
                    f"Layer {layer_name!r}: generator {generator.shared_name!r} is shared by layers with "
                    f"incompatible configs: this layer asks for {identifier}, another layer uses "
                    f"{self.serialize(generator)}."
                )
        self.claim(generator, layer_name)
        return generator
