#!/usr/bin/env python3
"""Writes the JPEG fixtures and the pixels Pillow decodes from them,
Tests/LeNetKitTests/Fixtures/images/:

    /path/to/venv/bin/python Scripts/make_image_fixtures.py

Run by hand (never by CI); the files it writes are checked in. Needs numpy
and Pillow. For each NAME.jpg, NAME.pillow holds what
`Image.open(NAME.jpg).convert(MODE)` gives, MODE "L" for a gray file and
"RGB" otherwise, as raw (H, W, C) bytes; ImageCodecTests checks that
LeNetKit's libjpeg-turbo path decodes the same bytes. The images are small,
odd-sized (so chroma upsampling meets the edges), and hold gradients, edges
and noise (so the IDCT's rounding shows).
"""
import io, os
import numpy as np
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "Tests", "LeNetKitTests", "Fixtures", "images")


def picture(width, height, seed):
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(width - 1, 1))
    g = (y * 255 // max(height - 1, 1))
    b = ((x + y) % 7 < 3) * 200 + 20          # hard edges
    rgb = np.stack([r, g, b], axis=-1).astype(np.int32)
    rgb += rng.integers(-30, 31, size=rgb.shape)  # noise
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


def write(name, image, **save):
    path = os.path.join(OUT, name + ".jpg")
    image.save(path, "JPEG", **save)
    decoded = Image.open(path)
    mode = "L" if decoded.mode == "L" else "RGB"
    pixels = np.asarray(decoded.convert(mode), dtype=np.uint8)
    with open(os.path.join(OUT, name + ".pillow"), "wb") as f:
        f.write(pixels.tobytes())
    print(f"{name}.jpg: {decoded.mode} {decoded.size[0]}x{decoded.size[1]} -> {mode}, "
          f"{os.path.getsize(path)} bytes")


def main():
    os.makedirs(OUT, exist_ok=True)
    write("baseline-420", picture(37, 23, 1), quality=90)                    # 4:2:0, the common case
    write("baseline-444", picture(33, 17, 2), quality=75, subsampling=0)     # no chroma subsampling
    write("baseline-422", picture(35, 19, 3), quality=85, subsampling=1)     # 4:2:2
    write("progressive", picture(40, 29, 4), quality=80, progressive=True)   # several scans
    write("gray", picture(31, 21, 5).convert("L"), quality=90)               # one component
    write("gray-progressive", picture(24, 26, 6).convert("L"), quality=70, progressive=True)
    write("cmyk", picture(19, 13, 7).convert("CMYK"), quality=95)            # Adobe CMYK
    write("restart", picture(48, 40, 8), quality=85, restart_marker_blocks=2)  # restart markers


if __name__ == "__main__":
    main()
