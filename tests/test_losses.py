"""Focal loss and distillation against hand-computed values; the distiller trains only the student."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from hyper_tinypw_tf import losses, training
from hyper_tinypw_tf._keras import keras

LOGITS = np.array([[0.0, math.log(3.0)], [math.log(3.0), 0.0]], np.float32)  # p = (1/4, 3/4) and (3/4, 1/4)
LABELS = np.array([1, 1])


def test_focal_loss_hand_computed() -> None:
    # Example 1: p_t = 3/4; example 2: p_t = 1/4. Focal: -(1 - p_t)^2 log p_t, averaged.
    expected = (-(0.25**2) * math.log(0.75) - (0.75**2) * math.log(0.25)) / 2
    assert float(losses.SparseFocalLoss(2.0)(LABELS, LOGITS)) == pytest.approx(expected, rel=1e-6)


def test_focal_loss_with_gamma_zero_is_cross_entropy() -> None:
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(LABELS, LOGITS)
    assert float(losses.SparseFocalLoss(0.0)(LABELS, LOGITS)) == pytest.approx(float(ce), rel=1e-6)
    assert float(ce) == pytest.approx((-math.log(0.75) - math.log(0.25)) / 2, rel=1e-6)


def test_loss_names_and_bad_values_are_refused() -> None:
    assert isinstance(losses.get("focal", 1.5), losses.SparseFocalLoss) and losses.get("focal", 1.5).gamma == 1.5
    with pytest.raises(ValueError, match=r"loss must be one of \('ce', 'focal'\), received loss='mse'"):
        losses.get("mse")
    with pytest.raises(ValueError, match="gamma must be >= 0, received gamma=-1"):
        losses.SparseFocalLoss(-1)
    restored = losses.SparseFocalLoss.from_config(losses.SparseFocalLoss(3.0).get_config())
    assert restored.gamma == 3.0


def test_distillation_kl_hand_computed() -> None:
    # Teacher (1/4, 3/4) against a uniform student at T = 1: KL = 1/4 ln(1/2) + 3/4 ln(3/2).
    kl = losses.distillation_kl(LOGITS[:1], np.zeros((1, 2), np.float32), 1.0)
    assert float(kl[0]) == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), rel=1e-6)
    # At T = 2 the teacher's logits are halved: (1, sqrt 3) / (1 + sqrt 3).
    p = np.array([1.0, math.sqrt(3.0)]) / (1 + math.sqrt(3.0))
    kl2 = losses.distillation_kl(LOGITS[:1], np.zeros((1, 2), np.float32), 2.0)
    assert float(kl2[0]) == pytest.approx(float(np.sum(p * np.log(p / 0.5))), rel=1e-6)
    assert float(losses.distillation_kl(LOGITS, LOGITS, 2.0)[1]) == pytest.approx(0.0, abs=1e-7)


def _linear(name: str, kernel: np.ndarray) -> keras.Model:
    inputs = keras.Input((2,))
    model = keras.Model(inputs, keras.layers.Dense(2, use_bias=False, name=f"{name}_dense")(inputs), name=name)
    model.set_weights([kernel])
    return model


def test_distiller_loss_is_the_papers_blend_and_only_the_student_learns() -> None:
    x = np.array([[1.0, 0.0], [0.0, 1.0]], np.float32)
    student = _linear("student", np.zeros((2, 2), np.float32))  # uniform logits
    teacher = _linear("teacher", np.array([[0.0, math.log(3.0)], [math.log(3.0), 0.0]], np.float32))
    distiller = losses.Distiller(student, teacher)  # alpha 0.7, T 2
    training.compile_model(distiller, 0.1)
    ce = math.log(2.0)  # uniform student, either label
    kl = float(tf.reduce_mean(losses.distillation_kl(teacher(x), student(x), 2.0)))
    loss = distiller.compute_loss(tf.constant(x), tf.constant(LABELS), distiller(x))
    assert float(loss) == pytest.approx(0.3 * ce + 0.7 * 4.0 * kl, rel=1e-6)
    teacher_before = teacher.get_weights()[0].copy()
    distiller.fit(x, LABELS, epochs=1, verbose=0)
    np.testing.assert_array_equal(teacher.get_weights()[0], teacher_before)
    assert np.abs(student.get_weights()[0]).sum() > 0
    assert not distiller.teacher.trainable


def test_distiller_refuses_a_teacher_of_other_classes() -> None:
    inputs = keras.Input((2,))
    three = keras.Model(inputs, keras.layers.Dense(3)(inputs), name="three_classes")
    with pytest.raises(ValueError, match="Distiller: teacher 'three_classes' outputs"):
        losses.Distiller(_linear("student", np.zeros((2, 2), np.float32)), three)
    with pytest.raises(ValueError, match="alpha must be in \\[0, 1\\], received alpha=1.5"):
        losses.Distiller(_linear("s", np.zeros((2, 2), np.float32)), _linear("t", np.eye(2, dtype=np.float32)), 1.5)


def test_a_model_compiled_with_focal_loss_reloads(tmp_path) -> None:
    from hyper_tinypw_tf.app import pipeline

    model = _linear("focal_model", np.eye(2, dtype=np.float32))
    training.compile_model(model, 0.01, losses.SparseFocalLoss(1.5))
    model.fit(np.eye(2, dtype=np.float32), LABELS, epochs=1, verbose=0)
    model.save(tmp_path / "focal.keras")
    loaded = pipeline.load_model(tmp_path / "focal.keras")
    assert isinstance(loaded.loss, losses.SparseFocalLoss) and loaded.loss.gamma == 1.5
