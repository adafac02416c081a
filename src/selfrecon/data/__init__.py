"""Data: built-in offline datasets, the user's image files, and measurement sets on disk.

* :func:`builtin` / :func:`list_builtin` — offline datasets (natural photos, MNIST, USPS-like,
  brain MRI, ellipses, Shepp-Logan, a real CT slice), seeded, fixed splits.
* :class:`ImageFolder`, :func:`read_image`, :func:`write_image` — PNG/JPEG/TIFF/NPY/NPZ/DICOM/NIfTI/
  HDF5 (fastMRI) files.
* :class:`MeasuredDataset` — images → fixed simulated measurements ``{"y", "x"}``.
* :func:`simulate`, :class:`MeasurementSet`, :func:`assemble` — measurement sets on disk.
"""

from selfrecon.data._util import atomic_folder
from selfrecon.data.assemble import assemble
from selfrecon.data.builtin_datasets import (
    BUILTIN_NAMES,
    NATURAL_TEST,
    NATURAL_TRAIN,
    BuiltinDataset,
    builtin,
    ellipse_phantom,
    list_builtin,
)
from selfrecon.data.folder import ImageFolder, find_files
from selfrecon.data.measured import MeasuredDataset
from selfrecon.data.measurement_set import MeasurementSet
from selfrecon.data.readers import (
    read_fastmri_images,
    read_fastmri_kspace,
    read_image,
    read_slices,
    write_image,
)
from selfrecon.data.set_writer import simulate

__all__ = [
    "BUILTIN_NAMES",
    "BuiltinDataset",
    "ImageFolder",
    "MeasuredDataset",
    "MeasurementSet",
    "NATURAL_TEST",
    "NATURAL_TRAIN",
    "assemble",
    "atomic_folder",
    "builtin",
    "ellipse_phantom",
    "find_files",
    "list_builtin",
    "read_fastmri_images",
    "read_fastmri_kspace",
    "read_image",
    "read_slices",
    "simulate",
    "write_image",
]
