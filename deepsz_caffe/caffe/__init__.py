"""Everything that touches Caffe: model files (`io`), every NetParameter edit (`prototxt`), TEST
phases and the child-process probe (`phase`), suffix-only phases (`suffix`), training (`train`)
and LMDBs (`lmdb`). Modules here import pycaffe lazily, inside the functions that need it."""
