#!/usr/bin/env python3
"""Writes small valid seed inputs for the fuzz targets into seeds/<target>/ (python3 stdlib and
cjpeg from libjpeg-turbo-progs). The bad-file corpus in tests/data/bad is added at run time."""
import math, os, struct, subprocess, zlib

here = os.path.dirname(os.path.abspath(__file__))

def out(target, name, data):
    d = os.path.join(here, "seeds", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)

def chunk(kind, body):
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

def png(w, h, depth, ctype, rows, extra=b""):
    raw = b"".join(b"\0" + r for r in rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
            + extra + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))

w, h = 12, 8
rgb = [bytes((x * 20 + k * 50 + y * 7) % 256 for x in range(w) for k in range(3)) for y in range(h)]
out("png", "rgb.png", png(w, h, 8, 2, rgb))
out("png", "rgba.png", png(w, h, 8, 6, [bytes((x * 9 + k * 60 + y) % 256 for x in range(w) for k in range(4)) for y in range(h)]))
out("png", "gray16.png", png(w, h, 16, 0, [b"".join(struct.pack(">H", x * 5000 + y) for x in range(w)) for y in range(h)]))
pal = chunk(b"PLTE", bytes(range(48))) + chunk(b"tRNS", bytes([255, 128, 0]))
out("png", "palette.png", png(w, h, 4, 3, [bytes(((x * 2) % 16) << 4 | ((x * 2 + 1) % 16) for x in range(w // 2)) for y in range(h)], pal))

ppm = b"P6 %d %d 255\n" % (w, h) + b"".join(rgb)
pgm = b"P5 %d %d 255\n" % (w, h) + b"".join(r[::3] for r in rgb)
for name, args, src in (("baseline.jpg", [], ppm), ("progressive.jpg", ["-progressive"], ppm),
                        ("gray.jpg", [], pgm), ("restart.jpg", ["-restart", "1B"], ppm)):
    out("jpeg", name, subprocess.run(["cjpeg", "-quality", "75"] + args, input=src,
                                     capture_output=True, check=True).stdout)

def wav(tag, channels, rate, bits, pcm, extra=b""):
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * channels * bits // 8, channels * bits // 8, bits)
    body = b"WAVE" + chunk_le(b"fmt ", fmt) + extra + chunk_le(b"data", pcm)
    return b"RIFF" + struct.pack("<I", len(body)) + body

def chunk_le(kind, body):
    return kind + struct.pack("<I", len(body)) + body + (b"\0" if len(body) % 2 else b"")

sine = [math.sin(2 * math.pi * 440 * i / 8000) for i in range(64)]
out("wav", "s16-stereo.wav", wav(1, 2, 8000, 16, b"".join(struct.pack("<hh", int(9000 * s), int(-9000 * s)) for s in sine)))
out("wav", "u8-mono.wav", wav(1, 1, 8000, 8, bytes(int(128 + 100 * s) for s in sine)))
out("wav", "f32.wav", wav(3, 1, 8000, 32, b"".join(struct.pack("<f", s) for s in sine)))
out("wav", "s24-list.wav", wav(1, 1, 8000, 24, b"".join(struct.pack("<i", int(8e6 * s))[:3] for s in sine),
                               chunk_le(b"LIST", b"INFOISFT\x05\0\0\0fuzz\0\0")))

out("csv", "basic.csv", b"id,text,label\r\n1,hello,a\r\n2,\"quoted, \"\"text\"\"\",b\r\n")
out("csv", "multiline.csv", b"\xef\xbb\xbftext,label\n\"two\nlines\",x\n,\n\n\"\",\"\"\n")
out("csv", "unicode.csv", "text\n\u4e2d\u6587 \U0001F600\ne\u0301\n".encode())
