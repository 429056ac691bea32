"""Embeddings of faces: autoencoders (dense, convolutional), k-means labelling, semi-supervised heads,
t-SNE / UMAP plots and per-class mean faces."""

from .autoencoder import AEClassifier, ConvAE, DenseAE, encode, make_autoencoder, train_autoencoder, train_head
from .cluster import cluster_accuracy, majority_labelling

__all__ = ["AEClassifier", "ConvAE", "DenseAE", "cluster_accuracy", "encode", "majority_labelling",
           "make_autoencoder", "train_autoencoder", "train_head"]
