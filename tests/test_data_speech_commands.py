"""hyper_tinypw_tf.data.speech_commands and data.splits on the subset in the shared data folder."""

from __future__ import annotations

import re
import wave
from pathlib import Path

import numpy as np
import pytest

from hyper_tinypw_tf.data import BadFileError, EmptyDataDirError, load, speech_commands, splits
from hyper_tinypw_tf.data.options import LoadOptions, default_data_dir

DATA = default_data_dir()
SC = DATA / "speech_commands"
needs_data = pytest.mark.usefixtures("shared_data")  # fails loudly if absent


def speakers(groups: np.ndarray) -> set[str]:
    return {g for g in groups.tolist() if not g.startswith("noise:")}


@pytest.fixture(scope="module")
def loaded():
    # The subset holds official *test* speakers only, so the default 10/10 rule puts every
    # clip in "test"; these percentages carve val/test bands out of the same hash range.
    return load("speech_commands", SC, batch_size=32, split="speaker_hash:12,4")


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
    ds2, info2 = load("speech_commands", SC, batch_size=8, split="speaker_hash:12,4",
                      augment=speech_commands.Augment())
    for s in info.groups:
        np.testing.assert_array_equal(info.groups[s], info2.groups[s])
    x, _ = next(iter(ds2["train"]))
    assert tuple(x.shape) == (8, 49, 10, 1) and np.isfinite(x.numpy()).all()


@needs_data
def test_augmented_train_runs_under_op_determinism_seeded_and_new_each_epoch() -> None:
    """training.set_seed turns on TF op determinism (as every training run does): the augmentation's random
    draws must be seeded to run there; the same seed gives the same batches, and each epoch new ones."""
    from hyper_tinypw_tf import training

    training.set_seed(0)

    def epochs() -> list[np.ndarray]:
        datasets, _ = load("speech_commands", SC, batch_size=8, split="speaker_hash:12,4",
                           augment=speech_commands.Augment(background_frequency=1.0))
        return [next(iter(datasets["train"]))[0].numpy() for _ in range(2)]

    first, again = epochs(), epochs()
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    assert not np.array_equal(first[0], first[1])  # reshuffled and re-augmented each epoch


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


@pytest.mark.parametrize(
    ("spec", "rule"),
    [
        ("auto", speech_commands.SplitRule("auto", 10.0, 10.0)),
        ("speaker_hash:12,4", speech_commands.SplitRule("speaker_hash", 12.0, 4.0)),
        ("speakers:15,15", speech_commands.SplitRule("speakers", 15.0, 15.0)),
        ("speakers", speech_commands.SplitRule("speakers", 10.0, 10.0)),
        ("all", speech_commands.SplitRule("all")),
    ],
)
def test_split_rule_spellings(spec: str, rule: speech_commands.SplitRule) -> None:
    parsed = speech_commands.SplitRule.parse(spec)
    assert parsed == rule
    assert speech_commands.SplitRule.parse(str(parsed)) == parsed


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("random:10,10", "received kws_split='random:10,10'"),
        ("random", "unknown rule 'random'"),
        ("speakers:10", "received kws_split='speakers:10'"),
        ("speakers:a,b", "received kws_split='speakers:a,b'"),
        ("all:10,10", "received kws_split='all:10,10'"),
        ("speakers:60,40", "VAL \\+ TEST < 100\\), received 60,40"),
        ("speaker_hash:-1,4", "must be >= 0"),
    ],
)
def test_bad_split_rule_names_the_value(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        speech_commands.SplitRule.parse(spec)


@needs_data
def test_default_split_of_shared_copy_refuses_empty_train() -> None:
    # Every speaker of the copy hashes into the official test band: the train split is empty,
    # which must be one clear error naming the split and the flag that fixes it.
    with pytest.raises(EmptyDataDirError, match=r"the train split of 2\d{3} clips is empty under "
                       r"kws_split=speaker_hash:10,10 .*--kws_split=speakers:VAL,TEST"):
        load("speech_commands", SC)


@needs_data
def test_speaker_shuffle_split_of_shared_copy() -> None:
    _, info = load("speech_commands", SC, split="speakers:15,15", seed=0)
    sp = {s: speakers(g) for s, g in info.groups.items()}
    assert not (sp["train"] & sp["val"]) and not (sp["train"] & sp["test"]) and not (sp["val"] & sp["test"])
    every = {splits.speaker_id(rel) for rel, _ in speech_commands.list_clips(SC)}
    assert sp["train"] | sp["val"] | sp["test"] == every
    # split_groups rounds 15% of the speakers for val and test; train takes the rest.
    assert len(sp["val"]) == len(sp["test"]) == round(0.15 * len(every))
    assert info.notes["split"] == "speakers:15,15"
    _, again = load("speech_commands", SC, split="speakers:15,15", seed=0)
    _, other = load("speech_commands", SC, split="speakers:15,15", seed=1)
    assert speakers(again.groups["test"]) == sp["test"] != speakers(other.groups["test"])


def _folder(root: Path, speakers_: tuple[str, ...]) -> None:
    for w in speech_commands.CORE_WORDS + ("cat",):
        for spk in speakers_:
            write_wav(root / w / f"{spk}_nohash_0.wav", seconds=0.25)


def test_all_split_makes_everything_test(tmp_path: Path) -> None:
    _folder(tmp_path, ("aaaa1111",))
    ds, info = load("speech_commands", tmp_path, batch_size=4, split="all")
    assert info.counts["train"] == info.counts["val"] == {n: 0 for n in info.class_names}
    assert info.counts["test"]["yes"] == 1 and info.counts["test"]["_unknown_"] == 1
    assert sum(int(y.shape[0]) for _, y in ds["test"]) == 11  # 10 words + 1 unknown, no noise folder
    assert sum(1 for _ in ds["train"]) == 0


def test_one_speaker_folder_names_the_empty_split(tmp_path: Path) -> None:
    _folder(tmp_path, ("aaaa1111",))
    where = splits.which_set("aaaa1111_nohash_0.wav")
    empty = next(s for s in splits.SPLITS if s != where)
    with pytest.raises(EmptyDataDirError, match=f"{tmp_path}: the {empty} split of 11 clips is empty"):
        load("speech_commands", tmp_path)


def test_truncated_wav_body_is_refused_at_load(tmp_path: Path) -> None:
    _folder(tmp_path, ("aaaa1111", "bbbb2222", "cccc3333"))
    bad = tmp_path / "no" / "bbbb2222_nohash_0.wav"
    full = bad.read_bytes()
    bad.write_bytes(full[: len(full) - 1000])  # header intact, 500 samples missing
    with pytest.raises(BadFileError, match=f"{bad}: truncated: the header promises 4000 samples, "
                       "the file holds 3500"):
        load("speech_commands", tmp_path, split="all")
    _, info = load("speech_commands", tmp_path, LoadOptions(skip_bad=True), split="all")
    assert info.skipped_files == [str(bad)] and info.counts["test"]["no"] == 2


@needs_data
@pytest.mark.parametrize(
    ("flag", "message"),
    [
        ("--kws_split=auto", re.escape(f"{SC}: ") + r"the train split of \d+ clips is empty under kws_split="
                             r"speaker_hash:10,10 \(clips per split: train 0, val 0, test \d+\)\. .*"
                             r"--kws_split=speakers:VAL,TEST"),
        ("--kws_split=speakers:50,50", r"kws_split: VAL and TEST must be >= 0 and leave some training speakers"),
    ],
)
def test_cli_split_errors_are_one_line(flag: str, message: str, tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    from hyper_tinypw_tf.app import cli

    status = cli.main(["train", "--task=speech_commands", "--preset=ds_cnn_s", flag, f"--out={tmp_path}"])
    lines = capsys.readouterr().err.splitlines()
    assert status == 2 and len(lines) == 1, lines
    assert re.fullmatch(f"hyper-tinypw train: error: {message}.*", lines[0]), lines[0]
