"""Speech Commands loader on the subset in ../shared/data/speech_commands."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from hyper_tinypw_tf.data import load, speech_commands, splits

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SC = DATA / "speech_commands"
needs_data = pytest.mark.usefixtures("shared_data")  # fails loudly if absent


def speakers(groups: np.ndarray) -> set[str]:
    return {g for g in groups.tolist() if not g.startswith("noise:")}


@pytest.fixture(scope="module")
def loaded():
    # The subset holds official *test* speakers only, so the default 10/10 rule puts every
    # clip in "test"; these percentages carve val/test bands out of the same hash range.
    return load("speech_commands", SC, batch_size=32, validation_percentage=12.0,
                testing_percentage=4.0)


@needs_data
def test_hash_rule_reproduces_official_test_partition() -> None:
    clips = speech_commands.list_clips(SC)
    assert len(clips) > 2000
    assert {splits.which_set(rel) for rel, _ in clips} == {"test"}


@needs_data
def test_twelve_classes_speaker_disjoint(loaded) -> None:
    ds, info = loaded
    assert info.class_names == [*speech_commands.CORE_WORDS, "_silence_", "_unknown_"]
    sp = {s: speakers(g) for s, g in info.groups.items()}
    assert all(sp.values())
    assert not (sp["train"] & sp["val"]) and not (sp["train"] & sp["test"])
    assert not (sp["val"] & sp["test"])
    available = {s: 0 for s in splits.SPLITS}
    for rel, word in speech_commands.list_clips(SC):
        if word not in speech_commands.CORE_WORDS:
            available[splits.which_set(rel, 12.0, 4.0)] += 1
    for split in ("train", "val", "test"):
        c = info.counts[split]
        assert all(c[name] > 0 for name in info.class_names), (split, c)
        core_mean = np.mean([c[w] for w in speech_commands.CORE_WORDS])
        # unknown: subsampled to an average core class, or all of them if fewer exist
        assert c["_unknown_"] == min(available[split], round(core_mean))
        assert abs(c["_silence_"] - core_mean) <= 1
        assert sum(c.values()) == len(info.groups[split])


@needs_data
def test_features_have_documented_shape(loaded) -> None:
    ds, info = loaded
    assert info.input_shape == (49, 10, 1) == speech_commands.FeatureConfig().output_shape
    labels = []
    for x, y in ds["val"]:
        assert tuple(x.shape[1:]) == (49, 10, 1) and np.isfinite(x.numpy()).all()
        labels.append(y.numpy())
    got = np.bincount(np.concatenate(labels), minlength=12)
    assert got.tolist() == [info.counts["val"][n] for n in info.class_names]


@needs_data
def test_deterministic_and_augmented_train(loaded) -> None:
    _, info = loaded
    ds2, info2 = load("speech_commands", SC, batch_size=8, validation_percentage=12.0,
                      testing_percentage=4.0, augment=speech_commands.Augment())
    for s in info.groups:
        np.testing.assert_array_equal(info.groups[s], info2.groups[s])
    x, _ = next(iter(ds2["train"]))
    assert tuple(x.shape) == (8, 49, 10, 1) and np.isfinite(x.numpy()).all()


def write_wav(path: Path, rate: int = 16000, channels: int = 1, width: int = 2,
              seconds: float = 1.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    n = int(rate * seconds)
    data = (np.random.default_rng(0).normal(size=n * channels) * 1000).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data.tobytes() if width == 2 else (data // 256 + 128).astype("u1").tobytes())


def test_list_files_define_splits(tmp_path: Path) -> None:
    for w in speech_commands.CORE_WORDS + ("cat",):
        for spk in ("aaaa1111", "bbbb2222", "cccc3333"):
            write_wav(tmp_path / w / f"{spk}_nohash_0.wav", seconds=0.5)
    write_wav(tmp_path / "_background_noise_" / "n.wav", seconds=3.0)
    words = speech_commands.CORE_WORDS
    (tmp_path / "validation_list.txt").write_text(
        "\n".join(f"{w}/bbbb2222_nohash_0.wav" for w in words + ("cat",)) + "\n")
    (tmp_path / "testing_list.txt").write_text(
        "\n".join(f"{w}/cccc3333_nohash_0.wav" for w in words + ("cat",)) + "\n")
    ds, info = load("speech_commands", tmp_path, batch_size=4)
    assert info.notes["split_rule"] == "lists"
    assert speakers(info.groups["val"]) == {"bbbb2222"}
    assert speakers(info.groups["test"]) == {"cccc3333"}
    assert speakers(info.groups["train"]) == {"aaaa1111"}
    x, y = next(iter(ds["test"]))
    assert tuple(x.shape[1:]) == (49, 10, 1)  # 0.5 s clips are zero-padded to 1 s
