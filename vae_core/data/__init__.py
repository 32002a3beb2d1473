"""Datasets: built-in (digits, MNIST-style IDX files, toy 2-D sets, shapes) and user uploads."""

from .dataset import Dataset
from .errors import DataError
from .registry import DATASETS, DatasetInfo, dataset_names, load_dataset
from .uploads import load_upload

__all__ = ["DATASETS", "DataError", "Dataset", "DatasetInfo", "dataset_names", "load_dataset", "load_upload"]
