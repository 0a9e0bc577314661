"""Types of the native module (aigc_edge._core)."""
from typing import Any, Dict, List, Optional, Sequence, Union

class AigcEdgeError(ValueError):
    """An error of the aigc-edge core: what was wrong and where (a policy field, a byte offset)."""

class Filter:
    """A keyword and personal-information filter: a dictionary and a policy."""

    def __init__(
        self,
        keywords: Optional[str] = None,
        *,
        policy: Optional[str] = None,
        allow: Optional[str] = None,
        artifact: Optional[bytes] = None,
    ) -> None:
        """From keyword text (`keyword TAB category TAB action` a line), or a compiled artifact;
        `policy` is the policy JSON shared by every aigc-edge host."""
    @property
    def keyword_count(self) -> int: ...
    @property
    def warnings(self) -> List[str]:
        """Dirty keyword lines met while building."""
    def to_artifact(self) -> bytes:
        """The dictionary compiled: what workers load instead of the word list."""
    def check(self, text: str) -> Dict[str, Any]:
        """`{"flagged", "action", "hits": [{"keyword", "category", "start", "end", "action"}], "pii"?, "text"?, "limit_exceeded"?}`;
        offsets are bytes of the UTF-8 text, as the CLI reports them."""
    def check_batch(self, texts: Sequence[str]) -> List[Dict[str, Any]]:
        """`check` over many texts with the GIL released."""
    def mask(self, text: str) -> str:
        """The text with hits masked and personal information redacted."""

class Assessment:
    """A training corpus assessed per source (TC260-003: no source above 5% harmful)."""

    def __init__(
        self,
        files: Sequence[str],
        *,
        text_field: str = "text",
        source_field: str = "source",
        sample: int = 4000,
        seed: int = 0,
        threshold: float = 0.05,
    ) -> None: ...
    def lines(self, filter: Filter, files: Sequence[str], numbers: Sequence[int], lines: Sequence[bytes]) -> None:
        """JSONL lines as parallel lists: file, line number (1-based), bytes."""
    def jsonl(self, filter: Filter, file: str, first_line: int, data: bytes) -> None:
        """A run of whole JSONL lines of `file`, the first being line `first_line`."""
    def documents(
        self,
        filter: Filter,
        files: Sequence[str],
        numbers: Sequence[int],
        texts: Sequence[str],
        sources: Sequence[Optional[str]],
    ) -> None:
        """Documents already read, as parallel lists."""
    def merge(self, other: Union["Assessment", bytes]) -> None:
        """Adds another share of the same corpus."""
    def to_bytes(self) -> bytes: ...
    @property
    def documents_seen(self) -> int: ...
    @property
    def rejected_sources(self) -> List[str]: ...
    def report(self) -> Dict[str, Any]:
        """The report `aigc-edge scan` prints."""
    def report_json(self) -> str:
        """The same, as the CLI prints it (pretty JSON)."""

def label_file(data: bytes, producer: str, produce_id: Optional[str] = None, key: Optional[bytes] = None,
               signing_key: Optional[str] = None) -> bytes:
    """The file with its one GB 45438 implicit label."""

def verify_file(data: bytes, key: Optional[bytes] = None, public_keys: Optional[List[str]] = None) -> Dict[str, Any]:
    """`{"format", "labels", "verdict", "reasons"}`."""
