"""The `.dsz` file: `container` (checksummed sections + JSON header), `layer` (one weight blob in
DeepSZ form) and `network` (a whole caffemodel <-> `.dsz`). Pure: no Caffe import."""
