"""Entropy coding for the compressed file: canonical Huffman codes and fixed-width bit packing.

Frequent symbols get short bit strings and rare ones long strings (Huffman 1952), so unevenly used symbols
(cluster indices, gaps between nonzero weights) take fewer bits than a fixed width. The code is *canonical*: the
code length of each symbol describes it completely, so a stream stores only those lengths and the bits.
:func:`encode` and :func:`decode` pick Huffman or fixed-width coding; :mod:`course_utils.compressed_file` uses them
for every coded stream. Malformed input raises ``ValueError`` saying what was being read.
"""

from __future__ import annotations

import heapq
import struct
from typing import NamedTuple

import torch

from .validate import bit_width

__all__ = ["HuffmanCode", "Reader", "code_lengths", "decode", "encode", "fixed_decode",
           "fixed_encode", "huffman_decode", "huffman_encode"]

MAX_CODE_LENGTH = 57  # bits; a longer code needs ~10^12 symbols (Fibonacci counts), far beyond any layer here


class HuffmanCode(NamedTuple):
    """A canonical Huffman code: ``lengths[s]`` bits for symbol ``s`` (0 = symbol unused)."""

    lengths: torch.Tensor  # int64, one entry per symbol of the alphabet

    @property
    def alphabet_size(self) -> int:
        return len(self.lengths)


def _check_symbols(symbols: torch.Tensor, alphabet_size: int) -> torch.Tensor:
    if not isinstance(symbols, torch.Tensor) or symbols.dtype.is_floating_point or symbols.dtype == torch.bool:
        raise ValueError("symbols must be an integer tensor (e.g. torch.int64)")
    if not isinstance(alphabet_size, int) or alphabet_size < 1:
        raise ValueError(f"alphabet_size must be a positive integer, got {alphabet_size!r}")
    symbols = symbols.reshape(-1).long()
    if len(symbols) and (symbols.min() < 0 or symbols.max() >= alphabet_size):
        raise ValueError(f"symbols must lie in [0, {alphabet_size}), got values in "
                         f"[{int(symbols.min())}, {int(symbols.max())}]")
    return symbols


def code_lengths(counts: torch.Tensor) -> HuffmanCode:
    """Huffman code lengths (bits per symbol) for symbols seen ``counts[s]`` times.

    Unused symbols get length 0; if only one symbol is used it gets one bit.
    Ties are broken by symbol number, so the code is deterministic.
    """
    counts = torch.as_tensor(counts).reshape(-1).long()
    if len(counts) == 0 or (counts < 0).any():
        raise ValueError("counts must be a non-empty 1-D tensor of non-negative integers")
    lengths = torch.zeros(len(counts), dtype=torch.int64)
    used = [(int(c), s) for s, c in enumerate(counts.tolist()) if c > 0]
    if len(used) == 1:
        lengths[used[0][1]] = 1
    if len(used) <= 1:
        return HuffmanCode(lengths)
    # Heap items: (count, tie-breaker, symbols below this node). Merging two nodes adds one bit to each symbol.
    heap = [(c, s, [s]) for c, s in used]
    heapq.heapify(heap)
    depth = [0] * len(counts)
    while len(heap) > 1:
        c1, t1, s1 = heapq.heappop(heap)
        c2, t2, s2 = heapq.heappop(heap)
        for s in s1 + s2:
            depth[s] += 1
        heapq.heappush(heap, (c1 + c2, min(t1, t2), s1 + s2))
    lengths = torch.tensor(depth, dtype=torch.int64)
    if int(lengths.max()) > MAX_CODE_LENGTH:  # pragma: no cover - needs astronomically many symbols
        raise ValueError(f"a Huffman code longer than {MAX_CODE_LENGTH} bits is not supported")
    return HuffmanCode(lengths)


def _canonical(lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Canonical code words (as integers) for ``lengths``, and the symbols sorted by (length, symbol)."""
    used = torch.nonzero(lengths > 0).flatten()
    order = used[torch.argsort(lengths[used] * (len(lengths) + 1) + used)]
    codes = torch.zeros(len(lengths), dtype=torch.int64)
    code, previous = 0, 0
    for s in order.tolist():
        n = int(lengths[s])
        code <<= n - previous
        codes[s] = code
        code += 1
        previous = n
    return codes, order


def _expected_bits(symbols: torch.Tensor, code: HuffmanCode) -> int:
    """Bits the stream ``symbols`` takes with ``code`` (without the table)."""
    return int(code.lengths[symbols.reshape(-1).long()].sum()) if symbols.numel() else 0


def _pack_bits(bits: torch.Tensor) -> bytes:
    pad = (-len(bits)) % 8
    bits = torch.cat([bits.to(torch.uint8), torch.zeros(pad, dtype=torch.uint8)]).view(-1, 8).long()
    weights = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1])
    return (bits * weights).sum(1).to(torch.uint8).numpy().tobytes()


def _unpack_bits(data: bytes, n_bits: int) -> torch.Tensor:
    raw = torch.frombuffer(bytearray(data), dtype=torch.uint8).long()
    bits = (raw[:, None] >> torch.arange(7, -1, -1)) & 1
    return bits.flatten()[:n_bits]


def _table_bytes(lengths: torch.Tensor) -> bytes:
    """The code table: alphabet size, then either every length (dense) or (symbol, length) pairs (sparse)."""
    used = torch.nonzero(lengths > 0).flatten()
    dense = struct.pack("<IB", len(lengths), 0) + bytes(lengths.tolist())
    sparse = struct.pack("<IBI", len(lengths), 1, len(used)) + b"".join(
        struct.pack("<IB", s, int(lengths[s])) for s in used.tolist())
    return dense if len(dense) <= len(sparse) else sparse


def huffman_encode(symbols: torch.Tensor, alphabet_size: int) -> bytes:
    """Huffman-code a stream of integer symbols in ``[0, alphabet_size)``; returns self-contained bytes.

    Layout (little-endian): the code table (see :func:`huffman_decode`), the number of
    symbols (uint32), the number of bits (uint64), then the bits, most
    significant first, padded with zeros to a whole byte.
    """
    symbols = _check_symbols(symbols, alphabet_size)
    if len(symbols) >= 2**32:
        raise ValueError("at most 2**32 - 1 symbols per stream")
    code = code_lengths(torch.bincount(symbols, minlength=alphabet_size))
    codes, _ = _canonical(code.lengths)
    n_bits = _expected_bits(symbols, code)
    out = _table_bytes(code.lengths) + struct.pack("<IQ", len(symbols), n_bits)
    if len(symbols) == 0:
        return out
    lens, words = code.lengths[symbols], codes[symbols]
    width = int(lens.max())
    shift = lens[:, None] - 1 - torch.arange(width)  # bit j of a word of length n is (word >> (n-1-j)) & 1
    bits = (words[:, None] >> shift.clamp(min=0)) & 1
    return out + _pack_bits(bits[shift >= 0])


class Reader:
    """Reads little-endian fields from bytes; any shortfall is a ValueError that says what was being read."""

    def __init__(self, data: bytes, offset: int = 0):
        self.data, self.offset = data, offset

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.offset + n > len(self.data):
            raise ValueError(f"truncated data: {what} needs {n} bytes, {len(self.data) - self.offset} left")
        chunk = self.data[self.offset:self.offset + n]
        self.offset += n
        return chunk

    def unpack(self, fmt: str, what: str):
        return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))


def huffman_decode(data: bytes, offset: int = 0, max_alphabet: int = 2**17) -> tuple[torch.Tensor, int]:
    """Read one stream written by :func:`huffman_encode` from ``data[offset:]``.

    Returns the symbols (int64 tensor) and the offset just after the stream.
    Malformed input raises ``ValueError``.
    """
    if not isinstance(data, (bytes, bytearray)):
        raise ValueError("data must be bytes")
    r = Reader(data, offset)
    alphabet, layout = r.unpack("<IB", "Huffman table header")
    if not 1 <= alphabet <= max_alphabet or layout not in (0, 1):
        raise ValueError(f"bad Huffman table (alphabet {alphabet}, layout {layout})")
    lengths = torch.zeros(alphabet, dtype=torch.int64)
    if layout == 0:
        lengths[:] = torch.tensor(list(r.take(alphabet, "Huffman code lengths")), dtype=torch.int64)
    else:
        (n_used,) = r.unpack("<I", "Huffman table size")
        if n_used > alphabet:
            raise ValueError("bad Huffman table (more entries than symbols)")
        for _ in range(n_used):
            s, n = r.unpack("<IB", "Huffman table entry")
            if s >= alphabet:
                raise ValueError("bad Huffman table (symbol outside the alphabet)")
            lengths[s] = n
    n_symbols, n_bits = r.unpack("<IQ", "Huffman stream header")
    if int(lengths.max()) > MAX_CODE_LENGTH:
        raise ValueError("bad Huffman table (code too long)")
    if n_symbols == 0:
        return torch.zeros(0, dtype=torch.int64), r.offset
    used = lengths > 0
    if not used.any() or n_bits > 8 * (len(data) - r.offset) or n_bits < n_symbols or n_bits > n_symbols * MAX_CODE_LENGTH:
        raise ValueError("bad Huffman stream (its bit count does not match the data)")
    kraft = sum(2.0 ** -n for n in lengths[used].tolist())
    if kraft > 1.0 + 1e-12:
        raise ValueError("bad Huffman table (not a prefix code)")
    bits = _unpack_bits(r.take((n_bits + 7) // 8, "Huffman bits"), n_bits)
    codes, order = _canonical(lengths)
    width = int(lengths.max())
    # The `width` bits starting at every position, as an integer (zeros past the end).
    padded = torch.cat([bits, torch.zeros(width, dtype=torch.int64)])
    window = torch.zeros(n_bits, dtype=torch.int64)
    for j in range(width):
        window = (window << 1) | padded[j:j + n_bits]
    # Canonical decoding: the code length at a position is the first length whose left-aligned
    # upper limit exceeds the window; the symbol is found from the offset within that length.
    sorted_lengths = lengths[order]
    sorted_codes = codes[order]
    limits, firsts, starts, lens = [], [], [], []
    for n in sorted(set(sorted_lengths.tolist())):
        where = torch.nonzero(sorted_lengths == n).flatten()
        first = int(sorted_codes[where[0]])
        lens.append(n)
        firsts.append(first)
        starts.append(int(where[0]))
        limits.append((first + len(where)) << (width - n))
    pick = torch.searchsorted(torch.tensor(limits), window, right=True).clamp(max=len(lens) - 1)
    length_at = torch.tensor(lens)[pick]
    index_at = torch.tensor(starts)[pick] + (window >> (width - length_at)) - torch.tensor(firsts)[pick]
    step = length_at.tolist()
    positions = [0] * n_symbols
    p = 0
    for i in range(n_symbols):  # the one sequential part: each code word starts where the previous ended
        if p >= n_bits:
            raise ValueError("bad Huffman stream (fewer bits than symbols)")
        positions[i] = p
        p += step[p]
    if p != n_bits:
        raise ValueError("bad Huffman stream (its bits do not end with the last symbol)")
    index = index_at[torch.tensor(positions)]
    if (index < 0).any() or (index >= len(order)).any():
        raise ValueError("bad Huffman stream (a code word that is not in the table)")
    return order[index], r.offset


def fixed_encode(symbols: torch.Tensor, width: int) -> bytes:
    """Symbols in ``[0, 2**width)`` packed in ``width`` bits each (no Huffman code): the count, then the bits."""
    bit_width(width, "width")
    symbols = _check_symbols(symbols, 2**width)
    bits = (symbols[:, None] >> torch.arange(width - 1, -1, -1)) & 1
    return struct.pack("<I", len(symbols)) + (_pack_bits(bits.flatten()) if len(symbols) else b"")


def fixed_decode(data: bytes, offset: int, width: int) -> tuple[torch.Tensor, int]:
    """Read one stream written by :func:`fixed_encode`; returns the symbols and the offset after it."""
    r = Reader(data, offset)
    (count,) = r.unpack("<I", "fixed-width stream length")
    raw = r.take((count * width + 7) // 8, "fixed-width symbols")
    bits = _unpack_bits(raw, count * width).view(count, width) if count else torch.zeros(0, width, dtype=torch.long)
    return (bits * (1 << torch.arange(width - 1, -1, -1))).sum(1), r.offset


def encode(symbols: torch.Tensor, width: int, huffman: bool) -> bytes:
    return huffman_encode(symbols, 2**width) if huffman else fixed_encode(symbols, width)


def decode(reader: "Reader", width: int, huffman: bool) -> torch.Tensor:
    if huffman:
        symbols, reader.offset = huffman_decode(reader.data, reader.offset, max_alphabet=2**16)
    else:
        symbols, reader.offset = fixed_decode(reader.data, reader.offset, width)
    return symbols
