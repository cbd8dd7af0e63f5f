#!/usr/bin/env python3
"""Regenerates the bad-file corpus in this folder (python3 stdlib + cjpeg from
libjpeg-turbo-progs). EXPECTED lists the error code each file must produce; files found by
fuzzing are added by hand with a line there."""
import gzip, math, os, struct, subprocess, zlib

here = os.path.dirname(os.path.abspath(__file__))
os.chdir(here)

def write(name, data):
    with open(name, "wb") as f:
        f.write(data)

def png(width, height, rgb_rows):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    raw = b"".join(b"\0" + row for row in rgb_rows)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))

def wav(rate, channels, frames, data_size=None):
    pcm = b"".join(struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) * channels
                   for i in range(frames))
    size = len(pcm) if data_size is None else data_size
    fmt = struct.pack("<HHIIHH", 1, channels, rate, rate * channels * 2, channels * 2, 16)
    return b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt " + struct.pack("<I", 16) + fmt \
        + b"data" + struct.pack("<I", size) + pcm

# Images: a 64x48 gradient.
rows = [bytes((x * 4 + k * 30 + y) % 256 for x in range(64) for k in range(3)) for y in range(48)]
good_png = png(64, 48, rows)
ppm = b"P6 64 48 255\n" + b"".join(rows)
good_jpg = subprocess.run(["cjpeg", "-quality", "90"], input=ppm, capture_output=True, check=True).stdout

write("truncated.jpg", good_jpg[: len(good_jpg) // 2])
sof = good_jpg.index(b"\xff\xc0")
write("corrupt.jpg", good_jpg[: sof + 9] + b"\x00" + good_jpg[sof + 10 :])  # zero components
sos = good_jpg.index(b"\xff\xda")
scan = sos + 2 + struct.unpack(">H", good_jpg[sos + 2 : sos + 4])[0]
mid = scan + (len(good_jpg) - scan) // 2
write("corrupt-scan.jpg", good_jpg[:mid] + b"\xff\xd0" * 8 + good_jpg[mid + 16 :])  # stray markers
idat = good_png.index(b"IDAT")
idat_len = struct.unpack(">I", good_png[idat - 4 : idat])[0]
crc = idat + 4 + idat_len
write("bad-crc.png", good_png[:crc] + bytes(b ^ 0xFF for b in good_png[crc : crc + 4]) + good_png[crc + 4 :])
write("truncated.png", good_png[: len(good_png) - 40])
huge = bytearray(good_png)
huge[16:24] = struct.pack(">II", 100000, 100000)
huge[29:33] = struct.pack(">I", zlib.crc32(bytes(huge[12:29])))
write("huge.png", bytes(huge))
for name in ("empty.jpg", "empty.png", "empty.wav", "empty.csv", "empty.jsonl", "empty-idx1-ubyte"):
    write(name, b"")

# Audio: 0.1 s at 8 kHz.
good_wav = wav(8000, 1, 800)
write("truncated.wav", good_wav[: len(good_wav) - 700])
write("lying-size.wav", wav(8000, 1, 100, data_size=10_000_000))
lying_rate = bytearray(wav(8000, 1, 100))
lying_rate[24:28] = struct.pack("<I", 0)
write("lying-rate.wav", bytes(lying_rate))
write("no-data-chunk.wav", good_wav[:36])

# Text and records.
write("latin1.txt", "Caf\u00e9 cr\u00e8me, na\u00efve r\u00e9sum\u00e9\n".encode("latin-1"))
write("unterminated-quote.csv", b'id,text,label\n1,"fine",a\n2,"never closed,b\n3,x,c\n')
write("missing-column.csv", b"id,body,label\n1,hello,a\n")
write("broken-line.jsonl", b'{"text": "ok", "label": "a"}\n{"text": "broken", "label": \n{"text": "x"}\n')

# IDX: 10 records of 4x4 bytes, cut short.
idx = struct.pack(">BBBBIII", 0, 0, 8, 3, 10, 4, 4) + bytes(range(160))
write("truncated-idx3-ubyte", idx[:100])
write("truncated-idx3-ubyte.gz", gzip.compress(idx, mtime=0)[:60])
