"""One module per dataset format; importing this package registers them all in ``DATASETS``."""

from ean.data.datasets.diving48 import Diving48
from ean.data.datasets.kinetics400 import Kinetics400
from ean.data.datasets.list_file import ListFile
from ean.data.datasets.something_v1 import SomethingV1
from ean.data.datasets.something_v2 import SomethingV2
from ean.data.datasets.synthetic import Synthetic

__all__ = ["Diving48", "Kinetics400", "ListFile", "SomethingV1", "SomethingV2", "Synthetic"]
