"""Datasets for VAE Lab: built-in ones by name, and students' uploads. Never imports streamlit.

    from vae_core.data import load_dataset, load_upload
    ds = load_dataset("digits", seed=0)   # Dataset with train/val/test tensors
"""

from .dataset import Dataset
from .errors import DataError, LoadStopped
from .registry import DATASETS, DatasetInfo, dataset_names, load_dataset
from .uploads import load_upload

__all__ = ["DATASETS", "DataError", "Dataset", "DatasetInfo", "LoadStopped", "dataset_names", "load_dataset",
           "load_upload"]
