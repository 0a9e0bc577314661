"""aigc-edge for Python: the same Rust core as the aigc-edge Envoy filter, browser module and CLI.

    >>> from aigc_edge import Filter
    >>> f = Filter("赌博\\tA.1h\\n")
    >>> f.check("网上赌博")["action"]
    'block'

`Filter` checks and masks texts (`check_batch` matches with the GIL released); `Assessment`
assesses a training corpus per source as `aigc-edge scan` does, in shares that merge, so
`aigc_edge.ray` can run it on a cluster; `label_file` / `verify_file` write and read GB 45438
implicit labels. Errors are `AigcEdgeError` (a `ValueError`) with the core's message.
"""
from ._core import AigcEdgeError, Assessment, Filter, label_file, verify_file

__all__ = ["AigcEdgeError", "Assessment", "Filter", "label_file", "verify_file"]
__version__ = "0.1.0"
