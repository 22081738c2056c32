"""RFC 6962 / RFC 9162 Merkle inclusion proofs, as transparency logs (Rekor v1 and v2) give them.

1. The leaf hash of an entry is SHA-256(0x00 || entry), an inner node SHA-256(0x01 || left ||
   right).
2. The proof's hashes are the siblings on the path from the leaf at `index` up to the root of a
   tree of `size` leaves, lowest first; the path is walked as RFC 9162 section 2.1.3.2 says
   (where the leaf's index and the last index agree on the remaining bits, the node has no
   right sibling and the hash moves up unchanged).
3. The proof holds exactly the hashes the path needs (no more, no fewer), each 32 bytes, and
   what it computes is the root hash; anything else fails with a message saying which.
"""

from __future__ import annotations

import hashlib
from typing import Final

from signet.reasons import DeterministicFailure, Reason

__all__ = ["HASH_SIZE", "MAX_PROOF_HASHES", "leaf_hash", "verify_inclusion"]

HASH_SIZE: Final = 32
# A tree of 2**64 leaves needs 64; a longer proof is not a proof (refused when parsed).
MAX_PROOF_HASHES: Final = 64


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def _node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: tuple[bytes, ...], root: bytes
) -> None:
    """That `leaf` (a leaf hash) is at `index` of the tree of `size` leaves whose root is `root`."""
    if not 0 <= index < size:
        raise _invalid(f"the inclusion proof's leaf index {index} is not in a tree of {size}")
    if len(root) != HASH_SIZE or any(len(sibling) != HASH_SIZE for sibling in proof):
        raise _invalid("the inclusion proof holds a hash that is not 32 bytes")
    node, last = index, size - 1
    computed = leaf
    for sibling in proof:
        if last == 0:
            raise _invalid("the inclusion proof has more hashes than the path to the root")
        if node & 1 or node == last:
            computed = _node_hash(sibling, computed)
            while not node & 1 and node != 0:
                node, last = node >> 1, last >> 1
        else:
            computed = _node_hash(computed, sibling)
        node, last = node >> 1, last >> 1
    if last != 0:
        raise _invalid("the inclusion proof has fewer hashes than the path to the root")
    if computed != root:
        raise _invalid("the inclusion proof does not lead to the root hash")


def _invalid(message: str) -> DeterministicFailure:
    return DeterministicFailure(Reason.SIGNATURE_INVALID, message)
