from ._core import AigcEdgeError as AigcEdgeError
from ._core import Assessment as Assessment
from ._core import Filter as Filter
from ._core import label_file as label_file
from ._core import verify_file as verify_file

__version__: str
