"""GPT-2's bytes_to_unicode (openai/gpt-2 encoder.py), written out independently of sprout's C:
printable Latin-1 bytes map to themselves, the other 68 to U+0100 onward in byte order. Shared
by the tests' Python references (bpe_ref.py, torch/check_hf_export.py)."""


def bytes_to_unicode():
    bs = (list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
          + list(range(ord("®"), ord("ÿ") + 1)))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs)))
