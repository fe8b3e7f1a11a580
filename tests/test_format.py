"""Custom options of HyperTinyPW: one writer, one reader, every malformed case named."""

from __future__ import annotations

import zlib
from dataclasses import asdict, replace

import pytest
from flatbuffers import flexbuffers

from hyper_tinypw_tf.export import format as fmt

GOOD = fmt.HyperOptions(
    version=fmt.FORMAT_VERSION, mode="boot", strategy="tiled", c_out=512, c_in=384, code_dim=4,
    hidden_dim=32, tile_size=8, code_bits=8, weight_bits=4, crc32=0xDEADBEEF,
)


def _raw(**changes: object) -> bytes:
    options = {**asdict(GOOD), **changes}
    return bytes(flexbuffers.Dumps({k: v for k, v in options.items() if v is not None}))


@pytest.mark.parametrize("mode", fmt.MODES)
@pytest.mark.parametrize("strategy", fmt.STRATEGIES)
def test_round_trip(mode: str, strategy: str) -> None:
    rank = {"hidden_dim": GOOD.code_dim} if strategy == fmt.LOW_RANK else {}  # code_dim and hidden_dim: the rank
    options = replace(GOOD, mode=mode, strategy=strategy, tile_size=8 if strategy == "tiled" else 0, **rank)
    assert fmt.decode_options(fmt.encode_options(options)) == options


def test_encoding_is_deterministic() -> None:
    assert fmt.encode_options(GOOD) == fmt.encode_options(replace(GOOD))


def test_constants() -> None:
    assert fmt.CUSTOM_OP_NAME == "HyperTinyPW"
    assert fmt.FORMAT_VERSION == 2
    assert fmt.KEY_CRC32 == "crc32" and fmt.KEY_CRC32 in fmt.OPTION_KEYS
    assert fmt.METADATA_CRC32 == "hyper_tinypw_crc32"
    assert fmt.MODES == ("boot", "lazy", "stream")
    assert set(fmt.INPUT_ROLES) == set(fmt.STRATEGIES)


@pytest.mark.parametrize("key", fmt.OPTION_KEYS)
def test_missing_option_is_named(key: str) -> None:
    with pytest.raises(ValueError, match=f"missing option '{key}'"):
        fmt.decode_options(_raw(**{key: None}))


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("version", 1, "option 'version': expected format version 2, received version=1"),
        ("mode", "eager", "option 'mode': expected one of"),
        ("mode", 3, "option 'mode': expected a string, received mode=3"),
        ("strategy", "dense", "option 'strategy'"),
        ("c_out", 0, "option 'c_out'"),
        ("c_in", 70000, "option 'c_in'"),
        ("code_bits", 6, "option 'code_bits': expected 4 or 8, received code_bits=6"),
        ("weight_bits", "8", "option 'weight_bits': expected an integer"),
        ("tile_size", 0, "option 'tile_size'"),
        ("crc32", -1, r"option 'crc32': expected an integer in \[0, 4294967295\], received crc32=-1"),
        ("crc32", 2**32, "option 'crc32': expected an integer in .*received crc32=4294967296"),
        ("crc32", "0", "option 'crc32': expected an integer, received crc32='0'"),
    ],
)
def test_bad_value_is_named(key: str, value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        fmt.decode_options(_raw(**{key: value}))


def test_unknown_option_is_named() -> None:
    with pytest.raises(ValueError, match="unknown option 'colour'='red'"):
        fmt.decode_options(_raw(colour="red"))


def test_low_rank_needs_code_dim_equal_to_hidden_dim() -> None:
    with pytest.raises(ValueError, match=r"option 'code_dim': expected hidden_dim=32 \(both are the rank\) for "
                                         r"strategy 'low_rank', received code_dim=4"):
        fmt.decode_options(_raw(strategy="low_rank", tile_size=0))


def test_paper_strategy_needs_zero_tile() -> None:
    with pytest.raises(ValueError, match="option 'tile_size': expected 0 for strategy 'paper_dense'"):
        fmt.decode_options(_raw(strategy="paper_dense"))


@pytest.mark.parametrize("data", [b"", None])
def test_missing_options(data: bytes | None) -> None:
    with pytest.raises(ValueError, match="custom options are missing"):
        fmt.decode_options(data)


@pytest.mark.parametrize("cut", [1, 7, 40])
def test_corrupt_options(cut: int) -> None:
    with pytest.raises(ValueError, match="HyperTinyPW"):
        fmt.decode_options(fmt.encode_options(GOOD)[:-cut])


def test_not_a_map() -> None:
    with pytest.raises(ValueError, match="not a valid flexbuffer map"):
        fmt.decode_options(bytes(flexbuffers.Dumps([1, 2, 3])))


@pytest.mark.parametrize("crc", [0, 1, 2**31, 2**32 - 1])
def test_crc32_option_round_trips_its_whole_range(crc: int) -> None:
    options = replace(GOOD, crc32=crc)
    assert fmt.decode_options(fmt.encode_options(options)).crc32 == crc


def test_inputs_crc32_is_zlib_crc_of_the_concatenation() -> None:
    parts = [b"codes", b"", b"\x00\xff" * 7, b"codes"]  # a shared input counts each time it appears
    assert fmt.inputs_crc32(parts) == zlib.crc32(b"".join(parts))
    assert fmt.inputs_crc32([]) == 0


def test_file_crc32_reads_the_crc_field_as_zero() -> None:
    data = bytes(range(40))
    expected = zlib.crc32(data[:10] + bytes(4) + data[14:])
    assert fmt.file_crc32(data, 10) == expected
    assert fmt.file_crc32(data[:10] + b"\x01\x02\x03\x04" + data[14:], 10) == expected
