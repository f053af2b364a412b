#!/usr/bin/env python3
"""Writes the malformed-file corpus, Tests/LeNetKitTests/Fixtures/malformed/,
and its manifest.json, which says for each file which reader it goes to
(`kind`), under which name (`as`), and what the error must say (`error`).

    Scripts/make_malformed_fixtures.py

Run by hand (never by CI); the files it writes are checked in. Standard
library only. MalformedFileTests.swift feeds every file to its reader and to
`lenet`, and fails if a file is missing from the manifest, so inputs found by
Scripts/fuzz can be added here (or by hand) with the error they must give.

Kinds:
  weights  `Checkpoint.loadNetwork(path:)` and `lenet eval --weights FILE`
  cifar    a CIFAR-10 directory whose `as` file is this one:
           `CIFAR10.load` and `lenet train --data DIR`
  mnist    an MNIST directory whose `as` file is this one:
           `MNIST.load` and `lenet train --data DIR --dataset mnist`
  idx      `IDX.read(path:)` with no expected magic number (inputs of other
           ranks or types, which `lenet` refuses by magic number first)
  checkpoint  a checkpoint to resume from whose metadata is bad (read
           before its tensors): `Trainer.resume(from:)` and
           `lenet train --resume FILE`
  state    a FILE.state put beside a checkpoint the test trains (cifar-lenet,
           SGD without momentum, 1 epoch): `Trainer.resume(from:)` and
           `lenet train --resume FILE`; the error names the state file. A
           lenetkit-1 state (flat metadata) carries no weights digest, so it
           matches on its epoch alone; a lenetkit-2 one (its training_state
           JSON) is refused for its bad field before it is matched
"""
import gzip
import json
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "Tests", "LeNetKitTests", "Fixtures", "malformed")


def safetensors(entries, data, metadata=None, declared=None):
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    header.update(entries)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text) if declared is None else declared) + text + data


def f32(*values):
    return struct.pack("<%df" % len(values), *values)


def idx(magic_type, dims, payload):
    return bytes([0, 0, 8, magic_type]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = {}

    def add(name, content, kind, error, as_name=None):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(content)
        entry = {"kind": kind, "error": error}
        if as_name:
            entry["as"] = as_name
        manifest[name] = entry

    conv1 = {"conv1.weight": {"dtype": "F32", "shape": [16, 3, 5, 5], "data_offsets": [0, 4800]}}
    weights = f32(*[0.01 * (i % 7) for i in range(1200)])
    cifar = {"model": "cifar-lenet"}

    # Safetensors checkpoints.
    add("weights-empty.safetensors", b"", "weights", ["file is 0 bytes long"])
    add("weights-short.safetensors", b"\x10\x00\x00", "weights", ["file is 3 bytes long", "8-byte header length"])
    add("weights-huge-header-length.safetensors", struct.pack("<Q", 1 << 62) + b"{}      ", "weights",
        ["header length 4611686018427387904 exceeds the file size 16"])
    add("weights-header-length-max.safetensors", b"\xff" * 8 + b"{}", "weights",
        ["header length 18446744073709551615 exceeds the file size 10"])
    add("weights-truncated-header.safetensors", safetensors(conv1, weights, cifar)[:60], "weights",
        ["exceeds the file size 60"])
    add("weights-truncated-data.safetensors", safetensors(conv1, weights, cifar)[:2000], "weights",
        ["tensor 'conv1.weight'", "beyond the end of the data section"])
    add("weights-not-json.safetensors", struct.pack("<Q", 22) + b"{\"conv1.weight\": [1, 2", "weights",
        ["header is not valid JSON"])
    add("weights-not-utf8.safetensors", struct.pack("<Q", 4) + b"{\"\xff\"", "weights", ["header is not valid UTF-8"])
    add("weights-header-array.safetensors", struct.pack("<Q", 8) + b"[1,2,3] ", "weights",
        ["header is not a JSON object"])
    add("weights-wrong-dtype.safetensors",
        safetensors({"conv1.weight": {"dtype": "I64", "shape": [16, 3, 5, 5], "data_offsets": [0, 9600]}},
                    weights + weights, cifar),
        "weights", ["tensor 'conv1.weight' has dtype I64"])
    add("weights-shape-mismatch.safetensors",
        safetensors({"conv1.weight": {"dtype": "F32", "shape": [16, 3, 5, 4], "data_offsets": [0, 4800]}},
                    weights, cifar),
        "weights", ["tensor 'conv1.weight' has shape [16, 3, 5, 4]", "span 4800 bytes"])
    add("weights-offsets-beyond-data.safetensors",
        safetensors({"conv1.weight": {"dtype": "F32", "shape": [16, 3, 5, 5], "data_offsets": [4800, 9600]}},
                    weights, cifar),
        "weights", ["data_offsets [4800, 9600] beyond the end of the data section (4800 bytes)"])
    add("weights-offsets-reversed.safetensors",
        safetensors({"conv1.weight": {"dtype": "F32", "shape": [0], "data_offsets": [8, 4]}}, weights, cifar),
        "weights", ["data_offsets [8, 4] whose end is before its begin"])
    add("weights-overlapping.safetensors",
        safetensors({"conv1.weight": {"dtype": "F32", "shape": [16, 3, 5, 5], "data_offsets": [0, 4800]},
                     "conv1.bias": {"dtype": "F32", "shape": [16], "data_offsets": [4736, 4800]}}, weights, cifar),
        "weights", ["tensors 'conv1.weight' and 'conv1.bias' overlap"])
    add("weights-huge-shape.safetensors",
        safetensors({"conv1.weight": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4800]}},
                    weights, cifar),
        "weights", ["too many elements"])
    add("weights-negative-offset.safetensors",
        safetensors({"conv1.weight": {"dtype": "F32", "shape": [1], "data_offsets": [-4, 0]}}, weights, cifar),
        "weights", ["two non-negative integers"])
    nan = bytearray(weights)
    nan[400:404] = struct.pack("<f", float("nan"))
    add("weights-nan.safetensors", safetensors(conv1, bytes(nan), cifar), "weights",
        ["tensor 'conv1.weight' holds a non-finite value (nan) at index 100"])
    inf = bytearray(weights)
    inf[4:8] = struct.pack("<f", float("-inf"))
    add("weights-infinity.safetensors", safetensors(conv1, bytes(inf), cifar), "weights",
        ["tensor 'conv1.weight' holds a non-finite value (-inf) at index 1"])
    add("weights-wrong-shape-for-model.safetensors",
        safetensors({"conv1.weight": {"dtype": "F32", "shape": [1200], "data_offsets": [0, 4800]}}, weights, cifar),
        "weights", ["tensor 'conv1.weight' has shape [1200], expected [16, 3, 5, 5]"])
    add("weights-unknown-model.safetensors", safetensors(conv1, weights, {"model": "alexnet"}), "weights",
        ["unknown model 'alexnet'"])
    add("weights-metadata-not-strings.safetensors", safetensors(conv1, weights, {"epoch": 3}), "weights",
        ["__metadata__ value of 'epoch' is not a string"])

    # CIFAR-10 batch files.
    record = lambda label: bytes([label]) + bytes(range(256)) * 12
    add("cifar-empty.bin", b"", "cifar", ["file is empty"], "data_batch_1.bin")
    add("cifar-partial-record.bin", record(1) + record(2)[:1000], "cifar",
        ["size 4073 bytes is not a multiple of the 3073-byte record", "1 whole records and 1000 bytes over"],
        "data_batch_3.bin")
    add("cifar-label-out-of-range.bin", record(1) + record(10), "cifar",
        ["record 1 has label 10; CIFAR-10 labels are 0...9"], "test_batch.bin")
    add("cifar-label-255.bin", record(255), "cifar", ["record 0 has label 255"], "data_batch_5.bin")

    # MNIST IDX files, plain and gzip.
    images = idx(3, [2, 28, 28], bytes(2 * 784))
    add("mnist-images-wrong-magic", idx(1, [2, 28, 28], bytes(2 * 784)), "mnist",
        ["bad magic number: expected 0x00000803, found 0x00000801"], "train-images-idx3-ubyte")
    add("mnist-images-int-type", bytes([0, 0, 0x0C, 3]) + images[4:], "mnist",
        ["bad magic number: expected 0x00000803, found 0x00000C03"], "train-images-idx3-ubyte")
    add("mnist-images-truncated", images[:900], "mnist",
        ["truncated IDX file: expected 1584 bytes for a 2x28x28 array, found 900"], "train-images-idx3-ubyte")
    add("mnist-images-header-only", images[:10], "mnist",
        ["truncated IDX file: expected at least 16 bytes of header"], "t10k-images-idx3-ubyte")
    add("mnist-images-too-long", images + b"\x00" * 7, "mnist",
        ["IDX file too long", "7 bytes of trailing data"], "train-images-idx3-ubyte")
    add("mnist-images-huge-dimensions", idx(3, [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF], b""), "mnist",
        ["IDX dimensions", "too large"], "train-images-idx3-ubyte")
    # Found by Scripts/fuzz (FuzzIDX): a size just below Int.max plus the header overflowed.
    add("mnist-images-size-overflow", idx(3, [2147483647, 2, 2147483649], b""), "mnist",
        ["IDX dimensions [2147483647, 2, 2147483649] are too large"], "train-images-idx3-ubyte")
    add("idx-fuzz-crash-37089030", bytes.fromhex("000008047fffffff000000028000000100000001fffc0000"), "idx",
        ["IDX dimensions [2147483647, 2, 2147483649, 1] are too large"])
    add("mnist-images-count-mismatch", idx(3, [3, 28, 28], bytes(3 * 784)), "mnist",
        ["holds 3 images but", "holds 2 labels"], "train-images-idx3-ubyte")
    add("mnist-images-too-large-to-pad", idx(3, [2, 40, 40], bytes(2 * 1600)), "mnist",
        ["images are 40x40; cannot pad them to 32x32"], "train-images-idx3-ubyte")
    add("mnist-labels-out-of-range", idx(1, [2], bytes([3, 10])), "mnist",
        ["label 10 of image 1 is out of range 0...9"], "train-labels-idx1-ubyte")
    add("mnist-labels-empty", b"", "mnist", ["truncated IDX file: expected at least 4 bytes of header, found 0"],
        "t10k-labels-idx1-ubyte")
    packed = gzip.compress(images, mtime=0)
    add("mnist-images-gzip-truncated.gz", packed[: len(packed) // 2], "mnist",
        ["truncated gzip stream"], "train-images-idx3-ubyte.gz")
    bad_crc = bytearray(packed)
    bad_crc[-8] ^= 0xFF
    add("mnist-images-gzip-bad-crc.gz", bytes(bad_crc), "mnist", ["corrupt gzip stream"], "train-images-idx3-ubyte.gz")
    add("mnist-images-gzip-trailing-garbage.gz", packed + b"garbage", "mnist",
        ["7 bytes of trailing data after the gzip stream"], "train-images-idx3-ubyte.gz")
    add("mnist-labels-gzip-bad-header.gz", b"\x1f\x8b\x09" + packed[3:], "mnist", ["corrupt gzip stream"],
        "train-labels-idx1-ubyte.gz")
    add("mnist-labels-gzip-out-of-range.gz", gzip.compress(idx(1, [2], bytes([200, 0])), mtime=0), "mnist",
        ["label 200 of image 0 is out of range 0...9"], "train-labels-idx1-ubyte.gz")

    # Checkpoints to resume from: metadata that cannot be a count.
    bias = {"conv1.bias": {"dtype": "F32", "shape": [16], "data_offsets": [0, 64]}}

    def checkpoint(**meta):
        base = {"format": "lenetkit-1", "model": "cifar-lenet", "epoch": "1", "images_seen": "2"}
        base.update(meta)
        return safetensors(bias, f32(*[0.0] * 16), base)

    add("checkpoint-images-seen-negative.safetensors", checkpoint(images_seen="-5"), "checkpoint",
        ["has images_seen '-5', expected a whole number from 0 to"])
    add("checkpoint-images-seen-huge.safetensors", checkpoint(images_seen="9223372036854775807"), "checkpoint",
        ["has images_seen '9223372036854775807', expected a whole number from 0 to"])
    add("checkpoint-epoch-huge.safetensors", checkpoint(epoch="9223372036854775807"), "checkpoint",
        ["has epoch '9223372036854775807', expected a whole number from 0 to 1000000000"])
    add("checkpoint-epoch-float.safetensors", checkpoint(epoch="1e3"), "checkpoint",
        ["has epoch '1e3', expected a whole number"])
    add("checkpoint-epoch-step-negative.safetensors", checkpoint(epoch_step="-1"), "checkpoint",
        ["has epoch_step '-1', expected a whole number of steps"])
    add("checkpoint-no-epoch.safetensors", safetensors(bias, f32(*[0.0] * 16), {"model": "cifar-lenet"}), "checkpoint",
        ["has no epoch / images_seen metadata"])

    # lenetkit-1 training states: an SGD step count no Int can hold, a shuffle generator of zeros.
    def state(step, shuffle="1,2,3,4"):
        meta = {"epoch": "1", "optimizer": "sgd", "shuffle_state": shuffle}
        return safetensors({"sgd.step": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, f32(step), meta)

    add("state-sgd-step-inf.state", state(float("inf")), "state", ["the SGD step count (sgd.step) is inf"])
    add("state-sgd-step-1e30.state", state(1e30), "state", ["the SGD step count (sgd.step) is 1e+30"])
    add("state-sgd-step-negative.state", state(-3.0), "state", ["the SGD step count (sgd.step) is -3.0"])
    add("state-sgd-step-fraction.state", state(2.5), "state", ["the SGD step count (sgd.step) is 2.5"])
    add("state-sgd-step-nan.state", state(float("nan")), "state", ["the SGD step count (sgd.step) is nan"])
    add("state-shuffle-zero.state", state(1.0, "0,0,0,0"), "state",
        ["lenetkit-1 metadata 'shuffle_state' is all zeros"])

    # lenetkit-2 training states: one JSON value under training_state, each with one bad field.
    def state2(json_text=None, **fields):
        value = {"format": "lenetkit-2", "epoch": 1, "images_seen": 4, "epoch_step": 0, "optimizer": "sgd",
                 "shuffle_state": [1, 2, 3, 4], "weights_digest": "0000000000000000"}
        value.update(fields)
        text = json_text if json_text is not None else json.dumps(value, sort_keys=True, separators=(",", ":"))
        meta = {"format": "lenetkit-2", "training_state": text}
        return safetensors({"sgd.step": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, f32(1.0), meta)

    add("state2-not-json.state", state2("{"), "state", ["metadata 'training_state' is not valid JSON"])
    add("state2-format-3.state", state2(format="lenetkit-3"), "state",
        ["training state field 'format' is \"lenetkit-3\""])
    add("state2-shuffle-word-too-large.state", state2(shuffle_state=[1, 2, 2 ** 64, 4]), "state",
        ["training state field 'shuffle_state[2]' is 1.8446744073709552e+19"])
    add("state2-correct-above-images.state",
        state2(epoch_step=1, interrupted_epoch={"batch_size": 2, "examples": 4, "loss_sum": 4.5, "images": 2,
                                                "correct": 3, "seconds": 0.25}), "state",
        ["training state field 'interrupted_epoch.correct' is 3, more than interrupted_epoch.images (2)"])
    add("state2-seconds-negative.state", state2(time_budget={"seconds_used": -1.5}), "state",
        ["training state field 'time_budget.seconds_used' is -1.5, expected a finite number"])

    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote %d files and manifest.json to %s" % (len(manifest), OUT))


if __name__ == "__main__":
    main()
