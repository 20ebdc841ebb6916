"""Datasets -> Caffe LMDBs of uint8 `Datum` records."""
