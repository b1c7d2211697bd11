"""The canonical GPT-2 encoder (openai/gpt-2 src/encoder.py: Python `regex`) on sprout's token files.

    python3 bpe_ref.py PKG TOKENS.bin...

Each token file is split at <|endoftext|> into documents; each document is decoded to bytes
through GPT-2's byte map and encoded again by encoder.py's algorithm; the ids must be equal.
Used where Encoder.js departs from encoder.py (its JavaScript \\s: U+0085 is not a space there,
U+FEFF is). Exit 1 at the first difference, 77 when the `regex` module is missing.
"""
import json
import os
import struct
import sys

try:
    import regex
except ImportError:
    print("python3 regex module missing: canonical GPT-2 comparison skipped")
    sys.exit(77)

from gpt2_bytes import bytes_to_unicode  # noqa: E402 (after the regex check)

EOT = 50256


def get_pairs(word):
    return set(zip(word, word[1:]))


class Encoder:
    def __init__(self, pkg):
        with open(os.path.join(pkg, "encoder.json"), encoding="utf-8") as f:
            self.encoder = json.load(f)
        with open(os.path.join(pkg, "vocab.bpe"), encoding="utf-8") as f:
            merges = [tuple(m.split()) for m in f.read().split("\n")[1:-1]]
        self.ranks = dict(zip(merges, range(len(merges))))
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {v: k for k, v in self.byte_encoder.items()}
        self.decoder = {v: k for k, v in self.encoder.items()}
        self.pat = regex.compile(
            r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""")
        self.cache = {}

    def bpe(self, token):
        if token in self.cache:
            return self.cache[token]
        word = tuple(token)
        pairs = get_pairs(word)
        while pairs:
            bigram = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if bigram not in self.ranks:
                break
            first, second = bigram
            new, i = [], 0
            while i < len(word):
                try:
                    j = word.index(first, i)
                except ValueError:
                    new.extend(word[i:])
                    break
                new.extend(word[i:j])
                i = j
                if word[i] == first and i < len(word) - 1 and word[i + 1] == second:
                    new.append(first + second)
                    i += 2
                else:
                    new.append(word[i])
                    i += 1
            word = tuple(new)
            if len(word) == 1:
                break
            pairs = get_pairs(word)
        self.cache[token] = word
        return word

    def encode(self, text):
        out = []
        for tok in regex.findall(self.pat, text):
            tok = "".join(self.byte_encoder[b] for b in tok.encode("utf-8"))
            out.extend(self.encoder[t] for t in self.bpe(tok))
        return out

    def decode_bytes(self, ids):
        return bytes(self.byte_decoder[c] for i in ids for c in self.decoder[i])


def read_tokens(path):
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"SPRTOK01", path
    n = struct.unpack_from("<Q", b, 12)[0]
    return list(struct.unpack_from("<%dH" % n, b, 32))


def main():
    pkg, files = sys.argv[1], sys.argv[2:]
    enc = Encoder(pkg)
    for path in files:
        docs = [[]]
        for t in read_tokens(path):
            if t == EOT:
                docs.append([])
            else:
                docs[-1].append(t)
        for d, ids in enumerate(docs):
            got = enc.encode(enc.decode_bytes(ids).decode("utf-8"))
            if got != ids:
                i = next(k for k in range(max(len(got), len(ids)))
                         if k >= len(got) or k >= len(ids) or got[k] != ids[k])
                print("%s: document %d: token %d: sprout %s, encoder.py %s" %
                      (path, d, i, ids[max(0, i - 3):i + 4], got[max(0, i - 3):i + 4]))
                sys.exit(1)
        print("%s: %d document(s) equal to encoder.py" % (path, len(docs)))


if __name__ == "__main__":
    main()
