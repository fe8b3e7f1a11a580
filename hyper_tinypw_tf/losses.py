"""Training losses the paper relies on: focal loss for imbalanced beats, and distillation.

``SparseFocalLoss`` down-weights easy examples (Lin et al., "Focal Loss for Dense Object
Detection", 2017), for the rare ECG classes; class weights still apply through ``fit``'s
``class_weight``. ``Distiller`` trains a student (the hyper model) against a trained teacher (its
stored twin) with ``alpha · T² · KL(teacher_T ‖ student_T) + (1 − alpha) · CE`` (Hinton et al.,
"Distilling the Knowledge in a Neural Network", 2015; the T² keeps the soft term's gradients at
the scale of the hard one). The paper uses alpha = 0.7 at T = 2, the defaults here.

``Distiller`` is a thin ``keras.Model`` whose ``call`` is the student's and whose
``compute_loss`` adds the teacher term, so ``training.fit`` runs it unchanged (accuracy, class
weights, checkpoints and early stopping all see the student's logits). After training, export
``distiller.student``; the teacher is never trained (``trainable=False``).
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from hyper_tinypw_tf._keras import keras

LOSSES = ("ce", "focal")
DISTILL_ALPHA = 0.7
DISTILL_TEMPERATURE = 2.0


@keras.utils.register_keras_serializable(package="hyper_tinypw_tf")
class SparseFocalLoss(keras.losses.Loss):
    """Focal loss on integer labels and logits: ``−(1 − p_t)^gamma · log p_t``.

    Args:
      gamma: focusing parameter (>= 0); 0 gives plain sparse cross-entropy.
    """

    def __init__(self, gamma: float = 2.0, name: str = "sparse_focal_loss", **kwargs: Any) -> None:
        if not gamma >= 0:
            raise ValueError(f"SparseFocalLoss: gamma must be >= 0, received gamma={gamma}")
        super().__init__(name=name, **kwargs)
        self.gamma = float(gamma)

    def call(self, y_true: tf.Tensor, y_pred: tf.Tensor) -> tf.Tensor:
        labels = tf.cast(tf.reshape(y_true, [-1]), tf.int32)
        log_p = tf.nn.log_softmax(tf.cast(y_pred, tf.float32), axis=-1)
        log_pt = tf.gather(log_p, labels, axis=-1, batch_dims=1)
        return -tf.pow(1.0 - tf.exp(log_pt), self.gamma) * log_pt

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "gamma": self.gamma}


def get(name: str, gamma: float = 2.0) -> keras.losses.Loss:
    """The training loss by name ("ce" or "focal"), on logits and integer labels."""
    if name == "ce":
        return keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    if name == "focal":
        return SparseFocalLoss(gamma)
    raise ValueError(f"loss must be one of {LOSSES}, received loss={name!r}")


def distillation_kl(teacher_logits: tf.Tensor, student_logits: tf.Tensor, temperature: float) -> tf.Tensor:
    """Per-example ``KL(softmax(t/T) ‖ softmax(s/T))`` in nats."""
    t = tf.nn.log_softmax(tf.cast(teacher_logits, tf.float32) / temperature, axis=-1)
    s = tf.nn.log_softmax(tf.cast(student_logits, tf.float32) / temperature, axis=-1)
    return tf.reduce_sum(tf.exp(t) * (t - s), axis=-1)


class Distiller(keras.Model):
    """Train ``student`` with the compiled loss blended with a KL term towards ``teacher``.

    Args:
      student: the model being trained (its logits are this model's output).
      teacher: a trained model with the same classes; frozen here.
      alpha: weight of the KL term; the compiled (hard-label) loss gets ``1 − alpha``.
      temperature: softmax temperature T of both sides of the KL term.
    """

    def __init__(self, student: keras.Model, teacher: keras.Model, alpha: float = DISTILL_ALPHA,
                 temperature: float = DISTILL_TEMPERATURE, **kwargs: Any) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"Distiller: alpha must be in [0, 1], received alpha={alpha}")
        if not temperature > 0:
            raise ValueError(f"Distiller: temperature must be positive, received temperature={temperature}")
        if teacher.output_shape != student.output_shape:
            raise ValueError(
                f"Distiller: teacher {teacher.name!r} outputs {teacher.output_shape}, "
                f"student {student.name!r} outputs {student.output_shape}; they must predict the same classes"
            )
        super().__init__(name=f"{student.name}_distilled", **kwargs)
        self.student = student
        self.teacher = teacher
        self.teacher.trainable = False
        self.alpha = float(alpha)
        self.temperature = float(temperature)

    def call(self, inputs: Any, training: bool | None = None) -> tf.Tensor:
        return self.student(inputs, training=training)

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None) -> tf.Tensor:
        hard = super().compute_loss(x, y, y_pred, sample_weight)
        soft = tf.reduce_mean(distillation_kl(self.teacher(x, training=False), y_pred, self.temperature))
        return (1.0 - self.alpha) * hard + self.alpha * self.temperature**2 * soft
