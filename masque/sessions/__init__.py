"""Sessions: the don/doff lifecycle, release and revoke, the events log (one writer), queries and the exec runner."""
