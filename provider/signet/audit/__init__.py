"""The decision log: every decision the provider makes, in a tamper-evident, queryable chain.

Layout. One directory per replica (default: the host name) under the log's directory, each
holding numbered segments: `LOG/<replica>/segment-000001.jsonl`, `segment-000002.jsonl`, ...
(and a `.lock` the writer holds). Each replica's segments form one chain; replicas are
independent chains, merged by time only when queried.

Lines. One JSON object per line, in canonical form (`json.dumps(sort_keys=True,
separators=(",", ":"), ensure_ascii=True)`; a line in any other spelling fails verification), so
a line's SHA-256 is reproducible. The previous line of a segment's first line is the last line
of the segment before it; of the replica's first line, none.

    record      {"seq": n, "prev": H(previous line) or "0"*64, "decision": Decision.to_json()}
    checkpoint  {"checkpoint": {"replica", "segment", "first_seq", "last_seq", "count", "head",
                 "time"}, "signature": base64, "scheme": "ecdsa-p256-sha256", "key": fingerprint}

`seq` counts from 1, consecutive across the replica's segments. `H` is the hex SHA-256 of a
line's bytes without its newline, checkpoints included: the line after a checkpoint chains
from it. A checkpoint seals its segment so far: `first_seq`..`last_seq` (`count` records), the
last of which hashes to `head`; its signature is over the checkpoint object's canonical bytes,
by the log's signing key (`signet.crypto.keyfile.Signer`), and `key` is that key's
fingerprint (SHA-256 of its DER SubjectPublicKeyInfo). Use a key for nothing but the log.

When checkpoints are written: when a segment reaches its size (8 MiB by default; the segment
then ends), every 1,000 records and at most 60 s after a record is written (both configurable),
and when the log is closed — so a cleanly closed log ends with a checkpoint. Segments are
fsynced at each checkpoint.

Restarts. A writer never appends to an existing segment: it continues the chain in a new one,
from the last whole line of the newest. A torn last line (a crash mid-write) is left in place;
the chain skips it, and verify reports it as a warning.

What verification detects (`signet audit verify`, `verify.py` has the algorithm): any changed,
inserted, removed or reordered line before the last checkpoint; a checkpoint signed by a key
not given, or edited; a missing middle segment; a segment cut short when a later one exists.
What it cannot: records after a replica's last checkpoint may have been removed (a crashed
writer leaves the same shape) — they are reported as *unsealed*, a warning (`--strict` makes it a
failure); and whole trailing segments ending at a checkpoint, or a whole replica, can be deleted
without a trace unless the heads verify reports are compared with a copy kept elsewhere.
"""

from __future__ import annotations

from signet.audit.query import Filter, Match, Result, query
from signet.audit.record import Decision, SignerFact
from signet.audit.verify import Problem, ReplicaReport, Verification, verify_log
from signet.audit.writer import DecisionLog, LogSettings, LogStats

__all__ = [
    "Decision",
    "DecisionLog",
    "Filter",
    "LogSettings",
    "LogStats",
    "Match",
    "Problem",
    "ReplicaReport",
    "Result",
    "SignerFact",
    "Verification",
    "query",
    "verify_log",
]
