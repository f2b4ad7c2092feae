"""Data that ships with installed packages or is generated: images, 28x28 datasets, the GMM oracle."""

from .datasets import DATASETS, cache_dir, dataset, restricted_unpickle
from .gmm import GaussianMixture
from .images import IMAGES, image, image_names, load_image, load_image_file

__all__ = [
    "DATASETS",
    "IMAGES",
    "GaussianMixture",
    "cache_dir",
    "dataset",
    "image",
    "image_names",
    "load_image",
    "load_image_file",
    "restricted_unpickle",
]
