# deepsz-caffe on Debian 12 (bookworm). The image runs the same scripts/setup.sh as `make setup`,
# so CI covers its logic; it cannot be built on our CI machines (no Docker engine there).
#   docker build -t deepsz-caffe .  &&  docker run --rm deepsz-caffe make reproduce
FROM debian:bookworm
RUN apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv python3-dev ca-certificates make git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /opt/deepsz-caffe
COPY . .
RUN PYTHON=python3 bash scripts/setup.sh
CMD ["make", "reproduce"]
