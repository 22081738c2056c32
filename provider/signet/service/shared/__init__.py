"""The optional verdict cache shared by the replicas (Redis or Valkey), behind the local one.

- `envelope`: a verdict as stored, authenticated with HMAC-SHA256 over key and value (pure);
- `config`: the settings, and loading the replicas' secret from a file;
- `store`: the small interface to the store, and its Redis implementation;
- `verdicts`: what the engine calls — lookup (with the cross-replica single flight) and share,
  bounded by timeouts and a circuit breaker, so the store can only ever save work.
"""

from signet.service.shared.config import SharedCacheSettings, load
from signet.service.shared.verdicts import SharedVerdicts

__all__ = ["SharedCacheSettings", "SharedVerdicts", "load"]
