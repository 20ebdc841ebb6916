import os

os.environ.setdefault("GLOG_minloglevel", "2")
