"""The filesystem, carefully: descriptor-relative opens that follow no link (``fsafe``)
and which filesystem a path is on (``mounts``)."""
